"""Local state belongs to one database: spool, site cache and published state are kept per
database identity; what the database refuses never blocks the spool; outcomes say what happened;
files are private."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

import uptimelab as ul
from uptimelab.collector import Collector
from uptimelab.domain.pings import PingResult
from uptimelab.storage.breaker import CLOSED, HALF_OPEN, CircuitBreaker
from uptimelab.storage.copying import ping_row
from uptimelab.storage.database import Database, connect
from uptimelab.storage.local_state import find_local_state, remembered
from uptimelab.storage.models import MonitoringCycle
from uptimelab.storage.writer import Writer
from uptimelab.testing.zoo import ZooSpec, open_zoo

from .test_resilience import OwnPostgres, count, quick


@pytest.fixture
def other_pg() -> Iterator[OwnPostgres]:
    """A second database server of this test's own (database A), which it may stop."""
    pg = OwnPostgres()
    try:
        yield pg
    finally:
        pg.close()


def _ping(site_id: uuid.UUID, at: dt.datetime, status: str = "up") -> PingResult:
    return PingResult(site_id, at, status, 200, 5, None, None, "Lab", "LB")


def _cycle(at: dt.datetime) -> MonitoringCycle:
    return MonitoringCycle(
        id=uuid.uuid4(), started_at=at, finished_at=at, location="Lab", region_code="LB"
    )


async def test_two_databases_on_one_data_dir_never_share_spool_or_sites(
    other_pg: OwnPostgres, db: Database, tmp_path: Path
) -> None:
    db_a = connect(other_pg.url)
    settings = quick(tmp_path)
    async with (
        open_zoo(ZooSpec.uniform(2, duration_s=120)) as zoo_a,
        open_zoo(ZooSpec.uniform(3, duration_s=120)) as zoo_b,
    ):
        for target in zoo_a.targets:
            ul.add_site(target.url, db=db_a)
        for target in zoo_b.targets:
            ul.add_site(target.url, db=db)
        collector_a = Collector(db_a, settings)
        collector_b = Collector(db, settings)
        async with collector_a.session() as writer_a, collector_b.session() as writer_b:
            assert writer_a.local is not None
            assert writer_b.local is not None
            assert writer_a.local.directory != writer_b.local.directory
            await collector_a.cycle()
            await trio.to_thread.run_sync(other_pg.stop)
            # A is down: its cycles wait in A's spool, at the head of nothing of B's.
            assert (await collector_a.cycle()).stored == "spooled"
            assert (await collector_a.cycle()).stored == "spooled"
            outcomes_b = [(await collector_b.cycle()).stored for _ in range(3)]
            assert writer_b.spool is not None
            assert writer_b.spool.segments() == []
            assert writer_a.spool is not None
            assert len(writer_a.spool.segments()) == 2
        await trio.to_thread.run_sync(other_pg.start)
        async with collector_a.session():
            assert (await collector_a.cycle()).stored == "stored"
    assert outcomes_b == ["stored"] * 3
    assert count(db.url, "SELECT count(*) FROM pings") == 3 * 3
    assert count(other_pg.url, "SELECT count(*) FROM pings") == 2 * 4
    # Each database's sites were cached in its own folder, under its own URL.
    local_a = remembered(tmp_path, other_pg.url)
    local_b = remembered(tmp_path, db.url)
    assert local_a is not None
    assert local_b is not None
    assert str(zoo_a.targets[0].url) in local_a.sites_cache.read_text()
    assert str(zoo_a.targets[0].url) not in local_b.sites_cache.read_text()


async def test_pings_of_a_site_deleted_while_spooled_are_dropped_and_counted(
    other_pg: OwnPostgres, tmp_path: Path
) -> None:
    db = connect(other_pg.url)
    settings = quick(tmp_path)
    async with open_zoo(ZooSpec.uniform(3, duration_s=120)) as zoo:
        sites = [ul.add_site(t.url, db=db) for t in zoo.targets]
        collector = Collector(db, settings)
        async with collector.session() as writer:
            await collector.cycle()
            await trio.to_thread.run_sync(other_pg.stop)
            assert (await collector.cycle()).stored == "spooled"
            await trio.to_thread.run_sync(other_pg.start)
            ul.remove_site(sites[0].id, db=db)
            summary = await collector.cycle()
            later = await collector.cycle()
    # The spooled cycle's ping of the deleted site is dropped; everything else is stored.
    assert summary.stored == "stored"
    assert summary.orphans == 1
    assert later.stored == "stored"
    assert later.orphans == 0
    assert writer.orphaned_pings == 1
    # Four cycles of the two sites left (the deleted site's pings went with it).
    assert count(other_pg.url, "SELECT count(*) FROM pings") == 2 * 4


async def test_a_ping_of_a_site_deleted_during_the_cycle_is_dropped_not_spooled(
    db: Database, tmp_path: Path
) -> None:
    site = ul.add_site("http://127.0.0.1:9/", db=db)
    now = dt.datetime.now(dt.UTC)
    async with Writer(db, quick(tmp_path, database_url=db.url)) as writer:
        result = await writer.store_cycle(
            _cycle(now), [_ping(site.id, now), _ping(uuid.uuid4(), now)]
        )
    assert (result.outcome, result.orphans, result.waiting) == ("stored", 1, 0)
    assert count(db.url, "SELECT count(*) FROM pings") == 1


async def test_a_segment_the_database_refuses_is_quarantined_and_later_cycles_are_stored(
    db: Database, tmp_path: Path
) -> None:
    site = ul.add_site("http://127.0.0.1:9/", db=db)
    now = dt.datetime.now(dt.UTC)
    async with Writer(db, quick(tmp_path, database_url=db.url)) as writer:
        assert writer.spool is not None
        # A segment that can never be stored: a status the schema's check refuses.
        writer.spool.append(_cycle(now), [(site.id, now, "maybe", 200, 5, None, None, "L", "R")])
        later = now + dt.timedelta(seconds=1)
        result = await writer.store_cycle(_cycle(later), [_ping(site.id, later)])
        backlog = writer.spool.backlog()
    assert result.outcome == "stored"
    assert backlog["segments"] == 0
    assert backlog["quarantined"] == 1
    assert count(db.url, "SELECT count(*) FROM pings") == 1


async def test_collectors_of_one_database_replay_its_spool_once(
    db: Database, tmp_path: Path
) -> None:
    site = ul.add_site("http://127.0.0.1:9/", db=db)
    now = dt.datetime.now(dt.UTC)
    settings = quick(tmp_path, database_url=db.url)
    async with Writer(db, settings) as first, Writer(db, settings) as second:
        assert first.spool is not None
        assert second.spool is not None
        assert first.spool.directory == second.spool.directory
        for k in range(3):
            at = now + dt.timedelta(seconds=k)
            first.spool.append(_cycle(at), [ping_row(_ping(site.id, at))])
        with first.spool.replay_lock() as held:
            assert held
            busy = await second.replay()  # the other collector waits its turn
        done = await second.replay()
        again = await first.replay()
    assert busy.busy
    assert busy.stored == []
    assert len(done.stored) == 3
    assert again.stored == []
    assert count(db.url, "SELECT count(*) FROM pings") == 3


def test_a_half_open_trial_that_raises_anything_frees_the_trial_slot() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=1, recovery_s=10, successes=1, clock=lambda: now[0])
    breaker.record_failure("down")
    now[0] = 10

    def trial_bug() -> None:
        raise ValueError("a bug in the trial, not the database")

    with pytest.raises(ValueError, match="a bug"):
        breaker.call(trial_bug)
    assert breaker.state == HALF_OPEN
    breaker.call(lambda: None)  # the slot is free again: the next trial runs
    assert breaker.state == CLOSED


async def test_every_file_in_the_data_dir_is_private(db: Database, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with open_zoo(ZooSpec.uniform(2, duration_s=60)) as zoo:
        for target in zoo.targets:
            ul.add_site(target.url.replace("http://", "http://user:secret@"), db=db)
        collector = Collector(db, quick(data_dir, database_url=db.url))
        async with collector.session():
            await collector.cycle()
    paths = list(data_dir.rglob("*"))
    assert any(p.name == "sites-cache.json" for p in paths)
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_collect_once_says_spooled_and_exits_1_when_the_database_is_down(
    other_pg: OwnPostgres, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "UPTIMELAB_DATABASE_URL": other_pg.url,
        "UPTIMELAB_DATA_DIR": str(tmp_path),
        "DB_TIMEOUT_MS": "1000",
        "DB_RETRY_ATTEMPTS": "1",
    }
    ul.add_site("http://127.0.0.1:9/", db=connect(other_pg.url))
    command = [sys.executable, "-m", "uptimelab", "collect", "--once"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr  # the site is down: that is not a failure
    assert "; stored" in first.stdout
    other_pg.stop()
    try:
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        local = find_local_state(tmp_path, other_pg.url, timeout_ms=500)
    finally:
        other_pg.start()  # the fixture's clean-up stops a running server
    assert second.returncode == 1, second.stderr
    assert "spooled" in second.stdout
    assert "; stored" not in second.stdout
    assert local is not None  # remembered, though the database was down
    assert len(list(local.spool_dir.glob("*.spool"))) == 1
