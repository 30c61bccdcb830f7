"""Malformed and unusual HTTP/1.1 answers, served as raw bytes: targets for the probe's framing.

The zoo's server writes well-formed HTTP; these targets send exactly the bytes given, to check
that the probe reads framing as the RFCs and common clients do (bad chunk sizes, bare LF heads,
conflicting lengths, folded headers, interim answers, early closes, odd redirect Locations). Each
target is served at ``/m/{name}`` on one loopback listener and knows the category a correct probe
reports (None: up). Both engines agree on every one.

Usage::

    async with open_malformed() as server:
        url = server.url("chunk-size-negative")
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import trio

__all__ = ["MALFORMED", "MalformedServer", "MalformedTarget", "open_malformed"]

_HEAD_LIMIT = 16 * 1024


@dataclass(frozen=True)
class MalformedTarget:
    """Raw bytes to answer with, and the category a correct probe reports for them."""

    answer: bytes
    expect_category: str | None


def _chunked(size: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head + size + b"\r\nhello\r\n0\r\n\r\n"


MALFORMED: dict[str, MalformedTarget] = {
    "chunk-size-negative": MalformedTarget(_chunked(b"-5"), "protocol"),
    "chunk-size-hex-prefix": MalformedTarget(_chunked(b"0x5"), "protocol"),
    "chunk-size-underscore": MalformedTarget(_chunked(b"0_5"), "protocol"),
    "chunk-size-with-extension": MalformedTarget(_chunked(b"5;name=value"), None),
    "bare-lf-head": MalformedTarget(b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello", None),
    "conflicting-content-length": MalformedTarget(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", "protocol"
    ),
    "folded-header": MalformedTarget(
        b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 5\r\n\r\nhello", None
    ),
    "duplicate-header": MalformedTarget(
        b"HTTP/1.1 200 OK\r\nX-Twice: 1\r\nX-Twice: 2\r\nContent-Length: 5\r\n\r\nhello", None
    ),
    "interim-then-ok": MalformedTarget(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        None,
    ),
    "unrequested-upgrade": MalformedTarget(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
        "protocol",
    ),
    "close-inside-head": MalformedTarget(b"HTTP/1.1 200 OK\r\nContent-Le", "network"),
    "close-inside-body": MalformedTarget(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "network"
    ),
    "close-inside-chunk": MalformedTarget(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "network"
    ),
    "bad-status-line": MalformedTarget(b"HTTP/1.1 2000 OK\r\n\r\n", "protocol"),
    "not-http": MalformedTarget(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "protocol"),
    "redirect-to-a-space": MalformedTarget(
        b"HTTP/1.1 302 Found\r\nLocation: /m/hello world.txt\r\nContent-Length: 0\r\n\r\n", None
    ),
    "redirect-to-utf8": MalformedTarget(
        "HTTP/1.1 302 Found\r\nLocation: /m/café.txt\r\nContent-Length: 0\r\n\r\n".encode(),
        None,
    ),
}

# Where the redirects lead: only the percent-encoded form is found (as nginx answers).
_FOLLOWED = {
    b"/m/hello%20world.txt": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"/m/caf%C3%A9.txt": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
}
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"


class MalformedServer:
    """The listener serving :data:`MALFORMED` at ``/m/{name}``."""

    def __init__(self, port: int) -> None:
        self.port = port

    def url(self, name: str) -> str:
        """The URL of target ``name`` (KeyError for an unknown one)."""
        MALFORMED[name]  # noqa: B018 - an unknown name fails here, not as a 404 later
        return f"http://127.0.0.1:{self.port}/m/{name}"


def answer_for(request_head: bytes) -> bytes:
    """The raw answer to a request head: by the request line's target, exactly as sent."""
    line = request_head.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    if len(parts) != 3:  # a raw space in the target, say: what nginx answers
        return _BAD_REQUEST
    target = parts[1]
    if target in _FOLLOWED:
        return _FOLLOWED[target]
    found = MALFORMED.get(target.removeprefix(b"/m/").decode("ascii", "replace"))
    return _NOT_FOUND if found is None else found.answer


async def _serve_one(stream: trio.SocketStream) -> None:
    async with stream:
        head = b""
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            while b"\r\n\r\n" not in head and len(head) < _HEAD_LIMIT:
                chunk = await stream.receive_some(_HEAD_LIMIT)
                if not chunk:
                    return
                head += chunk
            await stream.send_all(answer_for(head))


@contextlib.asynccontextmanager
async def open_malformed() -> AsyncIterator[MalformedServer]:
    """Serve the malformed targets on a loopback port for the block's duration."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, _serve_one, 0, host="127.0.0.1")
        )
        yield MalformedServer(listeners[0].socket.getsockname()[1])
        nursery.cancel_scope.cancel()
