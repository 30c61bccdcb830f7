"""Cycles against the zoo and a real database: storage, concurrency, locks, dry runs, order."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import threading
import uuid
from typing import Any

import pytest
import trio

import uptimelab as ul
from uptimelab.collector import Collector, CycleSummary, QuietReporter, next_slot
from uptimelab.config import Settings
from uptimelab.domain.pings import PingResult
from uptimelab.domain.sites import Probeable
from uptimelab.errors import CycleInProgressError
from uptimelab.ops.health import health, status
from uptimelab.probe.transport import LeanClient, Target
from uptimelab.storage.database import Database
from uptimelab.storage.sites import active_sites_slowest_first
from uptimelab.testing.zoo import Behaviour, Zoo, ZooSpec, open_zoo

from .conftest import zoo_in_thread

pytestmark = pytest.mark.serial  # timing-sensitive: `make test` runs it after the parallel part


def settings(**overrides: object) -> Settings:
    base: dict[str, object] = {
        "monitoring_interval_ms": 60_000,
        "ping_timeout_ms": 1000,
        "max_concurrent_pings": 10,
        "monitoring_location": "Lab",
        "monitoring_region_code": "LB",
    }
    base.update(overrides)
    return Settings.load(**base)


class Recorder(QuietReporter):
    """Records pings as they are done; events for the cycle's start and the n-th ping."""

    def __init__(self, wanted_pings: int = 0) -> None:
        self.pings: list[PingResult] = []
        self.started = trio.Event()
        self.enough = trio.Event()
        self.wanted = wanted_pings

    def cycle_started(self, number: int, sites: int) -> None:
        self.started.set()

    def ping_done(self, site: Probeable, ping: PingResult) -> None:
        self.pings.append(ping)
        if len(self.pings) >= self.wanted:
            self.enough.set()


class ThreadRecorder(QuietReporter):
    """For a collector in another thread: threading events set when ``wanted`` pings are done
    and when a round has finished."""

    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.pings = 0
        self.enough = threading.Event()
        self.cycle_done = threading.Event()

    def ping_done(self, site: Probeable, ping: PingResult) -> None:
        self.pings += 1
        if self.pings >= self.wanted:
            self.enough.set()

    def cycle_finished(self, summary: CycleSummary) -> None:
        self.cycle_done.set()


def register(db: Database, zoo: Zoo, *names: str) -> dict[uuid.UUID, str]:
    """Register the zoo's targets (all of them without names); returns site id -> target name."""
    chosen = names or tuple(t.name for t in zoo.targets)
    return {ul.add_site(zoo.url(n), name=n, db=db).id: n for n in chosen}


def count(db: Database, sql: str) -> int:
    with db.connect() as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(next(iter(row.values())))


async def test_a_cycle_stores_one_categorised_ping_per_site_in_one_transaction(
    db: Database, zoo: Zoo
) -> None:
    ids = register(db, zoo)
    summary = await Collector(db, settings()).cycle()
    assert summary.sites_checked == len(ids) == len(list(Behaviour))
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT site_id, status, error_category, location, region_code, xmin::text AS tx "
            "FROM pings"
        ).fetchall()
        cycle = conn.execute("SELECT *, xmin::text AS tx FROM monitoring_cycles").fetchall()
    assert len(rows) == len(ids)
    for row in rows:
        target = zoo.target(ids[row["site_id"]])
        assert row["error_category"] == target.expect_category, target.name
        assert (row["location"], row["region_code"]) == ("Lab", "LB")
    assert len(cycle) == 1
    assert cycle[0]["sites_checked"] == len(ids)
    assert (cycle[0]["up"], cycle[0]["down"]) == (summary.up, summary.down)
    # Every ping and the cycle row were written by the same transaction.
    assert {r["tx"] for r in rows} == {cycle[0]["tx"]}


async def test_concurrency_never_exceeds_the_limit_and_the_window_slides(db: Database) -> None:
    async with open_zoo(ZooSpec.uniform(40, latency_ms=100, duration_s=60)) as zoo:
        register(db, zoo)
        zoo.reset_counters()
        start = trio.current_time()
        summary = await Collector(db, settings(max_concurrent_pings=5)).cycle()
        took = trio.current_time() - start
    assert summary.up == 40
    assert zoo.max_in_flight == 5
    assert took >= 40 * 0.1 / 5


async def test_a_slow_site_does_not_hold_back_the_others(db: Database) -> None:
    # A sliding window: while one slot waits on the slow site, the other keeps going, so every
    # fast site is done before the slow one (waves of two would finish the slow site second).
    spec = ZooSpec.uniform(20, latency_ms=20, duration_s=60)
    async with open_zoo(spec) as fast_zoo, open_zoo(ZooSpec.uniform(1, latency_ms=1000)) as slow:
        fast_ids = register(db, fast_zoo)
        slow_ids = register(db, slow)
        sites = ul.list_sites(db=db)
        by_id = {s.id: s for s in sites}
        order = [by_id[i] for i in [*slow_ids, *fast_ids]]  # the slow site starts first
        reporter = Recorder()
        collector = Collector(
            db, settings(max_concurrent_pings=2, ping_timeout_ms=3000), reporter=reporter
        )
        await collector.cycle(sites=order)
    done = [p.site_id for p in reporter.pings]
    assert set(done[:20]) == set(fast_ids)
    assert done[20] in slow_ids


async def test_a_dry_run_writes_nothing_and_returns_every_result(db: Database, zoo: Zoo) -> None:
    ids = register(db, zoo, "ok", "status", "refused")
    summary = await Collector(db, settings()).cycle(dry_run=True)
    assert summary.dry_run
    assert {p.site_id for p in summary.pings} == set(ids)
    assert count(db, "SELECT count(*) FROM pings") == 0
    assert count(db, "SELECT count(*) FROM monitoring_cycles") == 0


async def test_a_second_trigger_during_a_cycle_is_refused(db: Database, zoo: Zoo) -> None:
    register(db, zoo, "hang", "ok")
    reporter = Recorder()
    collector = Collector(db, settings(ping_timeout_ms=800), reporter=reporter)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collector.cycle)
        await reporter.started.wait()
        with pytest.raises(CycleInProgressError, match="already running"):
            await Collector(db, settings()).cycle()
    assert count(db, "SELECT count(*) FROM monitoring_cycles") == 1


async def test_stop_during_a_cycle_keeps_what_was_probed(db: Database, zoo: Zoo) -> None:
    register(db, zoo, "ok", "status", "hang")
    reporter = Recorder(wanted_pings=2)
    collector = Collector(db, settings(ping_timeout_ms=30_000), reporter=reporter)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collector.run)
        await reporter.enough.wait()  # ok and status are in; the hang is in flight
        collector.stop()
    assert collector.last_summary is not None
    assert collector.last_summary.interrupted
    assert count(db, "SELECT count(*) FROM pings") == 2
    assert count(db, "SELECT count(*) FROM monitoring_cycles WHERE error LIKE 'stopped%'") == 1


async def test_credentials_never_appear_in_stored_messages(db: Database, zoo: Zoo) -> None:
    for target in zoo.targets:
        ul.add_site(target.url.replace("://", "://bob:hunter2@", 1), db=db)
    await Collector(db, settings(ping_timeout_ms=500)).cycle()
    assert count(db, "SELECT count(*) FROM pings WHERE error_message IS NOT NULL") >= 8
    assert count(db, "SELECT count(*) FROM pings WHERE error_message LIKE '%hunter2%'") == 0


async def test_sites_are_ordered_slowest_first_by_their_latest_ping(db: Database) -> None:
    now = dt.datetime.now(dt.UTC)
    fast, slow, timed_out, never, old = (
        ul.add_site(f"http://{n}.example/", db=db) for n in ("fast", "slow", "to", "never", "old")
    )
    rows = [
        (fast.id, now - dt.timedelta(minutes=10), "up", 900, None),
        (fast.id, now - dt.timedelta(minutes=5), "up", 20, None),  # the latest counts
        (slow.id, now - dt.timedelta(minutes=5), "up", 700, None),
        (timed_out.id, now - dt.timedelta(minutes=5), "down", 3, "timeout"),
        (old.id, now - dt.timedelta(days=3), "up", 5000, None),  # too old: counts as never
    ]
    with db.connect() as conn:
        for site_id, at, status, ms, cat in rows:
            conn.execute(
                "INSERT INTO pings (site_id, checked_at, status, response_time_ms, "
                "error_category, location, region_code) VALUES (%s, %s, %s, %s, %s, 'x', 'XX')",
                (site_id, at, status, ms, cat),
            )
        order = active_sites_slowest_first(conn, timeout_ms=10_000, lookback_s=3600)
    names = [s.url.split("//")[1].split(".")[0] for s in order]
    assert set(names[:2]) == {"never", "old"}
    assert names[2:] == ["to", "slow", "fast"]


@pytest.mark.parametrize(
    ("now", "slot", "expected"),
    [
        (5.0, 0, (1, 0)),  # a short cycle: next start is the next slot
        (10.0, 0, (1, 0)),  # exactly on the boundary of slot 1
        (25.0, 0, (3, 2)),  # overran two starts: skip them, do not stack
        (31.0, 2, (4, 1)),
    ],
)
def test_the_schedule_keeps_a_fixed_cadence_and_skips_missed_starts(
    now: float, slot: int, expected: tuple[int, int]
) -> None:
    assert next_slot(first=0.0, now=now, interval=10.0, slot=slot) == expected


def test_collect_once_works_where_an_asyncio_loop_is_running(db: Database) -> None:
    with zoo_in_thread(ZooSpec.uniform(3, duration_s=60)) as zoo:
        register(db, zoo)

        async def notebook_cell() -> ul.CycleSummary:
            # A Jupyter cell runs inside the kernel's asyncio loop; the call is synchronous.
            return ul.collect_once(db=db, ping_timeout_ms=2000)

        summary = asyncio.run(notebook_cell())
    assert summary.up == 3
    assert count(db, "SELECT count(*) FROM pings") == 3


def test_a_background_collector_reports_status_and_stops(db: Database) -> None:
    with zoo_in_thread(ZooSpec.uniform(3, duration_s=60)) as zoo:
        register(db, zoo)
        recorder = ThreadRecorder(wanted=3)
        collector = ul.start_collector(db=db, ping_timeout_ms=2000, reporter=recorder)
        try:
            # Never probed, every site is due at once; then each at its cadence (5 min).
            assert recorder.enough.wait(60), "the sites were not probed"
            assert collector.status()["running"] is True
        finally:
            collector.stop()
    assert collector.running is False
    assert recorder.cycle_done.is_set()  # stopping closes the round and records it
    status = collector.status()
    assert status["cycles_run"] == 1
    assert status["last_cycle"]["up"] == 3
    assert status["last_cycle"]["stored"] == "stored"
    assert count(db, "SELECT count(*) FROM pings") == 3
    assert count(db, "SELECT count(*) FROM monitoring_cycles WHERE collector_id IS NOT NULL") == 1


# -- a fault of our own client -----------------------------------------------------------------

# `python -c` this, then the CLI's arguments: the CLI with a bug in our own client for one URL.
_FAULTY_CLI = """
import os
import sys

from uptimelab.cli import main
from uptimelab.probe.transport import LeanClient

broken_url = os.environ["UPTIMELAB_TEST_BROKEN_URL"]
real_request = LeanClient.request


async def request(self, method, target, **options):
    if target.url == broken_url:
        raise RuntimeError("a bug in our client")
    return await real_request(self, method, target, **options)


LeanClient.request = request
sys.argv = ["uptimelab", *sys.argv[1:]]
main()
"""


async def test_a_fault_of_our_own_client_costs_its_site_one_ping_and_nothing_else(
    db: Database, zoo: Zoo, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ids = register(db, zoo, "ok", "status", "refused", "redirect")
    broken_url = zoo.url("status")
    real_request = LeanClient.request

    async def request(self: LeanClient, method: str, target: Target, **options: Any) -> Any:
        if target.url == broken_url:
            raise RuntimeError("a bug in our client")
        return await real_request(self, method, target, **options)

    monkeypatch.setattr(LeanClient, "request", request)
    s = settings(probe_engine="lean")
    with caplog.at_level("ERROR", logger="uptimelab"):
        summary = await Collector(db, s).cycle()

    assert summary.faults == 1
    assert (summary.sites_checked, summary.up, summary.down) == (3, 2, 1)
    by_site = {ids[p.site_id] for p in summary.pings}
    assert by_site == {"ok", "refused", "redirect"}  # no ping for the broken one, not "down"
    with db.connect() as conn:
        stored = conn.execute("SELECT site_id FROM pings").fetchall()
        cycle = conn.execute("SELECT error FROM monitoring_cycles").fetchone()
    assert sorted(ids[r["site_id"]] for r in stored) == ["ok", "redirect", "refused"]
    assert cycle is not None
    assert "1 collector fault(s)" in cycle["error"]
    (logged,) = [r for r in caplog.records if r.exc_info and "fault" in r.getMessage()]
    assert logged.exc_info is not None
    assert logged.exc_info[0] is RuntimeError  # with its traceback

    report = status(s)
    assert report.database.collector_faults_24h == 1
    assert report.collector is not None
    assert report.collector.last_cycle is not None
    assert report.collector.last_cycle.faults == 1
    (last_cycle,) = [c for c in health(s).checks if c.name == "last cycle"]
    assert last_cycle.status == "degraded"
    assert "1 collector fault(s)" in last_cycle.detail


def test_collect_once_with_a_fault_of_our_own_client_exits_1_and_stores_the_rest(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with zoo_in_thread(ZooSpec.every_failure(duration_s=60)) as zoo:
        ids = register(db, zoo, "ok", "status", "refused")
        monkeypatch.setenv("UPTIMELAB_TEST_BROKEN_URL", zoo.url("status"))
        monkeypatch.setenv("PROBE_ENGINE", "lean")
        once = subprocess.run(
            [sys.executable, "-c", _FAULTY_CLI, "collect", "--once", "--ping-timeout-ms", "2000"],
            capture_output=True,
            text=True,
            timeout=60,
            env=os.environ.copy(),
        )
    assert once.returncode == 1, once.stderr
    assert "1 collector fault(s)" in once.stdout
    output = once.stdout + once.stderr
    assert "Traceback" in output
    assert "RuntimeError: a bug in our client" in output
    with db.connect() as conn:
        stored = conn.execute("SELECT site_id FROM pings").fetchall()
    assert sorted(ids[r["site_id"]] for r in stored) == ["ok", "refused"]
    health_line = subprocess.run(
        [sys.executable, "-m", "uptimelab", "health"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )
    assert "1 collector fault(s)" in health_line.stdout
    status_text = subprocess.run(
        [sys.executable, "-m", "uptimelab", "status"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )
    assert "collector faults (24 h): 1" in status_text.stdout
