"""The zoo's side of HTTP/1.1, as little of it as the targets need: read a request head (up to
:data:`MAX_HEAD_BYTES`) and the body its Content-Length announces, take the request line apart,
and write a whole response with ``Connection: close``. The targets' behaviours are acted out by
:mod:`.server`."""

from __future__ import annotations

import http
import re
from urllib.parse import parse_qs

import trio

MAX_HEAD_BYTES = 16 * 1024
"""Largest request head (bytes, request line and headers) the zoo reads before answering 431."""


class BadRequest(Exception):
    """The request head could not be used; carries the status (400 or 431) to answer with."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


async def wait_for_eof(stream: trio.abc.Stream) -> None:
    """Return once the client has closed its side; anything it still sends is discarded."""
    while await stream.receive_some():
        pass


async def read_head(stream: trio.abc.Stream) -> tuple[bytes, bytes] | None:
    """The request head up to the blank line, and what arrived after it (the start of a body);
    None if the client closed before sending one. Raises BadRequest (431) for a head larger
    than MAX_HEAD_BYTES."""
    buf = bytearray()
    while True:
        data = await stream.receive_some(MAX_HEAD_BYTES)
        if not data:
            return None
        # Only the newly arrived bytes (plus 3 for a terminator split across reads) need a scan.
        start = max(0, len(buf) - 3)
        buf += data
        end = buf.find(b"\r\n\r\n", start)
        if 0 <= end <= MAX_HEAD_BYTES - 4:
            return bytes(buf[:end]), bytes(buf[end + 4 :])
        if end >= 0 or len(buf) >= MAX_HEAD_BYTES:
            raise BadRequest(431)


def parse_request_line(head: bytes) -> tuple[bytes, str, dict[str, list[str]]]:
    """The method, the path and the query's parameters of a request head. Raises BadRequest
    (400)."""
    parts = head.split(b"\r\n", 1)[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise BadRequest(400)
    try:
        path, _, query = parts[1].decode("ascii").partition("?")
    except UnicodeDecodeError:
        raise BadRequest(400) from None
    return parts[0], path, parse_qs(query)


async def read_body(stream: trio.abc.Stream, head: bytes, rest: bytes) -> bytes:
    """The request body of a head with a Content-Length (at most MAX_HEAD_BYTES), ``rest``
    being what arrived with the head."""
    found = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    length = min(int(found.group(1)), MAX_HEAD_BYTES) if found else 0
    while len(rest) < length:
        data = await stream.receive_some(MAX_HEAD_BYTES)
        if not data:
            break
        rest += data
    return rest[:length]


def response(
    status: int,
    body: bytes,
    *,
    head_only: bool = False,
    location: str | None = None,
    length: int | None = None,
    content_type: str = "text/plain; charset=utf-8",
    encoding: str | None = None,
) -> bytes:
    """A complete response: head plus ``body`` unless ``head_only``.

    ``length`` overrides the announced Content-Length (bytes) for bodies streamed afterwards.
    """
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Server: uptimelab-zoo",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body) if length is None else length}",
        "Connection: close",
    ]
    if location is not None:
        lines.append(f"Location: {location}")
    if encoding is not None:
        lines.append(f"Content-Encoding: {encoding}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return head if head_only else head + body
