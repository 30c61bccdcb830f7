"""Reading an HTTP/1.1 response off a stream: what the lean client makes of the server's answer.

The framing (status line, headers, Content-Length, chunks, interim 1xx answers) is parsed by
httptools (llhttp, the parser of Node.js): a C parser costs about 2 us a response where h11 costs
40, and it is strict where framing is at stake. A monitor keeps little of the answer: the status,
the reason, the Location, and the body only up to :data:`BODY_CAP_BYTES` (when a site's
assertions read it); the head may be at most :data:`HEAD_LIMIT` bytes.

A malformed answer or one cut short raises :class:`ResponseError`, which names its category.
"""

from __future__ import annotations

from dataclasses import dataclass

import httptools
import trio

from .phases import PhaseClock

BODY_CAP_BYTES = 64 * 1024
HEAD_LIMIT = 64 * 1024
READ_SIZE = 64 * 1024


class ResponseError(Exception):
    """The server's answer was malformed (``protocol``) or cut short (``network``)."""

    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category


@dataclass
class Response:
    status: int
    reason: str
    location: bytes | None  # as sent: resolved and normalised by next_hop
    # Kept only when asked (a site with a body assertion): up to the cap, as sent.
    body: bytes | None = None
    content_encoding: str | None = None
    content_type: str | None = None
    more: bool = False  # the body went on past what was read


async def read_response(
    stream: trio.abc.ReceiveStream,
    method: str,
    clock: PhaseClock,
    *,
    body_cap: int,
    keep_body: bool = False,
) -> Response:
    """Feed what the server sends to the parser until the response is complete, ``body_cap``
    body bytes arrived, or (HEAD) the head is complete; ``clock`` is lapped (``ttfb``) at the
    first byte. The body is kept in the Response if ``keep_body``. Raises ResponseError."""
    reader = _ResponseReader()
    if keep_body:
        reader.kept = bytearray()
    reader.parser = parser = httptools.HttpResponseParser(reader)
    parser.set_dangerous_leniencies(**_LENIENCIES)
    received = 0
    try:
        while True:
            data = await stream.receive_some(READ_SIZE)
            if not data:
                return reader.at_close(received)
            if not received:
                clock.lap("ttfb")
            received += len(data)
            try:
                parser.feed_data(data)
            except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
                # What follows a complete response (or a HEAD response's head) is not ours
                # to judge: the request is answered.
                if not (reader.complete or reader.head_done and method == "HEAD"):
                    raise ResponseError("protocol", f"malformed HTTP response: {exc}") from None
            if reader.head_done:
                if not 100 <= reader.status <= 599:
                    raise ResponseError(
                        "protocol", f"status {reader.status} is not an HTTP status code"
                    )
                if reader.complete or method == "HEAD" or reader.body_bytes >= body_cap:
                    return reader.response()
            elif received > HEAD_LIMIT:
                raise ResponseError("protocol", "the response head is larger than 64 KiB")
    finally:
        reader.parser = None  # the parser holds the reader: no cycle left for the GC


# Leniencies that match what curl, browsers and h11 (httpx) accept, none of which blurs where a
# message ends: a bare LF as a line end, obs-fold and any octet in header values (RFC 9112 5.2
# tells a client to accept folding), and Transfer-Encoding winning over Content-Length (RFC 9112
# 6.3). Conflicting lengths, bad chunk sizes and bad status lines stay errors.
_LENIENCIES = {
    "lenient_optional_cr_before_lf": True,
    "lenient_headers": True,
    "lenient_chunked_length": True,
}


class _ResponseReader:
    """The parser's callbacks: what a monitor keeps of a response (status, reason, Location,
    how many body bytes arrived), interim 1xx answers skipped."""

    __slots__ = (
        "body_bytes",
        "complete",
        "content_encoding",
        "content_length",
        "content_type",
        "head_done",
        "kept",
        "location",
        "parser",
        "reason",
        "status",
        "transfer_codings",
    )

    def __init__(self) -> None:
        self.parser: httptools.HttpResponseParser | None = None
        self.head_done = False
        self.complete = False
        self.body_bytes = 0
        self.kept: bytearray | None = None  # the body's bytes, when a site's assertions read it
        self.on_message_begin()

    def on_message_begin(self) -> None:
        # Also after an interim 1xx answer: the final response starts afresh. Whatever follows
        # the final response is not another response of ours.
        if self.head_done:
            return
        self.status = 0
        self.reason = b""
        self.location: bytes | None = None
        self.transfer_codings: list[bytes] = []
        self.content_length = False
        self.content_encoding: str | None = None
        self.content_type: str | None = None

    def on_status(self, data: bytes) -> None:
        self.reason += data  # may arrive in pieces

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.lower()
        if key == b"location":
            if self.location is None:
                self.location = value
        elif key == b"transfer-encoding":
            self.transfer_codings += [c.strip().lower() for c in value.split(b",")]
        elif key == b"content-length":
            self.content_length = True
        elif self.kept is not None and key in (b"content-encoding", b"content-type"):
            text = value.decode("latin-1")
            if key == b"content-type":
                self.content_type = text
            else:
                self.content_encoding = (
                    f"{self.content_encoding}, {text}" if self.content_encoding else text
                )

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        self.status = self.parser.get_status_code()
        if not 100 <= self.status < 200:  # an interim answer is skipped
            self.head_done = True

    def on_body(self, data: bytes) -> None:
        self.body_bytes += len(data)
        kept = self.kept
        if kept is not None and len(kept) < BODY_CAP_BYTES:
            kept += data[: BODY_CAP_BYTES - len(kept)]

    def on_message_complete(self) -> None:
        self.complete = self.head_done

    def at_close(self, received: int) -> Response:
        """The response when the server closes the connection: complete, or cut short."""
        if not received:
            raise ResponseError("network", "the server closed the connection without answering")
        if not self.head_done:
            raise ResponseError("network", "the connection closed inside the head")
        if not self.complete and self.framed:
            raise ResponseError(
                "network", f"the connection closed after {self.body_bytes} body bytes"
            )
        return self.response()

    @property
    def framed(self) -> bool:
        """Whether the body has an end of its own (chunked or Content-Length), so that a close
        before it cuts the response short; otherwise the close ends the body (RFC 9112 6.3)."""
        if self.transfer_codings:
            return self.transfer_codings[-1] == b"chunked"
        return self.content_length

    def response(self) -> Response:
        reason = self.reason.decode("latin-1").strip()
        if self.kept is None:
            return Response(self.status, reason, self.location)
        return Response(
            self.status,
            reason,
            self.location,
            bytes(self.kept),
            self.content_encoding,
            self.content_type,
            more=not self.complete,
        )
