"""Redaction: credentials never reach output, logs, metrics, answers or exports.

Three kinds of secret reach text that is shown:

- a URL's userinfo (``http://user:pass@host/``), also as a user typed it, unencoded, with ``@``,
  ``?``, ``/`` or ``#`` inside the password: :func:`redact` hides it whole;
- a database password in any form libpq takes: userinfo, a ``?password=`` parameter, or a
  ``password=`` pair of a key=value conninfo: :func:`mask_url` hides each;
- secret request headers (``Authorization``, ``Cookie``, names with ``token``, ``key``,
  ``secret`` or ``password``): :func:`redact_headers`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import unquote

MASK = "***"
# A URL as it may appear in text: scheme, then anything up to whitespace (quotes included: a
# password may hold one, and a closing quote after the host does no harm).
_URL_TOKEN = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s<>`]*")
_PORT = re.compile(r"\d+")
_QUERY_PASSWORD = re.compile(r"(?i)([?&](?:password|pass|passwd)=)[^&#\s]*")
# A quoted value runs to its closing quote, or to the end when the quote is never closed.
_CONNINFO_PASSWORD = re.compile(r"""(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s]*)""")
_SECRET_HEADER = re.compile(r"(?i)authorization|cookie|key|token|secret|password")


# A query parameter whose name says it is a secret (?token=, &api_key=, &X-Amz-Signature=,
# ?apikey=): the word ends the name or is followed by a separator, so ?keyword= is not one.
_SECRET_QUERY = re.compile(
    r"(?i)([?&][^=&#\s]*?(?:token|key|secret|password|passwd|pwd|auth|sig|signature|session)"
    r"(?:[_.\-][^=&#\s]*)?=)[^&#\s]+"
)


def redact(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``***``.

    The userinfo runs to the last ``@`` of the authority, as browsers read it; when the authority
    cannot be a host (a ``:`` not followed by a port), a password with ``/``, ``?`` or ``#`` in
    it is assumed and everything up to the last ``@`` of the URL is hidden: too much is better
    than a part of a password. The values of query parameters named like secrets (``token``,
    ``key``, ``secret``, ``password``, ``sig``, ``auth``, ``session``) are hidden too.
    """
    return _URL_TOKEN.sub(_redact_url, text)


def _redact_url(match: re.Match[str]) -> str:
    return _SECRET_QUERY.sub(rf"\g<1>{MASK}", _redact_userinfo(match.group(0)))


def _redact_userinfo(token: str) -> str:
    scheme, _, rest = token.partition("://")
    end = next((i for i, c in enumerate(rest) if c in "/?#"), len(rest))
    authority = rest[:end]
    at = authority.rfind("@")
    if at < 0:
        host, colon, port = authority.rpartition(":") if ":" in authority else ("", "", "")
        # host:port, never user:pass:1 (a host holds no colon outside [IPv6] brackets)
        looks_like_port = (
            not colon or (_PORT.fullmatch(port) and ":" not in host) or authority.startswith("[")
        )
        last = rest.rfind("@")
        if looks_like_port or last < 0:
            return token
        at = last
    return f"{scheme}://{MASK}@{rest[at + 1 :]}"


def mask_url(url: str) -> str:
    """A database URL or conninfo for display: the password hidden in every form libpq takes
    (``postgresql://u:pw@h/db``, ``postgresql://u@h/db?password=pw``, ``host=h password=pw``).
    A user name stays: it helps to see who connects."""
    text = _QUERY_PASSWORD.sub(rf"\g<1>{MASK}", url)
    text = _CONNINFO_PASSWORD.sub(rf"\g<1>{MASK}", text)
    return _URL_TOKEN.sub(_mask_userinfo_password, text)


def scrub(text: str, secret_source: str) -> str:
    """``text`` (an error message, say) with every password of ``secret_source`` (a database URL
    or conninfo) hidden, also where a library quotes one on its own, and URLs redacted."""
    for password in passwords_in(secret_source):
        text = text.replace(password, MASK)
    return mask_url(redact(text))


def passwords_in(source: str) -> list[str]:
    """The literal passwords a URL or conninfo carries, in any of libpq's forms (longest
    first, so that a password containing another is replaced whole)."""
    found = [m.group(0).split("=", 1)[1] for m in _QUERY_PASSWORD.finditer(source)]
    found += [m.group(2).strip("'") for m in _CONNINFO_PASSWORD.finditer(source)]
    for match in _URL_TOKEN.finditer(source):
        rest = match.group(0).partition("://")[2]
        end = next((i for i, c in enumerate(rest) if c in "/?#"), len(rest))
        at = rest.rfind("@", 0, end)
        if at >= 0 and ":" in rest[:at]:
            raw = rest[:at].partition(":")[2]
            found += [raw, unquote(raw)]
    return sorted({p for p in found if p}, key=len, reverse=True)


def _mask_userinfo_password(match: re.Match[str]) -> str:
    token = match.group(0)
    scheme, _, rest = token.partition("://")
    end = next((i for i, c in enumerate(rest) if c in "/?#"), len(rest))
    at = rest.rfind("@", 0, end)
    if reserved_in_password(token) is not None:
        at = rest.rfind("@")  # the password runs to the last "@": hide all of it
    if at < 0:
        return token
    user, colon, _ = rest[:at].partition(":")
    return f"{scheme}://{user}{':' + MASK if colon else ''}@{rest[at + 1 :]}"


def reserved_in_password(url: str) -> str | None:
    """The character of a URL's password that must be percent-encoded but is not (``@``, ``/``,
    ``?``, ``#``), or None. libpq reads such a password only up to that character (and the rest
    as the host), so the URL cannot work, and its errors would quote a part of the password.
    The password is taken to run from the first ``:`` to the last ``@``, unless what follows the
    host reads as a port, a path and a query."""
    _, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return None
    end = next((i for i, c in enumerate(rest) if c in "/?#"), len(rest))
    authority = rest[:end]
    last = rest.rfind("@")
    user, colon, password = rest[:last].partition(":")
    if not colon or any(c in user for c in _RESERVED_IN_PASSWORD):
        return None  # no password, or the "@" is in a path or query
    first = next((c for c in password if c in _RESERVED_IN_PASSWORD), None)
    if authority.count("@") > 1:
        return first
    if "@" in authority:
        # user:pw@host then an "@" further on: a query's value (a=b@c), or the password's "?",
        # "/" or "#" before it (user:pw@Q?@host) when what lies between holds no "=".
        return None if "=" in rest[end:last] else first
    if authority.startswith("[") or _PORT.fullmatch(authority.partition(":")[2]):
        return None  # [IPv6] or host:port, then a path or query holding the "@"
    return first


_RESERVED_IN_PASSWORD = "@/?#"


def holds_mask(url: str) -> bool:
    """Whether ``url`` carries the placeholder redaction writes for a secret: ``***`` in its
    userinfo, or as the value of a query parameter (also percent-encoded). Such a URL came from
    a redacted listing; storing it would replace a real secret."""
    _, sep, rest = url.partition("://")
    if not sep:
        return False
    end = next((i for i, c in enumerate(rest) if c in "/?#"), len(rest))
    if MASK in unquote(rest[:end].rpartition("@")[0]):
        return True
    query = rest[end:].partition("?")[2].partition("#")[0]
    return any(unquote(pair.partition("=")[2]) == MASK for pair in query.split("&"))


def is_secret_header(name: str) -> bool:
    """Whether a request header's value is a secret (shown as ``***``)."""
    return bool(_SECRET_HEADER.search(name))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with the values of secret ones replaced by ``***``."""
    return {k: MASK if is_secret_header(k) else v for k, v in headers.items()}
