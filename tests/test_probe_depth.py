"""Probe depth: phase timings and certificate expiry, through both engines, on real sockets."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import socket
import ssl
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import trio
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import uptimelab as ul
from uptimelab import stats as ul_stats
from uptimelab.api.metrics import Metrics, Scrape
from uptimelab.config import Settings
from uptimelab.domain.pings import PHASES, PingResult
from uptimelab.errors import SiteError
from uptimelab.ops.health import health, spool_backlog, status
from uptimelab.probe import Prober
from uptimelab.storage.database import Database
from uptimelab.storage.models import Site
from uptimelab.storage.queries import site_metrics
from uptimelab.storage.spool import Segment, Spool
from uptimelab.storage.writer import Writer
from uptimelab.testing.zoo import Behaviour, TargetSpec, Zoo, ZooSpec, open_zoo

from .db_snapshot import empty_tables

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


# ------------------------------------------------------------------------------------------
# Stored: site_stats, status, health, /metrics, per-phase percentiles, old spool segments

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def store_pings(db: Database, rows: list[tuple[Any, ...]]) -> None:
    """Rows of (site_id, minutes ago, status, dns, connect, tls, ttfb, transfer, cert expiry)."""
    with db.connect() as conn:
        with conn.cursor().copy(
            "COPY pings (site_id, checked_at, status, response_time_ms, error_category, "
            "location, region_code, dns_ms, connect_ms, tls_ms, ttfb_ms, transfer_ms, "
            "cert_expires_at) FROM STDIN"
        ) as copy:
            for site_id, ago, status, *phases, cert in rows:
                total = sum(p or 0 for p in phases)
                category = None if status == "up" else "tls"
                at = NOW - dt.timedelta(minutes=ago)
                copy.write_row((site_id, at, status, total, category, "Lab", "LB", *phases, cert))
        conn.execute("SELECT uptimelab_refresh_site_stats(%s)", (NOW,))


def add_sites(db: Database, *names: str) -> list[uuid.UUID]:
    with db.connect() as conn:
        return [
            conn.execute(
                "INSERT INTO sites (name, url) VALUES (%s, %s) RETURNING id",
                (name, f"https://{name}.example/"),
            ).fetchone()["id"]
            for name in names
        ]


def test_site_stats_keeps_the_latest_certificate_and_status_and_health_warn_of_it(
    db: Database, tmp_path: Path
) -> None:
    soon, later, plain = add_sites(db, "soon", "later", "plain")
    in_3_days = NOW + dt.timedelta(days=3)
    store_pings(
        db,
        [
            (soon, 30, "up", 5, 10, 20, 40, 2, NOW + dt.timedelta(days=90)),
            (soon, 20, "up", 5, 10, 20, 40, 2, in_3_days),  # renewed badly: the latest counts
            (soon, 10, "down", 5, 10, None, None, None, None),  # a failed handshake: none
            (later, 10, "up", 5, 10, 20, 40, 2, NOW + dt.timedelta(days=30)),
            (plain, 10, "up", 5, 10, None, 40, 2, None),
        ],
    )
    with db.connect() as conn:
        kept = {
            r["site_id"]: r["cert_expires_at"]
            for r in conn.execute("SELECT site_id, cert_expires_at FROM site_stats")
        }
    assert kept == {soon: in_3_days, later: NOW + dt.timedelta(days=30), plain: None}

    settings = Settings.load(database_url=db.url, data_dir=tmp_path)
    facts = status(settings, db=db).database
    assert facts.cert_expiring_sites == 1
    assert [(c.name, c.expires_at, c.min_days) for c in facts.cert_expiring or []] == [
        ("soon", in_3_days, 14)
    ]
    check = next(c for c in health(settings, db=db).checks if c.name == "certificates")
    assert check.status == "degraded"
    assert "soon" in check.detail
    assert "later" not in check.detail

    # A site may ask for more notice: 30 days ahead, "later" is a warning too.
    with db.connect() as conn:
        conn.execute("UPDATE sites SET cert_min_days = 31 WHERE id = %s", (later,))
    assert status(settings, db=db).database.cert_expiring_sites == 2


def test_health_has_no_certificate_warning_when_none_expires_soon(
    db: Database, tmp_path: Path
) -> None:
    (site_id,) = add_sites(db, "fine")
    store_pings(db, [(site_id, 10, "up", 5, 10, 20, 40, 2, NOW + dt.timedelta(days=60))])
    settings = Settings.load(database_url=db.url, data_dir=tmp_path)
    check = next(c for c in health(settings, db=db).checks if c.name == "certificates")
    assert check.status == "healthy"


def test_metrics_give_the_phases_under_blackbox_names_and_the_certificate_expiry(
    db: Database, tmp_path: Path
) -> None:
    secure, plain = add_sites(db, "secure", "plain")
    expires = NOW + dt.timedelta(days=20)
    store_pings(
        db,
        [
            (secure, 10, "up", 7, 11, 23, 41, 3, expires),
            (plain, 10, "up", None, 11, None, 41, 3, None),
        ],
    )
    scrape = Scrape(
        Metrics(), site_metrics(db), None, spool_backlog(Spool(tmp_path, max_bytes=1), None)
    )
    registry = CollectorRegistry()
    registry.register(scrape)
    text = generate_latest(registry).decode()
    got = {
        (s.name, s.labels.get("site_id"), s.labels.get("phase")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    phases = {"resolve": 0.007, "connect": 0.011, "tls": 0.023, "processing": 0.041}
    for phase, seconds in {**phases, "transfer": 0.003}.items():
        assert got["probe_http_duration_seconds", str(secure), phase] == pytest.approx(seconds)
    assert got["probe_http_duration_seconds", str(plain), "tls"] == 0
    assert got["probe_ssl_earliest_cert_expiry", str(secure), None] == expires.timestamp()
    assert ("probe_ssl_earliest_cert_expiry", str(plain), None) not in got


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    phases=st.lists(
        st.tuples(
            st.sampled_from([0, 1]),
            st.booleans(),
            *[st.one_of(st.none(), st.integers(0, 5000)) for _ in PHASES],
        ),
        min_size=1,
        max_size=30,
    ),
    q=st.sampled_from([0.5, 0.9, 0.99]),
)
def test_phase_percentiles_in_sql_and_pandas_agree(
    db: Database, phases: list[tuple[Any, ...]], q: float
) -> None:
    with db.connect() as conn:
        empty_tables(conn, ["sites"])
    ids = add_sites(db, "a", "b")
    store_pings(
        db,
        [
            (ids[k], minute, "up" if up else "down", *values, None)
            for minute, (k, up, *values) in enumerate(phases)
        ],
    )
    with db.connect() as conn:
        in_sql = conn.execute(
            "SELECT site_id::text, phase, pings, value_ms FROM uptimelab_phase_percentiles"
            "(%s, %s, %s) ORDER BY site_id, array_position(%s, phase)",
            (NOW - dt.timedelta(days=1), NOW, q, list(PHASES)),
        ).fetchall()
    frame = ul_stats.phase_quantiles(ul_stats.load_pings(db), q)
    in_pandas = [(r.site_id, r.phase, r.pings, r.value_ms) for r in frame.itertuples(index=False)]
    assert [(r["site_id"], r["phase"], r["pings"]) for r in in_sql] == [x[:3] for x in in_pandas]
    for row, (*_, value) in zip(in_sql, in_pandas, strict=True):
        assert row["value_ms"] == pytest.approx(value, rel=1e-12)


def test_a_spool_segment_from_before_the_wider_rows_is_stored_with_nulls(
    db: Database, tmp_path: Path
) -> None:
    (site_id,) = add_sites(db, "old")
    at = NOW - dt.timedelta(minutes=1)
    segment = tmp_path / "20260101T000000000000Z-old.spool"
    old_row = [str(site_id), at.isoformat(), "up", 200, 42, None, None, "Lab", "LB"]
    segment.write_text(json.dumps({"cycle": None}) + "\n" + json.dumps(old_row) + "\n")
    read = Spool.read(Segment(segment, segment.stat().st_size))
    assert read is not None
    _, rows = read
    assert rows == [(site_id, at, "up", 200, 42, None, None, "Lab", "LB", *[None] * 6)]
    writer = Writer(db, Settings.load(database_url=db.url, data_dir=tmp_path))
    try:
        writer.write_rows(rows, {at.date()})
    finally:
        writer.close()
    with db.connect() as conn:
        stored = conn.execute(
            "SELECT response_time_ms, dns_ms, cert_expires_at FROM pings WHERE site_id = %s",
            (site_id,),
        ).fetchone()
    assert stored == {"response_time_ms": 42, "dns_ms": None, "cert_expires_at": None}


def test_certificate_expiry_takes_each_sites_latest_certificate_and_flags_the_near_ones() -> None:
    at = pd.Timestamp("2026-06-01 12:00", tz="UTC")
    pings = pd.DataFrame(
        {
            "site_id": ["a", "a", "a", "b", "c"],
            "checked_at": [at - pd.Timedelta(hours=h) for h in (3, 2, 1, 1, 1)],
            "cert_expires_at": pd.DatetimeIndex(
                [at + pd.Timedelta(days=90), at + pd.Timedelta(days=3), pd.NaT]
                + [at + pd.Timedelta(days=30), pd.NaT]
            ),
        }
    )
    found = ul_stats.certificate_expiry(pings, names={"a": "Alpha"}, now=at, min_days={"b": 31})
    assert found.index.tolist() == ["a", "b"]  # soonest first; c never showed one
    assert found["site"].tolist() == ["Alpha", "b"]
    assert found["days_left"].tolist() == [3.0, 30.0]
    assert found["expiring"].tolist() == [True, True]
    assert ul_stats.certificate_expiry(pings, now=at)["expiring"].tolist() == [True, False]


def test_the_phase_breakdown_names_each_sites_slowest_phase() -> None:
    rows = {
        "site_id": ["dns-slow", "dns-slow", "tls-slow"],
        "status": ["up", "up", "up"],
        "dns_ms": [300, 500, 5],
        "connect_ms": [10, 10, 10],
        "tls_ms": [None, None, 400],
        "ttfb_ms": [50, 50, 50],
        "transfer_ms": [1, 1, 1],
    }
    pings = pd.DataFrame(
        {k: pd.array(v, dtype="Int32") if k.endswith("_ms") else v for k, v in rows.items()}
    )
    breakdown = ul_stats.phase_breakdown(pings)
    assert breakdown.index.tolist() == ["tls-slow", "dns-slow"]  # largest total first
    assert breakdown.loc["dns-slow", "dns"] == 400.0  # the median of 300 and 500
    assert breakdown["slowest"].to_dict() == {"tls-slow": "tls", "dns-slow": "dns"}
    assert np.isnan(breakdown.loc["dns-slow", "tls"])


def test_cert_min_days_comes_in_through_the_api_the_cli_and_import(
    db: Database, tmp_path: Path
) -> None:
    """The per-site warning threshold is accepted by every entry point, and bounded."""
    assert ul.add_site("https://a.example/", cert_min_days=30, db=db).cert_min_days == 30
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "uptimelab",
            "sites",
            "add",
            "https://b.example/",
            "--cert-min-days",
            "7",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    assert ul.get_site("https://b.example/", db=db).cert_min_days == 7
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "uptimelab",
            "sites",
            "add",
            "https://c.example/",
            "--cert-min-days",
            "-1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: ")
    assert "cert_min_days" in refused.stderr
    assert refused.stderr.count("\n") == 1
    csv_file = tmp_path / "sites.csv"
    csv_file.write_text("url,cert_min_days\nhttps://a.example/,3\nhttps://d.example/,\n")
    ul.import_sites(csv_file, db=db)
    assert ul.get_site("https://a.example/", db=db).cert_min_days == 3
    assert ul.get_site("https://d.example/", db=db).cert_min_days == 14
    with pytest.raises(SiteError, match="cert_min_days"):
        ul.add_site("https://e.example/", cert_min_days=5000, db=db)
