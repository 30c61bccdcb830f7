"""The lean HTTP/1.1 client of the probe: one request on a fresh trio stream, nothing more.

A monitor needs a small part of HTTP: open a connection (DNS, TCP, TLS), send one request with
``Connection: close``, read the response head, read at most 64 KiB of body, follow redirects by
the site's rules. Doing just that on trio streams costs a fraction of the CPU of a general
client (no pool, no per-request object graph), which decides how many sites one core can watch.
The httpx engine (``PROBE_ENGINE=httpx``) does the same through httpx; the probe's tests run
every failure mode through both, and both must categorise alike.

Failures surface as exceptions the probe categorises: OSError and trio errors from the
transport (their causes say dns, refused, tls, network), and :class:`ResponseError`, which names
its category (``protocol`` for a malformed answer, ``network`` for one cut short).
"""

from __future__ import annotations

import base64
import re
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

import trio

BODY_CAP_BYTES = 64 * 1024
HEAD_LIMIT = 64 * 1024
READ_SIZE = 64 * 1024
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9])(?: ([^\r\n]*))?")
_HEADER_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NO_BODY_CODES = frozenset({204, 304})


class ResponseError(Exception):
    """The server's answer was malformed (``protocol``) or cut short (``network``)."""

    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category


@dataclass(frozen=True)
class Target:
    """A URL taken apart once: what a request to it needs."""

    url: str
    tls: bool
    host: str  # for DNS and SNI (IDNA-encoded)
    port: int
    host_header: str
    target: str  # path and query
    authorization: str | None

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ResponseError("protocol", f"cannot follow to a {scheme or 'relative'} URL")
        if not parts.hostname:
            raise ResponseError("protocol", "a URL without a host")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as exc:
            raise ResponseError("protocol", f"bad port in URL: {exc}") from None
        host = parts.hostname
        if not host.isascii():
            host = host.encode("idna").decode("ascii")
        shown = f"[{host}]" if ":" in host else host
        default = port == (443 if scheme == "https" else 80)
        authorization = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        return cls(
            url=url,
            tls=scheme == "https",
            host=host,
            port=port,
            host_header=shown if default else f"{shown}:{port}",
            target=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
            authorization=authorization,
        )

    @property
    def origin(self) -> tuple[bool, str, int]:
        return self.tls, self.host, self.port


@dataclass
class Response:
    status: int
    reason: str
    location: str | None


class LeanClient:
    """Sends one request per connection. ``ssl_context`` verifies servers (a private CA can be
    trusted by passing a context that trusts it)."""

    def __init__(self, *, ssl_context: ssl.SSLContext, user_agent: str, body_cap: int) -> None:
        self.ssl_context = ssl_context
        self.user_agent = user_agent
        self.body_cap = body_cap
        self._targets: dict[str, Target] = {}

    def target(self, url: str) -> Target:
        found = self._targets.get(url)
        if found is None:
            found = self._targets[url] = Target.parse(url)
        return found

    async def request(self, method: str, target: Target, *, auth: str | None) -> Response:
        """One request on a fresh connection; the body is read up to the cap, then dropped."""
        stream: trio.abc.Stream = await trio.open_tcp_stream(target.host, target.port)
        try:
            if target.tls:
                tls = trio.SSLStream(
                    stream, self.ssl_context, server_hostname=target.host, https_compatible=True
                )
                await tls.do_handshake()
                stream = tls
            head = (
                f"{method} {target.target} HTTP/1.1\r\nHost: {target.host_header}\r\n"
                f"User-Agent: {self.user_agent}\r\nAccept: */*\r\nConnection: close\r\n"
            )
            if auth is not None:
                head += f"Authorization: {auth}\r\n"
            await stream.send_all((head + "\r\n").encode("latin-1"))
            return await self._read_response(stream, method)
        finally:
            await trio.aclose_forcefully(stream)

    async def _read_response(self, stream: trio.abc.Stream, method: str) -> Response:
        buffer = b""
        while True:  # skip interim 1xx answers
            end = buffer.find(b"\r\n\r\n")
            while end < 0:
                if len(buffer) > HEAD_LIMIT:
                    raise ResponseError("protocol", "the response head is larger than 64 KiB")
                chunk = await stream.receive_some(READ_SIZE)
                if not chunk:
                    if not buffer:
                        raise ResponseError(
                            "network", "the server closed the connection without answering"
                        )
                    raise ResponseError("network", "the connection closed inside the head")
                buffer += chunk
                end = buffer.find(b"\r\n\r\n", max(0, len(buffer) - len(chunk) - 3))
            status, reason, headers = _parse_head(buffer[:end])
            buffer = buffer[end + 4 :]
            if not 100 <= status < 200:
                break
        response = Response(status, reason, headers.get("location"))
        if method == "HEAD" or status in _NO_BODY_CODES:
            return response
        if "chunked" in headers.get("transfer-encoding", "").lower():
            await self._read_chunked(stream, buffer)
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise ResponseError("protocol", "a Content-Length that is not a number") from None
            if length < 0:
                raise ResponseError("protocol", "a negative Content-Length")
            await self._read_length(stream, buffer, length)
        else:
            await self._read_until_close(stream, buffer)
        return response

    async def _read_length(self, stream: trio.abc.Stream, got: bytes, length: int) -> None:
        want = min(length, self.body_cap)
        have = len(got)
        while have < want:
            chunk = await stream.receive_some(READ_SIZE)
            if not chunk:
                raise ResponseError(
                    "network",
                    f"the connection closed after {have} of {length} body bytes",
                )
            have += len(chunk)

    async def _read_until_close(self, stream: trio.abc.Stream, got: bytes) -> None:
        have = len(got)
        while have < self.body_cap:
            chunk = await stream.receive_some(READ_SIZE)
            if not chunk:
                return
            have += len(chunk)

    async def _read_chunked(self, stream: trio.abc.Stream, data: bytes) -> None:
        """Follow the chunk framing until the last chunk or the cap (raw bytes counted)."""
        position = 0
        raw = len(data)
        while True:
            line_end = data.find(b"\r\n", position)
            while line_end < 0:
                data, raw = await self._more(stream, data, raw, "inside a chunk size")
                if raw >= self.body_cap:
                    return
                line_end = data.find(b"\r\n", position)
            size_text = data[position:line_end].split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ResponseError("protocol", "a malformed chunk size") from None
            if size == 0:
                return  # trailers, if any, do not matter to a monitor
            position = line_end + 2 + size + 2
            while len(data) < position:
                if raw >= self.body_cap:
                    return
                data, raw = await self._more(stream, data, raw, "inside a chunk")
            # Keep memory flat: drop what was consumed.
            data = data[position:]
            position = 0

    @staticmethod
    async def _more(
        stream: trio.abc.Stream, data: bytes, raw: int, where: str
    ) -> tuple[bytes, int]:
        chunk = await stream.receive_some(READ_SIZE)
        if not chunk:
            raise ResponseError("network", f"the connection closed {where}")
        return data + chunk, raw + len(chunk)


def _parse_head(head: bytes) -> tuple[int, str, dict[str, str]]:
    lines = head.split(b"\r\n")
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None:
        raise ResponseError("protocol", f"not an HTTP/1.x status line: {lines[0][:60]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _HEADER_NAME.fullmatch(name):
            raise ResponseError("protocol", f"a malformed header line: {line[:60]!r}")
        key = name.decode("ascii").lower()
        text = value.strip().decode("latin-1")
        if key in headers and key != "location":
            headers[key] = f"{headers[key]}, {text}"
        elif key not in headers:
            headers[key] = text
    return int(match.group(1)), (match.group(2) or b"").decode("latin-1"), headers


def next_hop(target: Target, location: str, method: str, status: int) -> tuple[Target, str]:
    """Where a redirect leads, and with which method (303, and 301/302 after a POST, become GET,
    as browsers and httpx do)."""
    url = urljoin(target.url, location.strip())
    hop = Target.parse(url)
    if status == 303 and method != "HEAD" or status in (301, 302) and method == "POST":
        method = "GET"
    return hop, method
