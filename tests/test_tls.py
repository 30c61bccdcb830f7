"""HTTPS through both engines: every way a handshake fails gives the same category from the lean
engine (TLS on the socket itself) as from httpx, each ping is a full handshake, and the TLS
contexts are made once per Prober."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import gc
import ipaddress
import socket
import ssl
import struct
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from uptimelab.probe import Prober, tls, transport
from uptimelab.probe.tls import TLSSocketStream
from uptimelab.storage.models import Site
from uptimelab.testing.zoo import EXPECTED_CATEGORY, Behaviour, ZooSpec, open_zoo

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)
# A fatal handshake_failure alert record (TLS 1.2 record version, as servers send it).
HANDSHAKE_FAILURE_ALERT = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])


def site(url: str, **fields: Any) -> Site:
    return Site(url=url, created_at=NOW, updated_at=NOW, **fields)


def prober(engine: str, verify: ssl.SSLContext | bool = True, timeout_ms: int = 1500) -> Prober:
    return Prober(
        location="test", region_code="TT", timeout_ms=timeout_ms, verify=verify, engine=engine
    )


def trusting(*cas: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    for ca in cas:
        ca.configure_trust(context)
    return context


def self_signed_pem(host: str) -> tuple[bytes, bytes]:
    """A certificate for ``host`` (an IP address) signed by its own key: (cert, key) as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 30 * DAY)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@dataclasses.dataclass
class Handshake:
    """How a TLS test server meets a client: with a certificate, or acting out a failure."""

    category: str | None  # what a correct probe reports, verifying
    up_unverified: bool  # whether a site with tls_verify false is up
    certificate: Callable[[trustme.CA], ssl.SSLContext] | None = None
    raw: str | None = None  # "alert", "close", "reset" or "stall" after the ClientHello


def _leaf(
    hosts: tuple[str, ...] = ("127.0.0.1",), **issue: dt.datetime
) -> Callable[[trustme.CA], ssl.SSLContext]:
    def make(ca: trustme.CA) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(*hosts, **issue).configure_cert(context)  # type: ignore[arg-type]
        return context

    return make


def _untrusted_ca(_: trustme.CA) -> ssl.SSLContext:
    return _leaf()(trustme.CA())


def _self_signed(_: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert, key = self_signed_pem("127.0.0.1")
    with trustme.Blob(cert).tempfile() as cert_file, trustme.Blob(key).tempfile() as key_file:
        context.load_cert_chain(cert_file, key_file)
    return context


HANDSHAKES = {
    "trusted": Handshake(None, True, _leaf()),
    "expired": Handshake("tls", True, _leaf(not_after=NOW - DAY)),
    "not-yet-valid": Handshake("tls", True, _leaf(not_before=NOW + DAY)),
    "wrong-host": Handshake("tls", True, _leaf(hosts=("wrong.example",))),
    "self-signed": Handshake("tls", True, _self_signed),
    "untrusted-ca": Handshake("tls", True, _untrusted_ca),
    "alert": Handshake("tls", False, raw="alert"),
    "closed-mid-handshake": Handshake("tls", False, raw="close"),
    "reset-mid-handshake": Handshake("network", False, raw="reset"),
    "never-completes": Handshake("timeout", False, raw="stall"),
}


@contextlib.asynccontextmanager
async def tls_server(handshake: Handshake, ca: trustme.CA) -> AsyncIterator[str]:
    """A server on loopback meeting every connection as ``handshake`` says; yields its URL."""
    context = handshake.certificate(ca) if handshake.certificate else None

    async def serve(stream: trio.SocketStream) -> None:
        if context is None:
            await act_out(stream)
            return
        tls = trio.SSLStream(stream, context, server_side=True, https_compatible=True)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = await tls.receive_some(4096)
                if not chunk:
                    return
                request += chunk
            await tls.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        await trio.aclose_forcefully(tls)

    async def act_out(stream: trio.SocketStream) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.receive_some(65536)  # the ClientHello (or its start)
            if handshake.raw == "alert":
                await stream.send_all(HANDSHAKE_FAILURE_ALERT)
            elif handshake.raw == "reset":
                # SO_LINGER on, zero timeout: the close sends RST.
                stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif handshake.raw == "stall":
                while await stream.receive_some(65536):
                    pass  # until the client gives up
        await trio.aclose_forcefully(stream)

    async with trio.open_nursery() as nursery:
        (listener,) = await nursery.start(
            functools.partial(trio.serve_tcp, serve, 0, host="127.0.0.1")
        )
        port = listener.socket.getsockname()[1]
        yield f"https://127.0.0.1:{port}/"
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("name", list(HANDSHAKES))
async def test_each_handshake_gives_the_same_category_through_both_engines(name: str) -> None:
    handshake = HANDSHAKES[name]
    ca = trustme.CA()
    async with tls_server(handshake, ca) as url:
        pings = {}
        for engine in ("lean", "httpx"):
            async with prober(engine, trusting(ca), timeout_ms=700) as p:
                pings[engine] = await p.ping(site(url))
    if handshake.raw == "stall":
        # httpcore closes its socket when a handshake fails, not when it is cancelled: the
        # httpx engine leaves that socket to the garbage collector (the lean engine does not).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
    lean, httpx_ping = pings["lean"], pings["httpx"]
    assert lean is not None
    assert httpx_ping is not None
    assert lean.error_category == httpx_ping.error_category == handshake.category, (
        lean.error_message,
        httpx_ping.error_message,
    )
    assert lean.status == httpx_ping.status == ("up" if handshake.category is None else "down")
    if handshake.category is None:
        assert lean.tls_ms is not None
        assert lean.cert_expires_at is not None
    elif handshake.category != "timeout":
        assert lean.cert_expires_at is None  # no verified certificate to keep


@pytest.mark.parametrize("engine", ["lean", "httpx"])
@pytest.mark.parametrize("name", [n for n, h in HANDSHAKES.items() if h.category == "tls"])
async def test_a_site_with_tls_verify_false_passes_a_bad_certificate_but_not_a_failed_handshake(
    engine: str, name: str
) -> None:
    handshake = HANDSHAKES[name]
    ca = trustme.CA()
    async with tls_server(handshake, ca) as url, prober(engine, trusting(ca)) as p:
        ping = await p.ping(site(url, tls_verify=False))
    assert ping is not None
    assert (ping.status == "up") is handshake.up_unverified, ping.error_message


@pytest.mark.parametrize("engine", ["lean", "httpx"])
async def test_an_expired_certificates_message_says_when_and_a_not_yet_valid_ones_does_not(
    engine: str,
) -> None:
    ca = trustme.CA()
    expired_at = (NOW - 2 * DAY).replace(second=0, microsecond=0)
    expired = Handshake("tls", True, _leaf(not_after=expired_at))
    async with tls_server(expired, ca) as url, prober(engine, trusting(ca)) as p:
        ping = await p.ping(site(url))
    assert ping is not None
    assert (
        ping.error_message == f"TLS failed: certificate expired on {expired_at:%Y-%m-%d %H:%M} UTC"
    )
    async with (
        tls_server(HANDSHAKES["not-yet-valid"], ca) as url,
        prober(engine, trusting(ca)) as p,
    ):
        ping = await p.ping(site(url))
    assert ping is not None
    assert ping.error_message is not None
    assert "not yet valid" in ping.error_message


@pytest.mark.parametrize("engine", ["lean", "httpx"])
async def test_every_ping_over_https_is_a_full_handshake(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reused: list[bool | None] = []  # as the lean engine's own sockets say

    async def open_tls(*args: Any) -> TLSSocketStream:
        stream = await tls.open_tls(*args)
        reused.append(stream.ssl_socket.session_reused)
        return stream

    monkeypatch.setattr(transport, "open_tls", open_tls)
    spec = ZooSpec.uniform(3, tls=True)
    async with open_zoo(spec) as zoo, prober(engine, trusting(zoo.ca)) as p:
        for _ in range(2):
            for target in zoo.targets:
                ping = await p.ping(site(target.url))
                assert ping is not None
                assert ping.status == "up", ping.error_message
                assert ping.tls_ms is not None
    assert zoo.tls_handshakes == 6
    assert zoo.tls_resumed == 0  # as the server's side says
    assert reused == ([False] * 6 if engine == "lean" else [])


@pytest.mark.parametrize("engine", ["lean", "httpx"])
async def test_the_tls_contexts_are_made_with_the_prober_not_per_ping(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_zoo(ZooSpec.uniform(2, tls=True)) as zoo:
        trust = trusting(zoo.ca)
        made: list[object] = []
        original = ssl.SSLContext.__new__

        def counting(cls: type[ssl.SSLContext], *args: Any, **kwargs: Any) -> ssl.SSLContext:
            made.append(cls)
            return original(cls, *args, **kwargs)

        monkeypatch.setattr(ssl.SSLContext, "__new__", counting)
        async with prober(engine, trust) as p:
            at_start = len(made)
            for target in zoo.targets * 3:
                ping = await p.ping(site(target.url))
                assert ping is not None
                assert ping.status == "up", ping.error_message
                ping = await p.ping(site(target.url, tls_verify=False))
                assert ping is not None
                assert ping.status == "up", ping.error_message
    assert at_start >= 1  # the non-verifying context at least
    assert len(made) == at_start


@pytest.mark.parametrize("behaviour", list(Behaviour))
async def test_every_zoo_target_over_https_is_categorised_alike_by_both_engines(
    behaviour: Behaviour,
) -> None:
    spec = dataclasses.replace(ZooSpec.every_failure(), tls=True)
    async with open_zoo(spec) as zoo:
        target = zoo.target(behaviour.value)
        categories = []
        # Short for the targets that time out; long enough for the others on a busy machine
        # (the gzip bomb is made on first use).
        timeout_ms = 700 if EXPECTED_CATEGORY[behaviour] == "timeout" else 5000
        for engine in ("lean", "httpx"):
            async with prober(engine, trusting(zoo.ca), timeout_ms=timeout_ms) as p:
                ping = await p.ping(site(target.url))
            assert ping is not None
            categories.append(ping.error_category)
    expected = None if behaviour is Behaviour.TLS_UNTRUSTED else EXPECTED_CATEGORY[behaviour]
    assert categories == [expected, expected]
    if behaviour not in (Behaviour.REFUSED, Behaviour.DNS):
        assert target.url.startswith("https://")
