"""URLs and their normal form: the one spelling of a site's URL that is stored, compared and sent.

The normal form (RFC 3986 section 6 and RFC 3987 section 3.1, as curl, httpx and browsers send
URLs):

- scheme and host in lower case, a non-ASCII host in IDNA (``bücher.de`` -> ``xn--bcher-kva.de``);
- the default port dropped (``:80`` for http, ``:443`` for https), an empty path made ``/``;
- dot segments removed; non-ASCII characters, spaces and other characters a request line cannot
  carry percent-encoded as UTF-8 (``/€`` -> ``/%E2%82%AC``); an existing ``%XX`` kept as it is;
- the fragment dropped: it is never sent, so ``/a#x`` and ``/a`` are the same check.

httpx's URL parser does the encoding (it is what the httpx engine sends, and it is kept with
httpx); this module adds the rules a monitor needs on top: http(s) only, and a host that can exist.
"""

from __future__ import annotations

import ipaddress
import re

SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A DNS label: letters, digits, inner hyphens, 1-63 characters. Underscores are tolerated (they
# occur in real names, and resolvers pass them); a label cannot start or end with a hyphen.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NOT_URL_BYTES = re.compile(rb"[\x00-\x20\x7f-\xff]")
# The shape of a URL that normalise_url gives back unchanged (is_normal checks the rest): host
# labels as _LABEL, the last one not all digits (an IPv4 address is left to normalise_url).
# Path and query: runs of unreserved characters between %XX escapes (unrolled: twice as fast as
# an alternation per character).
_PATH, _QUERY, _ESCAPE = "[A-Za-z0-9._~/-]", "[A-Za-z0-9._~/=&-]", "%[0-9A-Fa-f]{2}"
_SURELY_NORMAL = re.compile(
    rf"(https?)://((?:{_LABEL.pattern}\.)*(?=[a-z0-9_-]*[a-z_-]){_LABEL.pattern})"
    r"(?::([1-9][0-9]{0,4}))?"
    rf"(/{_PATH}*(?:{_ESCAPE}{_PATH}*)*)(?:\?{_QUERY}*(?:{_ESCAPE}{_QUERY}*)*)?"
)
_DOT_SEGMENT = re.compile(r"/\.\.?(?:/|$)")


class URLRuleError(ValueError):
    """A URL that breaks one of the rules; the message is the rule, in lower case."""


def normalise_url(url: str) -> str:
    """The normal form of an absolute http(s) ``url``.

    Raises URLRuleError naming the rule for a URL that has no scheme, another scheme, no host, a
    host that cannot exist (``300.1.1.1``, ``-bad-.com``, ``a..b``), a bad port, or control
    characters.
    """
    if _CONTROL.search(url):
        raise URLRuleError("it contains whitespace or control characters")
    text = url.strip(" ")
    if "://" not in text:
        raise URLRuleError("it has no scheme (start it with http:// or https://)")
    import httpx  # here: importing httpx costs 0.15 s, which `uptimelab status` need not pay

    try:
        parsed = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise URLRuleError(_rule(str(exc))) from None
    scheme = parsed.scheme
    if scheme not in SCHEMES:
        raise URLRuleError("the scheme must be http or https")
    host = parsed.raw_host.decode("ascii").lower()
    if not host:
        raise URLRuleError("it has no host")
    _check_host(host)
    port = parsed.port
    if port is not None and not 0 < port < 65536:
        raise URLRuleError(f"port {port} cannot be pinged (ports go from 1 to 65535)")
    shown = f"[{host}]" if ":" in host else host
    authority = shown if port in (None, _DEFAULT_PORTS[scheme]) else f"{shown}:{port}"
    userinfo = parsed.userinfo.decode("ascii")
    if userinfo:
        authority = f"{userinfo}@{authority}"
    target = parsed.raw_path.decode("ascii") or "/"
    if not target.startswith("/"):
        target = "/" + target
    return f"{scheme}://{authority}{target}"


def is_normal(url: str) -> bool:
    """Whether ``url`` is surely in the normal form, without parsing it (1 us, where
    :func:`normalise_url` takes 18): True only for the plain shape most URLs have (lower-case
    scheme and host, no credentials, no default port, a path and query of unreserved characters
    and ``%XX`` escapes, no dot segment, no fragment). False means "ask normalise_url", not "not
    normal"."""
    match = _SURELY_NORMAL.fullmatch(url)
    if match is None or match.end(2) - match.start(2) > 253:
        return False
    scheme, _, port, path = match.groups()
    if port is not None and (int(port) > 65535 or int(port) == _DEFAULT_PORTS[scheme]):
        return False
    return "/." not in path or _DOT_SEGMENT.search(path) is None


def resolve_location(base: str, location: bytes) -> str:
    """The normal form of the URL a redirect's ``Location`` (raw header bytes) leads to from
    ``base`` (a normalised URL).

    A UTF-8 Location is read as text (so a non-ASCII host becomes IDNA); any other byte that a
    request line cannot carry (a space, a Latin-1 ``é``) is percent-encoded as the byte it is.
    Raises URLRuleError as :func:`normalise_url` does.
    """
    raw = location.strip(b" \t")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = _NOT_URL_BYTES.sub(lambda m: b"%%%02X" % m[0][0], raw).decode("ascii")
    if _CONTROL.search(text):
        raise URLRuleError("it contains whitespace or control characters")
    import httpx

    try:
        joined = httpx.URL(base).join(text)
    except httpx.InvalidURL as exc:
        raise URLRuleError(_rule(str(exc))) from None
    return normalise_url(str(joined))


def _check_host(host: str) -> None:
    if host.startswith("["):  # httpx keeps IPv6 hosts without brackets; be safe either way
        host = host.strip("[]")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise URLRuleError(f"{host!r} is not an IPv6 address") from None
        return
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise URLRuleError(
            f"the host {host!r} cannot exist (a name is labels of letters, digits and inner "
            "hyphens, separated by single dots)"
        )
    if labels[-1].isdigit():
        # All-numeric last label: an IPv4 address, or nothing. httpx refuses 300.1.1.1 itself;
        # 1.2.3 or 999 are not addresses a resolver will look up as names.
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            raise URLRuleError(f"the host {host!r} cannot exist (not an IPv4 address)") from None


def _rule(message: str) -> str:
    return message[:1].lower() + message[1:]
