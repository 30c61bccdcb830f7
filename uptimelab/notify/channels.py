"""Notification channels: apprise URLs, which carry tokens, and the form in which they are shown.

An apprise URL holds its secret in different places by service: ``json://user:pass@host/path``
(userinfo, and often a token in the path or query), ``tgram://BOT_TOKEN/CHAT_ID`` (the "host"
is the token), ``slack://TOKEN_A/TOKEN_B/TOKEN_C``, ``discord://WEBHOOK_ID/WEBHOOK_TOKEN``,
``mailto://user:pass@gmail.com``, ``ntfy://topic`` (the topic is the secret). So only what is
known to be a host name is kept: for the web-hook and mail schemes the host and port, for every
other scheme nothing but the scheme. A short fingerprint of the whole URL tells channels apart
(two Telegram chats both read ``tgram://***``) without saying anything of the token.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

MASK = "***"
# Schemes whose authority is a real host (after an optional userinfo): the generic web hooks
# (JSON, form, XML), email, and apprise's self-hosted services addressed by host.
HOST_SCHEMES = frozenset(
    {
        "json",
        "jsons",
        "form",
        "forms",
        "xml",
        "xmls",
        "mailto",
        "mailtos",
        "gotify",
        "gotifys",
        "ntfys",
        "mmost",
        "mmosts",
        "rocket",
        "rockets",
        "matrix",
        "matrixs",
        "apprise",
        "apprises",
    }
)
_URL = re.compile(r"(?i)([a-z][a-z0-9+.-]*)://(\S*)")
_HOST = re.compile(r"(?i)(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d+)?")


def fingerprint(url: str) -> str:
    """Eight hex digits of the URL's SHA-256: tells channels apart, reveals nothing usable."""
    return hashlib.sha256(url.encode()).hexdigest()[:8]


def redact_channel(url: str) -> str:
    """``url`` (an apprise URL) as it may be shown: ``json://***@hooks.example.org:8080/***``
    for the host-addressed schemes, ``tgram://***`` for the others; never a token.

    Text that is not a URL at all shows as ``***``."""
    match = _URL.fullmatch(url.strip())
    if match is None:
        return MASK
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme not in HOST_SCHEMES:
        return f"{scheme}://{MASK}" if rest else f"{scheme}://"
    end = next((i for i, c in enumerate(rest) if c in "/?#"), len(rest))
    authority, tail = rest[:end], rest[end:]
    at = authority.rfind("@")
    if at < 0 and "@" in tail:  # a password with / or ? in it, unencoded: hide up to its @
        return f"{scheme}://{MASK}@{_host_of(tail[tail.rfind('@') + 1 :])}{MASK}"
    host = _HOST.fullmatch(authority[at + 1 :])
    if host is None:
        return f"{scheme}://{MASK}"
    shown = f"{scheme}://{MASK + '@' if at >= 0 else ''}{host.group(0)}"
    return shown + (f"/{MASK}" if tail.strip("/") else "")


def _host_of(text: str) -> str:
    host = _HOST.match(text)
    return f"{host.group(0)}/" if host else ""


@dataclass(frozen=True)
class Channel:
    """One apprise URL to notify. ``shown`` (redacted, with the fingerprint) is what the
    notifications table, logs and health say; the URL itself stays out of every repr."""

    url: str = field(repr=False)

    @property
    def shown(self) -> str:
        return f"{redact_channel(self.url)} #{fingerprint(self.url)}"

    def __str__(self) -> str:
        return self.shown
