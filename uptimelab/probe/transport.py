"""The lean HTTP/1.1 client of the probe: one request on a fresh trio stream, nothing more.

A monitor needs a small part of HTTP: open a connection (DNS, TCP, TLS), send one request with
``Connection: close``, read the response head, read at most 64 KiB of body, follow redirects by
the site's rules. Doing just that on trio streams costs a fraction of the CPU of a general
client (no pool, no per-request object graph), which decides how many sites one core can watch.
TLS is OpenSSL on the socket itself, trio only waiting for readiness (:mod:`.tls`).
The httpx engine (``PROBE_ENGINE=httpx``) does the same through httpx; the probe's tests run
every failure mode through both, and both must categorise alike.

HTTP/1.1 framing (status line, headers, Content-Length, chunks, interim 1xx answers) is read by
httptools (llhttp, the parser of Node.js): a C parser costs about 2 us a response where h11 costs
40, and it is strict where framing is at stake. URLs, the site's and every redirect's Location,
are sent in their normal form (:mod:`uptimelab.domain.urls`): ASCII, percent-encoded UTF-8.

Failures surface as exceptions the probe categorises: OSError and trio errors from the
transport (their causes say dns, refused, tls, network), and :class:`ResponseError`, which names
its category (``protocol`` for a malformed answer, ``network`` for one cut short).
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import httptools
import trio

from ..domain.urls import URLRuleError, normalise_url, resolve_location
from .phases import PhaseClock
from .tls import open_tls

BODY_CAP_BYTES = 64 * 1024
HEAD_LIMIT = 64 * 1024
READ_SIZE = 64 * 1024
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
HAPPY_EYEBALLS_DELAY_S = 0.250  # trio's default (RFC 8305 recommends 250 ms)


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
        """Take ``url`` apart in its normal form. Raises ResponseError (protocol) for a URL that
        cannot be requested (stored before the URL rules, or a redirect's)."""
        if not (url.isascii() and url.isprintable() and " " not in url):
            # Stored URLs are in the normal form already (the fast path: normalising costs as
            # much as the rest of a ping); one stored before the rules may not be.
            try:
                url = normalise_url(url)
            except URLRuleError as exc:
                raise ResponseError("protocol", f"cannot request this URL: {exc}") from None
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ResponseError("protocol", f"cannot request this URL: {url[:60]!r}")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as exc:
            raise ResponseError("protocol", f"bad port in URL: {exc}") from None
        host = parts.hostname
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
    location: bytes | None  # as sent: resolved and normalised by next_hop
    # Kept only when asked (a site with a body assertion): up to the cap, as sent.
    body: bytes | None = None
    content_encoding: str | None = None
    content_type: str | None = None
    more: bool = False  # the body went on past what was read


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

    async def request(
        self,
        method: str,
        target: Target,
        *,
        auth: str | None,
        clock: PhaseClock,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        keep_body: bool = False,
    ) -> Response:
        """One request on a fresh connection; the body is read up to the cap, then dropped
        (kept in the Response if ``keep_body``). ``headers`` (a site's own, which win over ours
        and over ``auth``) and ``body`` go with the request. ``clock`` is lapped at the end of
        each phase and keeps the certificate's expiry."""
        clock.origin = (target.host, target.port)
        stream: trio.abc.Stream = await _open_stream(target.host, target.port, clock)
        try:
            if target.tls:
                stream = await self.start_tls(stream, target.host, clock)
            if headers or body is not None:
                head = _head(method, target, self.user_agent, auth, headers or {}, body)
            else:
                head = (
                    f"{method} {target.target} HTTP/1.1\r\nHost: {target.host_header}\r\n"
                    f"User-Agent: {self.user_agent}\r\nAccept: */*\r\nConnection: close\r\n"
                )
                if auth is not None:
                    head += f"Authorization: {auth}\r\n"
            await stream.send_all((head + "\r\n").encode("ascii") + (body or b""))
            response = await self._read_response(stream, method, clock, keep_body)
        finally:
            await trio.aclose_forcefully(stream)
        clock.lap("transfer")
        return response

    async def start_tls(
        self, stream: trio.abc.Stream, host: str, clock: PhaseClock
    ) -> trio.abc.Stream:
        """The handshake on a connected ``stream`` (lapped as ``tls``; the certificate's
        expiry kept), done by OpenSSL on the socket itself (:mod:`.tls`)."""
        assert isinstance(stream, trio.SocketStream)
        tls = await open_tls(stream, self.ssl_context, host)
        clock.lap("tls")
        clock.saw_certificate(tls.ssl_socket)
        return tls

    async def _read_response(
        self, stream: trio.abc.Stream, method: str, clock: PhaseClock, keep_body: bool = False
    ) -> Response:
        """Feed what the server sends to the parser until the response is complete, the body cap
        is reached, or (HEAD) the head is complete."""
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
                    if reader.complete or method == "HEAD" or reader.body_bytes >= self.body_cap:
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


def _head(
    method: str,
    target: Target,
    user_agent: str,
    auth: str | None,
    headers: Mapping[str, str],
    body: bytes | None,
) -> str:
    """A request head with a site's own headers (checked where the site was stored: tokens and
    one-line ASCII values), which replace ours of the same name."""
    own = {name.lower() for name in headers}
    head = f"{method} {target.target} HTTP/1.1\r\nHost: {target.host_header}\r\n"
    if "user-agent" not in own:
        head += f"User-Agent: {user_agent}\r\n"
    if "accept" not in own:
        head += "Accept: */*\r\n"
    head += "Connection: close\r\n"
    if auth is not None and "authorization" not in own:
        head += f"Authorization: {auth}\r\n"
    for name, value in headers.items():
        head += f"{name}: {value}\r\n"
    if body is not None:
        head += f"Content-Length: {len(body)}\r\n"
    return head


def next_hop(target: Target, location: bytes, method: str, status: int) -> tuple[Target, str]:
    """Where a redirect leads (its Location resolved against ``target`` and normalised), and with
    which method (303, and 301/302 after a POST, become GET, as browsers and httpx do).

    Raises ResponseError (protocol) for a Location that cannot be followed."""
    try:
        url = resolve_location(target.url, location)
    except URLRuleError as exc:
        raise ResponseError("protocol", f"cannot follow the redirect: {exc}") from None
    hop = Target.parse(url)
    if status == 303 and method != "HEAD" or status in (301, 302) and method == "POST":
        method = "GET"
    return hop, method


async def _open_stream(host: str, port: int, clock: PhaseClock) -> trio.SocketStream:
    """trio.open_tcp_stream in two timed phases: resolve ``host`` (``dns``, not lapped for an IP
    address), then connect (``connect``), racing the addresses as trio does (happy eyeballs:
    the next address is tried when the previous fails or after 250 ms, the first to connect
    wins). Raises OSError (socket.gaierror for a name that does not resolve)."""
    # trio.socket.getaddrinfo answers an IP address at once, and asks a custom hostname
    # resolver (trio.socket.set_custom_hostname_resolver) as open_tcp_stream would.
    targets = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
    if not _is_ip_address(host):
        clock.lap("dns")
    if not targets:
        raise OSError(f"name {host!r} resolved to no address")
    if len(targets) == 1:
        stream = await _connect(targets[0])
    else:
        stream = await _race(_rfc6555_order(targets), host, port)
    clock.lap("connect")
    return stream


async def _connect(target: tuple[Any, ...]) -> trio.SocketStream:
    family, kind, proto, _, address = target
    sock = trio.socket.socket(family, kind, proto)
    try:
        await sock.connect(address)
    except BaseException:  # also cancelled: the socket is ours to close either way
        sock.close()
        raise
    return trio.SocketStream(sock)


async def _race(targets: list[tuple[Any, ...]], host: str, port: int) -> trio.SocketStream:
    """Happy eyeballs over resolved addresses, as trio.open_tcp_stream does."""
    winner: trio.SocketStream | None = None
    errors: list[OSError] = []

    async def attempt(target: tuple[Any, ...], failed: trio.Event) -> None:
        nonlocal winner
        try:
            stream = await _connect(target)
        except OSError as exc:
            errors.append(exc)
            failed.set()
            return
        if winner is None:
            winner = stream
            nursery.cancel_scope.cancel()
        else:  # connected in the same instant as the winner
            await trio.aclose_forcefully(stream)

    async with trio.open_nursery() as nursery:
        for target in targets:
            failed = trio.Event()
            nursery.start_soon(attempt, target, failed)
            with trio.move_on_after(HAPPY_EYEBALLS_DELAY_S):
                await failed.wait()
    if winner is None:
        message = f"all attempts to connect to {host}:{port} failed"
        raise OSError(message) from ExceptionGroup(message, errors)
    return winner


def _rfc6555_order(targets: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The first address of the other family moves up to second place (RFC 6555 5.4)."""
    for i in range(1, len(targets)):
        if targets[i][0] != targets[0][0]:
            return [targets[0], targets[i], *targets[1:i], *targets[i + 1 :]]
    return targets


@functools.lru_cache(maxsize=4096)
def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
