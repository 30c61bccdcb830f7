"""The lean engine against scripted servers: framing, redirects, credentials, the body cap.

Each script is served on a real socket; both engines must give the same category and status.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import AsyncIterator, Callable

import pytest
import trio

from uptimelab.probe import Prober
from uptimelab.storage.models import Site

Script = Callable[[bytes], bytes | None]  # request head -> what to send (None: send nothing)


class Scripted:
    """A loopback server answering each connection with ``script(request_head)``, then closing."""

    def __init__(self) -> None:
        self.script: Script = lambda head: b""
        self.requests: list[bytes] = []
        self.port = 0

    async def serve(self, listener: trio.SocketListener) -> None:
        async with listener, trio.open_nursery() as nursery:
            while True:
                stream = await listener.accept()
                nursery.start_soon(self._answer, stream)

    async def _answer(self, stream: trio.SocketStream) -> None:
        async with stream:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                head += chunk
            self.requests.append(head)
            answer = self.script(head)
            if answer:
                with contextlib.suppress(trio.BrokenResourceError):
                    await stream.send_all(answer)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def server() -> AsyncIterator[Scripted]:
    scripted = Scripted()
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    scripted.port = listener.socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(scripted.serve, listener)
        yield scripted
        nursery.cancel_scope.cancel()


def site(url: str, **fields: object) -> Site:
    now = dt.datetime.now(dt.UTC)
    return Site(url=url, created_at=now, updated_at=now, **fields)


async def both(url: str, **fields: object) -> tuple[tuple[object, ...], tuple[object, ...]]:
    """(status, code, category) from the lean and the httpx engine."""
    results = []
    for engine in ("lean", "httpx"):
        async with Prober(location="t", region_code="T", timeout_ms=2000, engine=engine) as p:
            ping = await p.ping(site(url, **fields))
        assert ping is not None, "a fault of our own client"
        results.append((ping.status, ping.status_code, ping.error_category))
    return results[0], results[1]


def ok(body: bytes = b"hello", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (ok(), ("up", 200, None)),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            ("up", 200, None),
        ),
        (b"HTTP/1.1 200 OK\r\n\r\nuntil the connection closes", ("up", 200, None)),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", ("down", None, "network")),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            ("down", None, "network"),
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
            ("down", None, "protocol"),
        ),
        (b"HTTP/1.1 200 OK\r\nBad Header Line\r\n\r\n", ("down", None, "protocol")),
        (b"HTTP/1.1 2000 OK\r\n\r\n", ("down", None, "protocol")),
        (b"HTTP/1.1 100 Continue\r\n\r\n" + ok(), ("up", 200, None)),
        (b"HTTP/1.1 204 No Content\r\n\r\n", ("up", 204, None)),
        (
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
            ("down", 503, "http_status"),
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Le", ("down", None, "network")),
        (None, ("down", None, "network")),
    ],
)
async def test_both_engines_read_responses_alike(
    server: Scripted, answer: bytes | None, expected: tuple[object, ...]
) -> None:
    server.script = lambda head: answer
    lean, httpx_result = await both(server.url + "/x")
    assert lean == expected
    assert httpx_result == expected


async def test_relative_redirects_and_303_become_get(server: Scripted) -> None:
    def script(head: bytes) -> bytes:
        if head.startswith(b"POST /a/start"):
            return b"HTTP/1.1 303 See Other\r\nLocation: ../next?q=1\r\nContent-Length: 0\r\n\r\n"
        if head.startswith(b"GET /next?q=1"):
            return ok()
        return b"HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n"

    server.script = script
    lean, httpx_result = await both(server.url + "/a/start", method="POST")
    assert lean == httpx_result == ("up", 200, None)


async def test_credentials_go_to_the_same_origin_only(server: Scripted) -> None:
    other = Scripted()
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    other.port = listener.socket.getsockname()[1]
    other.script = lambda head: ok()
    server.script = lambda head: (
        b"HTTP/1.1 302 Found\r\nLocation: %s/elsewhere\r\n\r\n" % other.url.encode()
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(other.serve, listener)
        url = server.url.replace("http://", "http://bob:s3cret@") + "/private"
        async with Prober(location="t", region_code="T", timeout_ms=2000) as p:
            ping = await p.ping(site(url))
        nursery.cancel_scope.cancel()
    assert ping is not None
    assert ping.status == "up"
    assert b"Authorization: Basic Ym9iOnMzY3JldA==" in server.requests[0]
    assert b"Authorization" not in other.requests[0]


async def test_every_ping_opens_a_fresh_connection_even_where_keep_alive_is_offered() -> None:
    connections = 0

    async def keep_alive(stream: trio.SocketStream) -> None:
        # Answers every request on the connection and keeps it open, as a real server would.
        nonlocal connections
        connections += 1
        async with stream:
            buffer = b""
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                buffer += chunk
                while b"\r\n\r\n" in buffer:
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    assert b"Connection: close" in head or b"connection: close" in head.lower()
                    await stream.send_all(ok(extra=b"Connection: keep-alive\r\n"))

    async with trio.open_nursery() as nursery:
        (listener,) = await nursery.start(
            functools.partial(trio.serve_tcp, keep_alive, 0, host="127.0.0.1")
        )
        url = f"http://127.0.0.1:{listener.socket.getsockname()[1]}/"
        for engine in ("lean", "httpx"):
            async with Prober(location="t", region_code="T", timeout_ms=2000, engine=engine) as p:
                for _ in range(3):
                    ping = await p.ping(site(url))
                    assert ping is not None
                    assert ping.status == "up"
        nursery.cancel_scope.cancel()
    assert connections == 6


async def test_head_reads_no_body_and_sends_the_host_header(server: Scripted) -> None:
    server.script = lambda head: b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"
    lean, httpx_result = await both(server.url + "/h?x=1", method="HEAD")
    assert lean == httpx_result == ("up", 200, None)
    assert server.requests[0].startswith(b"HEAD /h?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")


async def test_the_body_cap_stops_reading_a_body_that_never_ends(server: Scripted) -> None:
    server.script = lambda head: b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 2_000_000
    async with Prober(location="t", region_code="T", timeout_ms=2000) as p:
        ping = await p.ping(site(server.url + "/big"))
    assert ping is not None
    assert ping.status == "up"


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("/€.txt", b"/%E2%82%AC.txt"),
        ("/q?q=€", b"/q?q=%E2%82%AC"),
        ("/café.txt", b"/caf%C3%A9.txt"),
        ("/caf%C3%A9.txt", b"/caf%C3%A9.txt"),
        ("/hello world.txt", b"/hello%20world.txt"),
    ],
)
async def test_a_url_outside_ascii_is_sent_percent_encoded_as_utf8_by_both_engines(
    server: Scripted, path: str, sent: bytes
) -> None:
    def script(head: bytes) -> bytes:
        if head.startswith(b"GET " + sent + b" HTTP/1.1\r\n"):
            return ok()
        return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"

    server.script = script
    lean, httpx_result = await both(server.url + path)
    assert lean == httpx_result == ("up", 200, None)


@pytest.mark.parametrize(
    ("location", "sent"),
    [
        (b"/hello world.txt", b"/hello%20world.txt"),
        ("/café.txt".encode(), b"/caf%C3%A9.txt"),
        ("/€?q=€".encode(), b"/%E2%82%AC?q=%E2%82%AC"),
        (b"/already%20encoded", b"/already%20encoded"),
    ],
)
async def test_a_redirect_location_is_followed_in_its_normal_form(
    server: Scripted, location: bytes, sent: bytes
) -> None:
    def script(head: bytes) -> bytes:
        if head.startswith(b"GET /start "):
            return b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % location
        if head.startswith(b"GET " + sent + b" HTTP/1.1\r\n"):
            return ok()
        return b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"

    server.script = script
    lean, httpx_result = await both(server.url + "/start")
    assert lean == httpx_result == ("up", 200, None)


async def test_a_redirect_to_a_host_that_cannot_exist_is_protocol(server: Scripted) -> None:
    server.script = lambda head: b"HTTP/1.1 302 Found\r\nLocation: http://a..b/\r\n\r\n"
    async with Prober(location="t", region_code="T", timeout_ms=2000) as p:
        ping = await p.ping(site(server.url + "/start"))
    assert ping is not None
    assert (ping.status, ping.error_category) == ("down", "protocol")
