"""Redaction: credentials never reach output, logs, metrics or answers."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_CREDENTIALS = re.compile(r"(?<=://)[^/?#@\s]*@")


def redact(text: str) -> str:
    """``text`` with any ``user:pass@`` of a URL in it replaced by ``***@``."""
    return _CREDENTIALS.sub("***@", text)


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for display; never log a raw URL)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
