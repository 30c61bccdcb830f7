"""The probe against real sockets (the zoo): every category, deadlines, the body cap."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import time
from pathlib import Path

import httpx
import pytest
import trio

from uptimelab.config import Settings
from uptimelab.domain.pings import PingResult
from uptimelab.errors import ConfigError
from uptimelab.probe import BODY_CAP_BYTES, Prober, categorise
from uptimelab.probe.prober import MAX_MESSAGE_CHARS, _clean
from uptimelab.storage.models import Ping, Site
from uptimelab.testing.malformed import MALFORMED, open_malformed
from uptimelab.testing.zoo import Behaviour, Zoo

pytestmark = pytest.mark.serial  # timing-sensitive: `make test` runs it after the parallel part


def site(url: str, **fields: object) -> Site:
    now = dt.datetime.now(dt.UTC)
    return Site(url=url, created_at=now, updated_at=now, **fields)


@pytest.fixture(params=["lean", "httpx"])
def engine(request: pytest.FixtureRequest) -> str:
    """The engine a probe test runs through: each such test runs through both, and they must
    give the same Pings."""
    return str(request.param)


def prober(engine: str, *, timeout_ms: int = 2000, verify: ssl.SSLContext | bool = True) -> Prober:
    return Prober(
        location="test", region_code="TT", timeout_ms=timeout_ms, verify=verify, engine=engine
    )


@pytest.mark.parametrize("behaviour", list(Behaviour))
async def test_each_zoo_target_is_categorised_as_the_zoo_expects(
    engine: str, zoo: Zoo, behaviour: Behaviour
) -> None:
    target = zoo.target(behaviour.value)
    # Short for the targets that time out; long enough for the others on a busy machine (the
    # gzip bomb is made on first use, 0.4 s on an idle core).
    timeout_ms = 700 if target.expect_category == "timeout" else 5000
    async with prober(engine, timeout_ms=timeout_ms) as p:
        ping = await p.ping(site(target.url))
    assert ping.error_category == target.expect_category, ping.error_message
    assert ping.status == ("up" if target.expect_category is None else "down")
    assert ping.location == "test"
    assert ping.region_code == "TT"
    assert ping.response_time_ms is not None
    assert ping.response_time_ms >= 0
    if ping.status == "down":
        assert ping.error_message
        assert len(ping.error_message) <= MAX_MESSAGE_CHARS


async def test_a_refused_connection_is_categorised_refused(engine: str, zoo: Zoo) -> None:
    async with prober(engine) as p:
        ping = await p.ping(site(zoo.url("refused")))
    assert (ping.error_category, ping.status_code) == ("refused", None)


async def test_an_untrusted_certificate_is_tls_and_a_trusted_one_is_up(
    engine: str, zoo: Zoo
) -> None:
    url = zoo.url("tls-untrusted")
    async with prober(engine) as p:
        assert (await p.ping(site(url))).error_category == "tls"
    trusted = ssl.create_default_context()
    zoo.ca.configure_trust(trusted)
    async with prober(engine, verify=trusted) as p:
        ping = await p.ping(site(url))
    assert (ping.status, ping.status_code) == ("up", 200)


async def test_a_site_with_tls_verify_false_is_up_behind_an_untrusted_certificate(
    engine: str, zoo: Zoo, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = zoo.url("tls-untrusted")  # a certificate of a CA nobody trusts
    async with prober(engine) as p:
        # The non-verifying context is made with the prober, not per ping.
        made: list[object] = []
        monkeypatch.setattr("uptimelab.probe.prober.ssl_context", lambda *a: made.append(a))
        verified = await p.ping(site(url))
        unverified = await p.ping(site(url, tls_verify=False))
        still_verified = await p.ping(site(url))
    assert verified is not None
    assert unverified is not None
    assert still_verified is not None
    assert verified.error_category == "tls"
    assert (unverified.status, unverified.status_code) == ("up", 200)
    assert still_verified.error_category == "tls"  # the prober's other sites are still checked
    assert made == []


async def test_one_deadline_covers_the_whole_ping_even_a_slow_drip(engine: str, zoo: Zoo) -> None:
    async with prober(engine, timeout_ms=400) as p:
        start = trio.current_time()
        ping = await p.ping(site(zoo.url("slow-drip")))
        took = trio.current_time() - start
    assert ping.error_category == "timeout"
    assert 0.35 <= took < 1.0
    assert ping.response_time_ms is not None
    assert 350 <= ping.response_time_ms < 1000


async def test_a_sites_own_timeout_wins_over_the_default(engine: str, zoo: Zoo) -> None:
    async with prober(engine, timeout_ms=5000) as p:
        start = trio.current_time()
        ping = await p.ping(site(zoo.url("hang"), timeout_ms=200))
    assert ping.error_category == "timeout"
    assert trio.current_time() - start < 1.0


async def test_a_huge_body_is_read_only_up_to_the_cap(engine: str, zoo: Zoo) -> None:
    async with prober(engine) as p:
        start = time.perf_counter()
        ping = await p.ping(site(zoo.url("huge-body")))
    assert ping.status == "up"
    assert time.perf_counter() - start < 1.0
    assert BODY_CAP_BYTES == 64 * 1024


async def test_expected_status_decides_up_and_down(engine: str, zoo: Zoo) -> None:
    url = zoo.url("status")  # answers 500
    async with prober(engine) as p:
        down = await p.ping(site(url))
        up = await p.ping(site(url, expected_status="500"))
    assert (down.status, down.error_category, down.status_code) == ("down", "http_status", 500)
    assert "expected 200-399" in (down.error_message or "")
    assert (up.status, up.error_category) == ("up", None)


async def test_redirects_are_followed_up_to_max_redirects(engine: str, zoo: Zoo) -> None:
    async with prober(engine) as p:
        followed = await p.ping(site(zoo.url("redirect")))
        not_followed = await p.ping(site(zoo.url("redirect"), follow_redirects=False))
        none_allowed = await p.ping(site(zoo.url("redirect"), max_redirects=0))
        loop = await p.ping(site(zoo.url("redirect-loop"), max_redirects=3))
    assert (followed.status, followed.status_code) == ("up", 200)
    assert (not_followed.status, not_followed.status_code) == ("up", 302)
    assert none_allowed.error_category == "too_many_redirects"
    assert loop.error_category == "too_many_redirects"
    assert "more than 3 redirects" in (loop.error_message or "")


async def test_head_requests_use_the_sites_method(engine: str, zoo: Zoo) -> None:
    async with prober(engine) as p:
        ping = await p.ping(site(zoo.url("ok"), method="HEAD"))
    assert ping.status == "up"


async def test_credentials_in_the_url_never_reach_the_message(engine: str, zoo: Zoo) -> None:
    url = zoo.url("status").replace("http://", "http://bob:hunter2@")
    async with prober(engine) as p:
        ping = await p.ping(site(url))
    assert ping.status == "down"
    assert "hunter2" not in (ping.error_message or "")


def test_clean_redacts_shortens_and_flattens() -> None:
    url = "https://bob:hunter2@example.org/"
    text = _clean(f"failed for {url}\nwith password hunter2 " + "x" * 600, url)
    assert text is not None
    assert "hunter2" not in text
    assert "\n" not in text
    assert len(text) == MAX_MESSAGE_CHARS


def test_categorise_looks_past_httpx_wrappers() -> None:
    def wrapped(cause: BaseException) -> httpx.ConnectError:
        try:
            try:
                raise cause
            except BaseException as exc:
                raise httpx.ConnectError("wrapped") from exc
        except httpx.ConnectError as outer:
            return outer

    assert categorise(wrapped(socket.gaierror(-2, "Name or service not known")))[0] == "dns"
    assert categorise(wrapped(ConnectionRefusedError(111, "refused")))[0] == "refused"
    assert categorise(wrapped(ssl.SSLCertVerificationError("bad cert")))[0] == "tls"
    assert categorise(wrapped(OSError(101, "Network is unreachable")))[0] == "network"
    group = OSError("all attempts failed")
    group.__cause__ = ExceptionGroup("x", [ConnectionRefusedError(111, "refused")])
    assert categorise(wrapped(group))[0] == "refused"


def test_a_malformed_response_through_mock_transport_is_protocol() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("illegal status line: b'garbage'", request=request)

    with pytest.raises(httpx.RemoteProtocolError) as info:
        httpx.Client(transport=httpx.MockTransport(handler)).get("http://x.example/")
    assert categorise(info.value)[0] == "protocol"


async def test_a_result_converts_to_the_sqlmodel_row(engine: str, zoo: Zoo) -> None:
    async with prober(engine) as p:
        result = await p.ping(site(zoo.url("status")))
    record = Ping.from_result(result)
    assert isinstance(record, Ping)
    assert record.model_dump() == {f: getattr(result, f) for f in PingResult.__slots__}


async def test_a_fault_of_our_own_client_gives_no_ping_and_is_logged_with_its_traceback(
    engine: str, zoo: Zoo, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(
        self: Prober, site: object, clock: object, page: object
    ) -> tuple[int, None, None]:
        raise RuntimeError("a bug in our client for http://bob:hunter2@x.example/")

    async with prober(engine) as p:
        monkeypatch.setattr(Prober, "_fetch", broken)
        with caplog.at_level("ERROR", logger="uptimelab.probe"):
            fault = await p.ping(site(zoo.url("ok")))
        monkeypatch.undo()
        after = await p.ping(site(zoo.url("ok")))
    assert fault is None
    (record,) = [r for r in caplog.records if r.name == "uptimelab.probe"]
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError
    assert "hunter2" not in record.getMessage()
    assert after is not None
    assert after.status == "up"  # the prober is still usable


async def test_cancellation_is_not_taken_for_a_fault(engine: str, zoo: Zoo) -> None:
    async with prober(engine, timeout_ms=5000) as p:
        with trio.move_on_after(0.2) as scope:
            await p.ping(site(zoo.url("hang")))
    assert scope.cancelled_caught


async def test_a_ca_bundle_setting_makes_a_site_of_a_private_ca_up_and_without_it_tls(
    engine: str, zoo: Zoo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "internal-ca.pem"
    zoo.ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("UPTIMELAB_CA_BUNDLE", str(bundle))
    settings = Settings.load()
    url = zoo.url("tls-untrusted")
    async with Prober(
        location="t", region_code="T", timeout_ms=2000, engine=engine, ca_bundle=settings.ca_bundle
    ) as p:
        trusted = await p.ping(site(url))
    async with prober(engine) as p:
        untrusted = await p.ping(site(url))
    assert trusted is not None
    assert untrusted is not None
    assert (trusted.status, trusted.status_code) == ("up", 200)
    assert untrusted.error_category == "tls"


@pytest.mark.parametrize(
    ("content", "rule"),
    [(None, "no such file"), (b"not a certificate\n", "not a readable PEM file")],
)
def test_a_ca_bundle_that_is_not_a_pem_file_of_cas_is_a_config_error(
    tmp_path: Path, content: bytes | None, rule: str
) -> None:
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=f"UPTIMELAB_CA_BUNDLE=.*{rule}"):
        Settings.load(ca_bundle=str(path))


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_each_malformed_target_is_categorised_as_it_expects(engine: str, name: str) -> None:
    async with open_malformed() as server, prober(engine) as p:
        ping = await p.ping(site(server.url(name)))
    assert ping is not None
    assert ping.error_category == MALFORMED[name].expect_category, ping.error_message
