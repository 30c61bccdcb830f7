"""The zoo's server: listeners on trio streams that act out each target's behaviour. A connection
brings one request (read by :mod:`.http1`, its head up to 16 KiB), of which only the request
line's path is looked at; the answer goes with ``Connection: close``, then the server closes.
Plain-HTTP targets share one listener, selected by the path ``/t/{name}``; TLS targets live on a
second listener whose certificate comes from a throw-away trustme CA (all targets do in a zoo
whose spec says ``tls``)."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import socket
import ssl
import struct
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import trio
import trustme

from . import http1
from .targets import EXPECTED_CATEGORY, Behaviour, Target, ZooSpec

HUGE_BODY_LENGTH = 10_000_000_000
"""Content-Length (bytes) announced by HUGE_BODY targets."""

SLOW_DRIP_LENGTH = 1_000_000
"""Content-Length (bytes) announced by SLOW_DRIP targets, which send one byte per second."""

_BACKLOG = 1024
# Benchmarks open hundreds of connections at once; a short accept queue would turn a burst
# into spurious connection failures that are the zoo's fault, not the target's.
_ACCEPT_RETRY_S = 0.1
_DRAIN_S = 1.0
_ACCEPT_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
ZOO_KEYWORD = "all systems operational"
"""A phrase the GZIP target's page says (decoded) and no other target's does."""

JSON_DOCUMENT = {"status": "UP", "items": [1, 2, 3], "version": 7}
"""What the JSON target answers (``application/json``)."""

BOMB_DECODED_BYTES = 128 * 1024 * 1024
"""How many bytes (zeros) the GZIP_BOMB target's gzip body decodes to: about 130 KB sent."""

_CHUNK = bytes(64 * 1024)
_GARBAGE = b"\x00\x01garbage\r\n\r\n"
_LINGER_RESET = struct.pack("ii", 1, 0)
# SO_LINGER on with a zero timeout makes close() send RST instead of FIN.
_CONNECTION_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)

# Behaviours answered on the plain-HTTP listener; REFUSED and DNS are never served, and
# TLS_UNTRUSTED is served on the TLS listener only.
_HTTP_SERVED = frozenset(Behaviour) - {Behaviour.REFUSED, Behaviour.DNS, Behaviour.TLS_UNTRUSTED}


class Zoo:
    """A running zoo, as yielded by :func:`open_zoo`; also holds the load counters.

    ``in_flight`` counts connections accepted and not yet closed, ``max_in_flight`` is its peak,
    ``requests`` counts request heads read, ``responses_read`` the whole responses a client read
    and then closed its connection after (what a test waits on instead of sleeping), and
    ``served`` maps each target name to the latency
    (milliseconds) applied to every request answered for it (HANG requests are never answered
    and so never listed). ``tls_handshakes`` counts the TLS handshakes that brought a request,
    ``tls_resumed`` those of them that resumed a session (a probe never should: each ping is a
    new visitor). ``echoed`` lists the headers (names in lower case) each ECHO request came with.
    """

    def __init__(
        self,
        targets: list[Target],
        ca: trustme.CA,
        http_port: int,
        tls_port: int,
        stop_at: float,
        tls: bool = False,
    ) -> None:
        """Made by :func:`open_zoo`; ``stop_at`` is the trio time at which serving stops; ``tls``
        serves every target on the TLS listener."""
        self.targets = targets
        self.ca = ca
        self.http_port = http_port
        self.tls_port = tls_port
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0
        self.responses_read = 0
        self.tls_handshakes = 0
        self.tls_resumed = 0
        self.echoed: list[dict[str, str]] = []
        self.served: dict[str, list[float]] = {t.name: [] for t in targets}
        self._by_name = {t.name: t for t in targets}
        served = {t.name: t for t in targets if t.behaviour in _HTTP_SERVED}
        untrusted = {t.name: t for t in targets if t.behaviour is Behaviour.TLS_UNTRUSTED}
        self._http_routes = {} if tls else served
        self._tls_routes = {**served, **untrusted} if tls else untrusted
        self._stop_at = stop_at

    def target(self, name: str) -> Target:
        """The target called ``name``; raises KeyError if there is none."""
        return self._by_name[name]

    def url(self, name: str) -> str:
        """The URL to ping for the target called ``name``; raises KeyError if there is none."""
        return self._by_name[name].url

    def reset_counters(self) -> None:
        """Zero ``requests``, ``responses_read``, the TLS counters, ``echoed`` and ``served``;
        restart ``max_in_flight`` from the current load."""
        self.max_in_flight = self.in_flight
        self.requests = 0
        self.responses_read = 0
        self.tls_handshakes = 0
        self.tls_resumed = 0
        self.echoed.clear()
        for latencies in self.served.values():
            latencies.clear()

    async def _handle(self, stream: trio.abc.Stream, tls: bool) -> None:
        """Serve one connection, then close it; a client that went away is not an error."""
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            with trio.move_on_at(self._stop_at), contextlib.suppress(*_CONNECTION_GONE):
                await self._converse(stream, self._tls_routes if tls else self._http_routes)
        finally:
            with contextlib.suppress(*_CONNECTION_GONE):
                await trio.aclose_forcefully(stream)
            self.in_flight -= 1

    async def _answer(self, stream: trio.abc.Stream, response: bytes) -> None:
        """Send a whole response, then count it in ``responses_read`` once the client has read it
        and closed its side. A plain-HTTP answer is half-closed first, so that a client reading
        to the end of the stream is not kept waiting; a client that neither closes nor goes away
        within a second is let go uncounted."""
        await stream.send_all(response)
        if isinstance(stream, trio.SocketStream):
            await stream.send_eof()
        with trio.move_on_after(_DRAIN_S):
            await http1.wait_for_eof(stream)
            self.responses_read += 1

    async def _converse(self, stream: trio.abc.Stream, routes: Mapping[str, Target]) -> None:
        """Read one request head from ``stream`` and act out the routed target's behaviour."""
        try:
            read = await http1.read_head(stream)
            if read is None:
                return
            head, rest = read
            self.requests += 1
            if isinstance(stream, trio.SSLStream):
                self.tls_handshakes += 1
                self.tls_resumed += bool(stream.session_reused)
            method, path, query = http1.parse_request_line(head)
        except http1.BadRequest as exc:
            await stream.send_all(http1.response(exc.status, b"bad request\n"))
            # Closing with unread request bytes sends RST, which can destroy the answer before
            # the client reads it: half-close instead and drain what the client still sends.
            if isinstance(stream, trio.SocketStream):
                await stream.send_eof()
                with trio.move_on_after(_DRAIN_S):
                    await http1.wait_for_eof(stream)
            return
        head_only = method == b"HEAD"
        name, final = path.removeprefix("/t/"), False
        if name.endswith("/final"):
            name, final = name.removesuffix("/final"), True
        target = routes.get(name) if path.startswith("/t/") else None
        if target is None or (final and target.behaviour is not Behaviour.REDIRECT):
            await self._answer(
                stream, http1.response(404, b"no such target\n", head_only=head_only)
            )
            return
        behaviour = target.behaviour
        if behaviour is Behaviour.HANG:
            # Never answer, but notice when the client gives up: holding every abandoned
            # connection until the zoo stops would exhaust file descriptors in long benchmarks.
            await http1.wait_for_eof(stream)
            return
        await trio.sleep(target.latency_ms / 1000)
        self.served[target.name].append(target.latency_ms)
        body = f"{target.name}\n".encode()
        if behaviour in (Behaviour.OK, Behaviour.TLS_UNTRUSTED):
            await self._answer(stream, http1.response(200, body, head_only=head_only))
        elif behaviour is Behaviour.STATUS:
            await self._answer(stream, http1.response(target.status, body, head_only=head_only))
        elif behaviour is Behaviour.REDIRECT and final:
            await self._answer(stream, http1.response(200, body, head_only=head_only))
        elif behaviour in (Behaviour.REDIRECT, Behaviour.REDIRECT_LOOP):
            location = target.url + ("/final" if behaviour is Behaviour.REDIRECT else "")
            if behaviour is Behaviour.REDIRECT and "to" in query:
                # /t/redirect?to=URL redirects there instead (another port, host or scheme).
                location = query["to"][0]
            response = http1.response(302, b"", head_only=head_only, location=location)
            await self._answer(stream, response)
        elif behaviour is Behaviour.RESET:
            if isinstance(stream, trio.SSLStream):
                stream = stream.transport_stream  # over TLS, the RST cuts the TLS connection
            if isinstance(stream, trio.SocketStream):
                stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            # Returning closes the stream, which now sends RST.
        elif behaviour is Behaviour.CLOSE:
            pass  # returning closes the stream cleanly (FIN) without a byte sent
        elif behaviour is Behaviour.GARBAGE:
            await stream.send_all(_GARBAGE)
        elif behaviour is Behaviour.SLOW_DRIP:
            await stream.send_all(http1.response(200, b"", length=SLOW_DRIP_LENGTH))
            if not head_only:
                for _ in range(SLOW_DRIP_LENGTH):
                    await stream.send_all(b"x")
                    # Wait out the second listening for the client, so a client that gave up
                    # frees its connection at once rather than at the next failing send.
                    with trio.move_on_after(1.0):
                        await http1.wait_for_eof(stream)
                        return
        elif behaviour is Behaviour.JSON:
            document = json.dumps(JSON_DOCUMENT).encode()
            response = http1.response(
                200, document, head_only=head_only, content_type="application/json"
            )
            await self._answer(stream, response)
        elif behaviour is Behaviour.GZIP:
            page = zlib.compress(f"{target.name}: {ZOO_KEYWORD}\n".encode(), wbits=16 + 15)
            response = http1.response(200, page, head_only=head_only, encoding="gzip")
            await self._answer(stream, response)
        elif behaviour is Behaviour.GZIP_BOMB:
            bomb = await trio.to_thread.run_sync(_gzip_bomb)
            await self._answer(
                stream, http1.response(200, bomb, head_only=head_only, encoding="gzip")
            )
        elif behaviour is Behaviour.ECHO:
            body = await http1.read_body(stream, head, rest)
            echo = _echo(head, body)
            self.echoed.append(echo["headers"])
            response = http1.response(
                200,
                json.dumps(echo).encode(),
                head_only=head_only,
                content_type="application/json",
            )
            await self._answer(stream, response)
        elif behaviour is Behaviour.HUGE_BODY:
            await stream.send_all(http1.response(200, b"", length=HUGE_BODY_LENGTH))
            if not head_only:
                # send_all blocks while the client is not reading, so this goes exactly as fast
                # as the client reads, and ends with a failing send when the client closes.
                remaining = HUGE_BODY_LENGTH
                while remaining > 0:
                    chunk = _CHUNK if remaining >= len(_CHUNK) else _CHUNK[:remaining]
                    await stream.send_all(chunk)
                    remaining -= len(chunk)


@functools.cache
def _gzip_bomb() -> bytes:
    """BOMB_DECODED_BYTES of zeros, gzipped (made once, in 0.4 s)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    parts = [compressor.compress(zeros) for _ in range(BOMB_DECODED_BYTES // len(zeros))]
    return b"".join([*parts, compressor.flush()])


def _echo(head: bytes, body: bytes) -> dict[str, Any]:
    """What the ECHO target answers (as JSON): the request's method, headers (names in lower
    case) and body."""
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return {
        "method": lines[0].split(" ", 1)[0],
        "headers": headers,
        "body": body.decode("utf-8", errors="replace"),
    }


def _url_host(host: str) -> str:
    """``host`` as it appears in a URL (IPv6 literals need brackets)."""
    return f"[{host}]" if ":" in host else host


@contextlib.contextmanager
def _unlistened_port(host: str) -> Iterator[int]:
    """A loopback port (number) with nothing listening, reserved while the context lasts.

    The socket is bound but never listens: connecting to it is refused, and holding it keeps
    another program from taking the port while the zoo runs.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        yield int(sock.getsockname()[1])


async def _listen(host: str, port: int) -> trio.SocketListener:
    """A TCP listener on ``host``; a taken nonzero ``port`` falls back to an ephemeral one."""
    try:
        (listener,) = await trio.open_tcp_listeners(port, host=host, backlog=_BACKLOG)
    except OSError as exc:
        if port == 0 or exc.errno != errno.EADDRINUSE:
            raise
        (listener,) = await trio.open_tcp_listeners(0, host=host, backlog=_BACKLOG)
    return listener


def _port_of(listener: trio.SocketListener) -> int:
    """The port number ``listener`` is bound to."""
    return int(listener.socket.getsockname()[1])


def _server_context(ca: trustme.CA, hosts: list[str]) -> ssl.SSLContext:
    """The TLS listener's context: what a common HTTPS site offers today (TLS 1.3, X25519, an
    ECDSA P-256 leaf certificate, trustme's default key type)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    # OpenSSL picks X25519 first anyway; naming it keeps the measured handshake the same
    # whatever the build's default group list is.
    with contextlib.suppress(ValueError, ssl.SSLError):
        context.set_ecdh_curve("X25519")
    ca.issue_cert(*hosts).configure_cert(context)
    return context


@contextlib.asynccontextmanager
async def open_zoo(spec: ZooSpec) -> AsyncIterator[Zoo]:
    """Bind the zoo's listeners, serve every target in the background and yield the :class:`Zoo`.

    Serving stops by itself ``spec.duration_s`` seconds after opening (listeners close, so later
    connections are refused, and open connections are dropped); leaving the block stops it too.
    """
    if any(t.behaviour is Behaviour.GZIP_BOMB for t in spec.targets):
        # Made before serving: made on the first request (0.4 s, more on a busy machine) it
        # ate the probe's deadline in tests with short time-outs.
        await trio.to_thread.run_sync(_gzip_bomb)
    ca = trustme.CA()
    cert_hosts = dict.fromkeys(["127.0.0.1", "localhost", spec.host])
    tls_context = _server_context(ca, list(cert_hosts))
    host = _url_host(spec.host)
    async with contextlib.AsyncExitStack() as stack:
        refused_port = stack.enter_context(_unlistened_port(spec.host))
        http_listener = await stack.enter_async_context(await _listen(spec.host, spec.port))
        tls_listener = await stack.enter_async_context(await _listen(spec.host, 0))
        http_port, tls_port = _port_of(http_listener), _port_of(tls_listener)
        served = f"https://{host}:{tls_port}" if spec.tls else f"http://{host}:{http_port}"
        bases = {
            Behaviour.REFUSED: f"http://{host}:{refused_port}",
            Behaviour.TLS_UNTRUSTED: f"https://{host}:{tls_port}",
        }
        targets = [
            Target(
                name=t.name,
                behaviour=t.behaviour,
                url=(
                    f"http://{t.name}.invalid/"
                    if t.behaviour is Behaviour.DNS
                    else f"{bases.get(t.behaviour, served)}/t/{t.name}"
                ),
                status=t.status if t.behaviour is Behaviour.STATUS else 200,
                latency_ms=t.latency_ms,
                expect_category=EXPECTED_CATEGORY[t.behaviour],
            )
            for t in spec.targets
        ]
        stop_at = trio.current_time() + spec.duration_s
        zoo = Zoo(targets, ca, http_port, tls_port, stop_at, tls=spec.tls)

        async with trio.open_nursery() as nursery:

            async def accept_until_stop(listener: trio.SocketListener, tls: bool) -> None:
                """Start one handler task per accepted connection; close ``listener`` at stop."""
                async with listener:
                    with trio.move_on_at(stop_at):
                        while True:
                            try:
                                stream: trio.abc.Stream = await listener.accept()
                            except OSError as exc:
                                # Out of file descriptors or memory is transient under load:
                                # wait for connections to close rather than crash the zoo.
                                if exc.errno not in _ACCEPT_RESOURCE_ERRNOS:
                                    raise
                                await trio.sleep(_ACCEPT_RETRY_S)
                                continue
                            if tls:
                                stream = trio.SSLStream(
                                    stream, tls_context, server_side=True, https_compatible=True
                                )
                            nursery.start_soon(zoo._handle, stream, tls)

            nursery.start_soon(accept_until_stop, http_listener, False)
            nursery.start_soon(accept_until_stop, tls_listener, True)
            try:
                yield zoo
            finally:
                nursery.cancel_scope.cancel()
