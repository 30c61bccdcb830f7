"""Probe depth: phase timings and certificate expiry, through both engines, on real sockets."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import socket
import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trustme

from uptimelab.domain.pings import PHASES, PingResult
from uptimelab.probe import Prober
from uptimelab.storage.models import Site
from uptimelab.testing.zoo import Behaviour, TargetSpec, Zoo, ZooSpec, open_zoo

DNS_DELAY_S = 0.2
FIRST_BYTE_DELAY_MS = 300.0


def site(url: str, **fields: object) -> Site:
    now = dt.datetime.now(dt.UTC)
    return Site(url=url, created_at=now, updated_at=now, **fields)


@pytest.fixture(params=["lean", "httpx"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def phases_sum(ping: PingResult) -> int:
    return sum(getattr(ping, f"{p}_ms") or 0 for p in PHASES)


class SlowResolver(trio.abc.HostnameResolver):
    """Answers every name with 127.0.0.1, DNS_DELAY_S late."""

    async def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        await trio.sleep(DNS_DELAY_S)
        return await trio.to_thread.run_sync(socket.getaddrinfo, "127.0.0.1", port, *args)

    async def getnameinfo(self, sockaddr: Any, flags: int) -> Any:
        raise NotImplementedError


async def test_a_slow_resolver_shows_in_dns_ms_or_in_connect_ms_for_httpx(
    engine: str, zoo: Zoo
) -> None:
    url = zoo.url("ok").replace("127.0.0.1", "slow-dns.test")
    trio.socket.set_custom_hostname_resolver(SlowResolver())
    try:
        async with Prober(location="t", region_code="TT", timeout_ms=5000, engine=engine) as p:
            ping = await p.ping(site(url))
    finally:
        trio.socket.set_custom_hostname_resolver(None)
    assert ping is not None
    assert ping.status == "up", ping.error_message
    if engine == "lean":
        assert ping.dns_ms is not None
        assert ping.dns_ms >= DNS_DELAY_S * 1000
        assert ping.connect_ms is not None
        assert ping.connect_ms < ping.dns_ms
    else:  # httpcore resolves inside connect_tcp: no DNS phase of its own
        assert ping.dns_ms is None
        assert ping.connect_ms is not None
        assert ping.connect_ms >= DNS_DELAY_S * 1000
    assert ping.response_time_ms is not None
    assert abs(phases_sum(ping) - ping.response_time_ms) <= 1


async def test_a_server_slow_to_answer_shows_in_ttfb_ms_and_the_phases_add_up(
    engine: str,
) -> None:
    spec = ZooSpec((TargetSpec("slow", Behaviour.OK, latency_ms=FIRST_BYTE_DELAY_MS),))
    async with (
        open_zoo(spec) as zoo,
        Prober(location="t", region_code="TT", timeout_ms=5000, engine=engine) as p,
    ):
        ping = await p.ping(site(zoo.url("slow")))
    assert ping is not None
    assert ping.status == "up", ping.error_message
    assert ping.ttfb_ms is not None
    assert ping.ttfb_ms >= FIRST_BYTE_DELAY_MS
    # An IP address (no DNS phase) over plain HTTP (no TLS phase), no certificate.
    assert (ping.dns_ms, ping.tls_ms, ping.cert_expires_at) == (None, None, None)
    assert ping.connect_ms is not None
    assert ping.transfer_ms is not None
    assert ping.response_time_ms is not None
    assert ping.response_time_ms >= ping.ttfb_ms
    assert abs(phases_sum(ping) - ping.response_time_ms) <= 1


async def test_the_phases_of_every_redirect_hop_add_up(engine: str) -> None:
    spec = ZooSpec((TargetSpec("hop", Behaviour.REDIRECT, latency_ms=FIRST_BYTE_DELAY_MS),))
    async with (
        open_zoo(spec) as zoo,
        Prober(location="t", region_code="TT", timeout_ms=5000, engine=engine) as p,
    ):
        ping = await p.ping(site(zoo.url("hop")))
    assert ping is not None
    assert ping.status == "up", ping.error_message
    assert ping.ttfb_ms is not None
    assert ping.ttfb_ms >= 2 * FIRST_BYTE_DELAY_MS  # both hops wait before their first byte
    assert ping.response_time_ms is not None
    assert abs(phases_sum(ping) - ping.response_time_ms) <= 1


async def test_a_failed_connect_has_no_phase_after_it(engine: str, zoo: Zoo) -> None:
    async with Prober(location="t", region_code="TT", timeout_ms=2000, engine=engine) as p:
        ping = await p.ping(site(zoo.url("refused")))
    assert ping is not None
    assert ping.error_category == "refused"
    assert (ping.connect_ms, ping.tls_ms, ping.ttfb_ms, ping.transfer_ms) == (None,) * 4


# ------------------------------------------------------------------------------------------
# Certificates


@contextlib.asynccontextmanager
async def tls_server(ca: trustme.CA, not_after: dt.datetime) -> AsyncIterator[str]:
    """An HTTPS server on 127.0.0.1 whose certificate (from ``ca``) expires at ``not_after``;
    yields its URL. Every connection gets one 200 answer."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    not_before = min(not_after, dt.datetime.now(dt.UTC)) - dt.timedelta(days=30)
    cert = ca.issue_cert("127.0.0.1", not_before=not_before, not_after=not_after)
    cert.configure_cert(context)

    async def serve(stream: trio.SocketStream) -> None:
        tls = trio.SSLStream(stream, context, server_side=True, https_compatible=True)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = await tls.receive_some(4096)
                if not chunk:
                    return
                data += chunk
            await tls.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        await trio.aclose_forcefully(tls)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, serve, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        yield f"https://127.0.0.1:{port}/"
        nursery.cancel_scope.cancel()


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.mark.parametrize("days", [3, 30])
async def test_a_ping_over_https_keeps_the_certificates_expiry(engine: str, days: int) -> None:
    ca = trustme.CA()
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).replace(microsecond=0)
    async with (
        tls_server(ca, expires) as url,
        Prober(
            location="t", region_code="TT", timeout_ms=5000, engine=engine, verify=trusting(ca)
        ) as p,
    ):
        ping = await p.ping(site(url))
        unverified = await p.ping(site(url, tls_verify=False))
    assert ping is not None
    assert unverified is not None
    assert ping.status == "up", ping.error_message
    assert ping.cert_expires_at == expires
    assert ping.tls_ms is not None
    # A site that does not verify still learns when its certificate expires.
    assert unverified.cert_expires_at == expires


async def test_an_expired_certificate_is_tls_and_the_error_says_when_it_expired(
    engine: str,
) -> None:
    ca = trustme.CA()
    expired = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).replace(second=0, microsecond=0)
    async with (
        tls_server(ca, expired) as url,
        Prober(
            location="t", region_code="TT", timeout_ms=5000, engine=engine, verify=trusting(ca)
        ) as p,
    ):
        ping = await p.ping(site(url))
    assert ping is not None
    assert ping.error_category == "tls"
    assert ping.cert_expires_at is None  # the handshake failed
    assert ping.error_message == f"TLS failed: certificate expired on {expired:%Y-%m-%d %H:%M} UTC"
