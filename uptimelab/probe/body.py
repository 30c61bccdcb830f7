"""Bodies for assertions: what both engines read of a body, decoded alike and within bounds.

Only a site with a body assertion has its body kept (at most BODY_CAP_BYTES from the wire); both
engines hand the raw bytes here, so that gzip, deflate and brotli are decoded the same way
whichever engine read them. Decoding stops at BODY_LIMIT_BYTES of output: a compression bomb
(64 KiB of gzip is 64 MiB of zeros) costs no more memory than a plain 64 KiB page.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import brotli  # type: ignore[import-untyped]

from ..domain.assertions import BODY_LIMIT_BYTES, Body
from ..domain.redaction import is_secret_header
from ..domain.sites import Probeable
from .http1 import ResponseError

ENCODINGS = ("gzip", "deflate", "br")
ACCEPT_ENCODING = ", ".join(ENCODINGS)
"""What a probe that keeps the body accepts (``Accept-Encoding``): what :func:`decode` reads."""


def request_headers(
    headers: Mapping[str, str] | None, *, keeps_body: bool
) -> dict[str, str] | None:
    """The headers a site's request carries beyond the engine's own: the site's, and
    ``Accept-Encoding`` when the body is kept (unless the site gives its own)."""
    if not keeps_body:
        return dict(headers) if headers else None
    extra = {"Accept-Encoding": ACCEPT_ENCODING}
    for name, value in (headers or {}).items():
        if name.lower() == "accept-encoding":
            extra.pop("Accept-Encoding", None)
        extra[name] = value
    return extra


def decode(raw: bytes, content_encoding: str | None, content_type: str | None, more: bool) -> Body:
    """The body for assertions from ``raw`` (what was read, at most BODY_CAP_BYTES), decoded by
    ``content_encoding`` (applied in order, so undone in reverse) up to BODY_LIMIT_BYTES; ``more``
    says the wire had more. Raises ResponseError (``protocol``) for a body that does not decode,
    and (``assertion``) for an encoding uptimelab does not read."""
    content = raw[:BODY_LIMIT_BYTES]
    truncated = more or len(raw) > BODY_LIMIT_BYTES
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    for coding in reversed([c for c in codings if c and c != "identity"]):
        if coding not in ENCODINGS and coding != "x-gzip":
            raise ResponseError(
                "assertion", f"the body is encoded {coding!r}, which uptimelab does not decode"
            )
        try:
            content, cut = _decode_one(coding, content)
        except (zlib.error, brotli.error) as exc:
            raise ResponseError("protocol", f"the {coding} body does not decode: {exc}") from None
        truncated = truncated or cut
    return Body(content, _charset(content_type), truncated)


def _decode_one(coding: str, data: bytes) -> tuple[bytes, bool]:
    """``data`` decoded, at most BODY_LIMIT_BYTES of it, and whether there was more."""
    if coding == "br":
        decompressor = brotli.Decompressor()
        out = decompressor.process(data, output_buffer_limit=BODY_LIMIT_BYTES)
        more = len(out) >= BODY_LIMIT_BYTES and not decompressor.is_finished()
        return out[:BODY_LIMIT_BYTES], more
    if coding == "deflate":
        # "deflate" is a zlib stream by the RFC, and a raw deflate stream from some servers
        # (httpx and browsers accept both).
        try:
            return _inflate(data, zlib.MAX_WBITS)
        except zlib.error:
            return _inflate(data, -zlib.MAX_WBITS)
    return _inflate(data, 16 + zlib.MAX_WBITS)  # gzip, x-gzip


def _inflate(data: bytes, wbits: int) -> tuple[bytes, bool]:
    decompressor = zlib.decompressobj(wbits)
    out = decompressor.decompress(data, BODY_LIMIT_BYTES)
    return out, bool(decompressor.unconsumed_tail)


def _charset(content_type: str | None) -> str | None:
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


@dataclass(slots=True)
class Page:
    """What a site's request carries beyond an engine's own (its headers, its body), and what
    was read of the page for its assertions (``body``, set by the engine when ``keep_body``)."""

    headers: dict[str, str] | None = None
    content: bytes | None = None
    keep_body: bool = False
    body: Body | None = None

    def content_for(self, method: str) -> bytes | None:
        """The body to send with ``method`` (none once a redirect has turned it into a GET)."""
        return None if method in ("GET", "HEAD") else self.content

    def keep(self, raw: bytes, encoding: str | None, content_type: str | None, more: bool) -> None:
        """Decode what was read of the final response for the assertions (see :func:`decode`)."""
        self.body = decode(raw, encoding, content_type, more)


def page(site: Probeable, *, keep_body: bool) -> Page:
    """The Page of one ping of ``site``."""
    return Page(
        request_headers(site.headers, keeps_body=keep_body),
        None if site.body is None else site.body.encode(),
        keep_body,
    )


def public(headers: dict[str, str] | None) -> dict[str, str] | None:
    """``headers`` without the secret ones: what a redirect to another origin carries."""
    if not headers:
        return headers
    return {k: v for k, v in headers.items() if not is_secret_header(k)}
