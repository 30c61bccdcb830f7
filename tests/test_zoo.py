"""The target zoo serves every behaviour a website monitor must categorise, over real sockets."""

from __future__ import annotations

import dataclasses
import socket
import ssl
import statistics
from collections.abc import AsyncIterator

import httpx
import pytest
import trio
import trio.testing

from uptimelab.testing.zoo import (
    EXPECTED_CATEGORY,
    Behaviour,
    TargetSpec,
    Zoo,
    ZooSpec,
    open_zoo,
    realistic_spec,
)

pytestmark = pytest.mark.serial  # timing-sensitive: `make test` runs it after the parallel part

FAST = httpx.Timeout(2.0)
SHORT = httpx.Timeout(0.3)


@pytest.fixture
async def zoo() -> AsyncIterator[Zoo]:
    """A zoo with one target of every behaviour plus a few with latency or other statuses."""
    spec = ZooSpec.every_failure()
    extra = (
        TargetSpec("slow-ok", Behaviour.OK, latency_ms=100.0),
        TargetSpec("not-found", Behaviour.STATUS, status=404),
    )
    async with open_zoo(dataclasses.replace(spec, targets=spec.targets + extra)) as z:
        yield z


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client with a short timeout that does not follow redirects by default."""
    async with httpx.AsyncClient(timeout=FAST) as c:
        yield c


async def _raw_exchange(port: int, path: str) -> bytes:
    """Send a bare GET for ``path`` to the zoo's HTTP port and return everything received."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: zoo\r\n\r\n".encode())
        received = b""
        with trio.fail_after(2):
            while data := await stream.receive_some():
                received += data
        return received


async def _get_head(port: int, path: str) -> tuple[trio.SocketStream, bytes]:
    """Send a bare GET for ``path``, read the response head and check it says 200.

    Returns the open connection and the body bytes that arrived along with the head.
    """
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: zoo\r\n\r\n".encode())
    received = b""
    with trio.fail_after(2):
        while b"\r\n\r\n" not in received:
            received += await stream.receive_some()
    head, body = received.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 ")
    return stream, body


async def _wait_until_idle(zoo: Zoo) -> None:
    """Wait (at most 2 s) until the zoo holds no connection."""
    with trio.fail_after(2):
        while zoo.in_flight:  # noqa: ASYNC110 -- the zoo offers no event for this, polling is fine
            await trio.sleep(0.01)


def test_every_failure_spec_has_one_target_per_behaviour_named_after_it() -> None:
    spec = ZooSpec.every_failure()
    assert [(t.name, t.behaviour) for t in spec.targets] == [(b.value, b) for b in Behaviour]
    assert next(t for t in spec.targets if t.name == "status").status == 500


def test_uniform_spec_has_n_ok_targets_with_the_same_latency() -> None:
    spec = ZooSpec.uniform(12, latency_ms=25.0)
    assert [t.name for t in spec.targets][:2] == ["ok-0000", "ok-0001"]
    assert {(t.behaviour, t.latency_ms) for t in spec.targets} == {(Behaviour.OK, 25.0)}


async def test_targets_know_their_url_and_expected_category(zoo: Zoo) -> None:
    for behaviour in Behaviour:
        target = zoo.target(behaviour.value)
        assert target.expect_category == EXPECTED_CATEGORY[behaviour]
        assert zoo.url(behaviour.value) == target.url
    assert zoo.url("ok") == f"http://127.0.0.1:{zoo.http_port}/t/ok"
    assert zoo.url("tls-untrusted") == f"https://127.0.0.1:{zoo.tls_port}/t/tls-untrusted"
    assert zoo.url("dns") == "http://dns.invalid/"
    assert zoo.target("status").expect_category == "http_status"
    assert zoo.target("ok").expect_category is None
    with pytest.raises(KeyError):
        zoo.target("no-such-target")


async def test_an_ok_target_answers_200_after_its_latency(
    zoo: Zoo, client: httpx.AsyncClient
) -> None:
    start = trio.current_time()
    response = await client.get(zoo.url("slow-ok"))
    elapsed = trio.current_time() - start
    assert response.status_code == 200
    assert response.headers["connection"] == "close"
    assert 0.09 <= elapsed < 0.6
    assert zoo.served["slow-ok"] == [100.0]
    assert zoo.requests == 1


async def test_a_response_counts_as_read_once_the_client_has_closed_after_it(zoo: Zoo) -> None:
    stream, _ = await _get_head(zoo.http_port, "/t/ok")
    with trio.fail_after(2):
        while await stream.receive_some():  # the rest of the body, then the zoo's half-close
            pass
    await trio.testing.wait_all_tasks_blocked()
    assert zoo.responses_read == 0  # read, but the client has not closed yet
    await stream.aclose()
    await _wait_until_idle(zoo)
    assert (zoo.requests, zoo.responses_read) == (1, 1)
    zoo.reset_counters()
    assert (zoo.requests, zoo.responses_read) == (0, 0)


async def test_a_status_target_answers_its_status(zoo: Zoo, client: httpx.AsyncClient) -> None:
    assert (await client.get(zoo.url("status"))).status_code == 500
    assert (await client.get(zoo.url("not-found"))).status_code == 404


async def test_a_head_request_gets_no_body(zoo: Zoo, client: httpx.AsyncClient) -> None:
    response = await client.head(zoo.url("ok"))
    assert response.status_code == 200
    assert response.content == b""


async def test_an_unknown_path_answers_404(zoo: Zoo, client: httpx.AsyncClient) -> None:
    base = f"http://127.0.0.1:{zoo.http_port}"
    assert (await client.get(f"{base}/t/nobody")).status_code == 404
    assert (await client.get(f"{base}/")).status_code == 404
    assert (await client.get(f"{base}/t/ok/final")).status_code == 404
    # The TLS target is only served on the TLS listener.
    assert (await client.get(f"{base}/t/tls-untrusted")).status_code == 404


async def test_a_malformed_request_answers_400(zoo: Zoo) -> None:
    received = await _raw_exchange(zoo.http_port, "/t/ok extra-word")
    assert received.startswith(b"HTTP/1.1 400 ")


async def test_an_oversized_request_head_answers_431(zoo: Zoo) -> None:
    received = await _raw_exchange(zoo.http_port, "/t/ok?" + "x" * 20_000)
    assert received.startswith(b"HTTP/1.1 431 ")


async def test_a_redirect_ends_at_200_after_one_hop(zoo: Zoo, client: httpx.AsyncClient) -> None:
    response = await client.get(zoo.url("redirect"), follow_redirects=True)
    assert response.status_code == 200
    assert len(response.history) == 1
    assert response.history[0].status_code == 302
    assert str(response.url) == zoo.url("redirect") + "/final"


async def test_a_redirect_loop_is_too_many_redirects(zoo: Zoo, client: httpx.AsyncClient) -> None:
    first = await client.get(zoo.url("redirect-loop"))
    assert first.status_code == 302
    assert first.headers["location"] == zoo.url("redirect-loop")
    with pytest.raises(httpx.TooManyRedirects):
        await client.get(zoo.url("redirect-loop"), follow_redirects=True)


async def test_a_refused_target_refuses_the_connection(zoo: Zoo, client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.ConnectError):
        await client.get(zoo.url("refused"))
    assert zoo.requests == 0


async def test_a_hanging_target_never_answers(zoo: Zoo) -> None:
    async with httpx.AsyncClient(timeout=SHORT) as short_client:
        with pytest.raises(httpx.ReadTimeout):
            await short_client.get(zoo.url("hang"))
    assert zoo.requests == 1
    assert zoo.served["hang"] == []
    # The zoo lets go of a hung connection once the client does.
    await _wait_until_idle(zoo)


async def test_a_reset_target_closes_with_a_reset(zoo: Zoo, client: httpx.AsyncClient) -> None:
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        await client.get(zoo.url("reset"))
    stream = await trio.open_tcp_stream("127.0.0.1", zoo.http_port)
    async with stream:
        await stream.send_all(b"GET /t/reset HTTP/1.1\r\nHost: zoo\r\n\r\n")
        with pytest.raises(trio.BrokenResourceError) as excinfo:
            await stream.receive_some()
    assert isinstance(excinfo.value.__cause__, ConnectionResetError)


async def test_a_close_target_closes_cleanly_without_answering(
    zoo: Zoo, client: httpx.AsyncClient
) -> None:
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        await client.get(zoo.url("close"))
    assert await _raw_exchange(zoo.http_port, "/t/close") == b""


async def test_a_garbage_target_is_a_protocol_error(zoo: Zoo, client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(zoo.url("garbage"))
    assert await _raw_exchange(zoo.http_port, "/t/garbage") == b"\x00\x01garbage\r\n\r\n"


async def test_an_untrusted_tls_target_fails_verification_by_default(
    zoo: Zoo, client: httpx.AsyncClient
) -> None:
    with pytest.raises(httpx.ConnectError) as excinfo:
        await client.get(zoo.url("tls-untrusted"))
    causes = []
    error: BaseException | None = excinfo.value
    while error is not None:
        causes.append(error)
        error = error.__cause__ or error.__context__
    assert any(isinstance(cause, ssl.SSLCertVerificationError) for cause in causes)


async def test_a_tls_target_answers_200_when_its_ca_is_trusted(zoo: Zoo) -> None:
    context = ssl.create_default_context()
    zoo.ca.configure_trust(context)
    async with httpx.AsyncClient(verify=context, timeout=FAST) as trusting:
        response = await trusting.get(zoo.url("tls-untrusted"))
    assert response.status_code == 200
    assert zoo.served["tls-untrusted"] == [0.0]


async def test_a_huge_body_streams_as_fast_as_it_is_read_and_stops_on_close(zoo: Zoo) -> None:
    # httpx only looks at the head here: breaking out of its body iterators early leaves async
    # generators for the garbage collector, which trio reports as a ResourceWarning.
    async with (
        httpx.AsyncClient(timeout=FAST) as c,
        c.stream("GET", zoo.url("huge-body")) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-length"] == "10000000000"
    start = trio.current_time()
    stream, body = await _get_head(zoo.http_port, "/t/huge-body")
    async with stream:
        with trio.fail_after(2):
            while len(body) < 1024 * 1024:
                body += await stream.receive_some()
    assert trio.current_time() - start < 1.0
    assert not body.strip(b"\x00")
    await _wait_until_idle(zoo)


async def test_a_slow_drip_sends_headers_then_about_one_byte_a_second(zoo: Zoo) -> None:
    async with (
        httpx.AsyncClient(timeout=FAST) as c,
        c.stream("GET", zoo.url("slow-drip")) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-length"] == "1000000"
    stream, body = await _get_head(zoo.http_port, "/t/slow-drip")
    async with stream:
        # The first byte comes at once and the next a second later, so half a second brings one.
        with trio.move_on_after(0.5):
            while True:
                body += await stream.receive_some()
    assert body == b"x"
    await _wait_until_idle(zoo)


async def test_a_dns_target_fails_name_resolution(zoo: Zoo, client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.ConnectError):
        await client.get(zoo.url("dns"))


async def test_max_in_flight_counts_concurrent_connections(
    zoo: Zoo, client: httpx.AsyncClient
) -> None:
    zoo.reset_counters()
    limit = trio.Semaphore(5)
    statuses: list[int] = []

    async def fetch() -> None:
        async with limit:
            statuses.append((await client.get(zoo.url("slow-ok"))).status_code)

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(fetch)
    assert statuses == [200] * 20
    assert zoo.max_in_flight == 5
    assert zoo.requests == 20
    assert zoo.served["slow-ok"] == [100.0] * 20
    await _wait_until_idle(zoo)
    zoo.reset_counters()
    assert (zoo.max_in_flight, zoo.requests, zoo.served["slow-ok"]) == (0, 0, [])


def test_realistic_spec_is_deterministic_for_a_seed() -> None:
    assert realistic_spec(200, seed=7) == realistic_spec(200, seed=7)
    assert realistic_spec(200, seed=7) != realistic_spec(200, seed=8)
    assert realistic_spec(200, seed=7).seed == 7


def test_realistic_spec_has_the_right_shares_and_latencies() -> None:
    spec = realistic_spec(1000, median_ms=150.0, sigma=0.6, timeout_share=0.02, seed=1)
    assert spec.targets[17].name == "site-00017"
    counts = {b: sum(t.behaviour is b for t in spec.targets) for b in Behaviour}
    assert counts[Behaviour.HANG] == 20
    fail_fast = counts[Behaviour.REFUSED] + counts[Behaviour.RESET] + counts[Behaviour.STATUS]
    assert fail_fast == 30
    assert min(counts[Behaviour.REFUSED], counts[Behaviour.RESET]) > 0
    assert {t.status for t in spec.targets if t.behaviour is Behaviour.STATUS} == {500, 503}
    assert counts[Behaviour.OK] == 950
    median = statistics.median(t.latency_ms for t in spec.targets)
    assert 130 < median < 170


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "example.com", "localhost", "::"])
def test_a_non_loopback_host_is_refused(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        ZooSpec((), host=host)


@pytest.mark.parametrize("duration_s", [0.0, -1.0, 86_401.0])
def test_an_unbounded_or_empty_duration_is_refused(duration_s: float) -> None:
    with pytest.raises(ValueError, match="duration_s"):
        ZooSpec((), duration_s=duration_s)


def test_duplicate_or_unsafe_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        ZooSpec((TargetSpec("a", Behaviour.OK), TargetSpec("a", Behaviour.HANG)))
    with pytest.raises(ValueError, match="name"):
        TargetSpec("a/b", Behaviour.OK)
    with pytest.raises(ValueError, match="status"):
        TargetSpec("s", Behaviour.STATUS)


async def test_a_taken_port_falls_back_to_an_ephemeral_one() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        spec = dataclasses.replace(ZooSpec.uniform(1), port=port)
        async with open_zoo(spec) as zoo, httpx.AsyncClient(timeout=FAST) as c:
            assert zoo.http_port not in (0, port)
            assert (await c.get(zoo.url("ok-0000"))).status_code == 200


async def test_the_zoo_stops_by_itself_after_its_duration() -> None:
    spec = dataclasses.replace(ZooSpec.every_failure(), duration_s=0.5)
    start = trio.current_time()
    async with open_zoo(spec) as zoo, httpx.AsyncClient(timeout=FAST) as c:
        assert (await c.get(zoo.url("ok"))).status_code == 200
        # A connection hanging when the zoo stops is dropped, not kept forever.
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await c.get(zoo.url("hang"))
        assert 0.4 < trio.current_time() - start < 1.0
        with pytest.raises(httpx.ConnectError):
            await c.get(zoo.url("ok"))
        assert zoo.in_flight == 0
