"""A site's secret headers follow a redirect to the same origin only, through every engine: the
zoo redirects to an ECHO target on the same listener, another port, another host name, or over
the other scheme, and the test looks at what the receiving target saw."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest

from uptimelab.probe import Prober
from uptimelab.probe.prober import ENGINES
from uptimelab.storage.models import Site
from uptimelab.testing.zoo import Behaviour, TargetSpec, Zoo, ZooSpec, open_zoo

# Every kind of secret header, in mixed case, and two that are not secrets.
SECRET_HEADERS = {
    "Authorization": "Bearer a-token",
    "proxy-authorization": "Basic cHJveHk6cHc=",
    "COOKIE": "session=s3cr3t",
    "X-Api-Key": "k-123",
    "x-AUTH-token": "t-456",
    "Client-Secret": "s-789",
    "X-Password-Hash": "p-000",
}
PUBLIC_HEADERS = {"X-Request-Source": "uptimelab-test", "Accept-Language": "en"}
SPEC = ZooSpec(
    (TargetSpec("redirect", Behaviour.REDIRECT), TargetSpec("echo", Behaviour.ECHO)),
    duration_s=120,
)


@pytest.fixture
async def zoos() -> AsyncIterator[tuple[Zoo, Zoo, Zoo]]:
    """A plain zoo, another plain zoo (another port) and an HTTPS one."""
    async with (
        open_zoo(SPEC) as first,
        open_zoo(SPEC) as second,
        open_zoo(ZooSpec(SPEC.targets, duration_s=120, tls=True)) as secure,
    ):
        yield first, second, secure


def via(zoo: Zoo, to: str) -> str:
    """The URL of ``zoo``'s REDIRECT target sending its client on to ``to``."""
    return f"{zoo.url('redirect')}?to={quote(to, safe='')}"


async def echoed_after(engine: str, url: str, trust: ssl.SSLContext, zoo: Zoo) -> dict[str, str]:
    """Ping ``url`` with the secret and public headers; what ``zoo``'s ECHO target saw."""
    now = dt.datetime.now(dt.UTC)
    site = Site(
        url=url,
        created_at=now,
        updated_at=now,
        headers={**SECRET_HEADERS, **PUBLIC_HEADERS},
    )
    zoo.reset_counters()
    async with Prober(
        location="test", region_code="TT", timeout_ms=3000, verify=trust, engine=engine
    ) as prober:
        ping = await prober.ping(site)
    assert ping is not None
    assert ping.status == "up", ping.error_message
    (seen,) = zoo.echoed  # kept before the answer is sent, so there by now
    return seen


@pytest.mark.parametrize("engine", ENGINES)
async def test_secret_headers_are_kept_on_a_same_origin_redirect(
    engine: str, zoos: tuple[Zoo, Zoo, Zoo]
) -> None:
    first, _, secure = zoos
    trust = ssl.create_default_context()
    secure.ca.configure_trust(trust)
    for zoo in (first, secure):
        seen = await echoed_after(engine, via(zoo, zoo.url("echo")), trust, zoo)
        for name, value in {**SECRET_HEADERS, **PUBLIC_HEADERS}.items():
            assert seen.get(name.lower()) == value, (zoo.url("echo"), name)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("where", ["port", "host", "scheme", "downgrade"])
async def test_secret_headers_are_dropped_on_a_cross_origin_redirect(
    engine: str, where: str, zoos: tuple[Zoo, Zoo, Zoo]
) -> None:
    first, second, secure = zoos
    trust = ssl.create_default_context()
    secure.ca.configure_trust(trust)
    start, receiver, to = {
        "port": (first, second, second.url("echo")),
        "host": (first, first, first.url("echo").replace("127.0.0.1", "localhost")),
        "scheme": (first, secure, secure.url("echo")),
        "downgrade": (secure, first, first.url("echo")),
    }[where]
    seen = await echoed_after(engine, via(start, to), trust, receiver)
    for name in SECRET_HEADERS:
        assert name.lower() not in seen, (where, name)
    for name, value in PUBLIC_HEADERS.items():
        assert seen.get(name.lower()) == value, (where, name)
