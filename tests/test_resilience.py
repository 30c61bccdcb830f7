"""Resilience: retries, the breaker, the spool, a database that stops or hangs, SIGKILL.

Tests that stop a database start their own PostgreSQL (pgserver) and never touch the shared one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import trio

import uptimelab as ul
from uptimelab.collector import Collector, QuietReporter
from uptimelab.collector.state import read_collector_state
from uptimelab.config import Settings
from uptimelab.domain.pings import PingResult
from uptimelab.domain.sites import Probeable
from uptimelab.errors import StoreError
from uptimelab.ops.health import health, status
from uptimelab.storage.breaker import CLOSED, HALF_OPEN, OPEN, BreakerOpenError, CircuitBreaker
from uptimelab.storage.database import Database, connect
from uptimelab.storage.local_state import find_local_state, remember, remembered
from uptimelab.storage.models import MonitoringCycle
from uptimelab.storage.spool import Spool, SpoolFullError
from uptimelab.testing.zoo import ZooSpec, open_zoo

from .conftest import zoo_in_thread

pytestmark = pytest.mark.serial  # timing-sensitive: `make test` runs it after the parallel part


class OwnPostgres:
    """A PostgreSQL of this test's own, which it may stop and start."""

    def __init__(self) -> None:
        import pgserver

        self.parent = Path(tempfile.mkdtemp(prefix="uptimelab-own-pg-"))
        self.parent.chmod(0o755)
        self.server = pgserver.get_server(self.parent / "pgdata", cleanup_mode="delete")
        self.url = self.server.get_uri()

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(list(args), pgdata=self.server.pgdata, user=self.server.system_user)

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "immediate", "stop")

    def start(self) -> None:
        with self.server._lock:
            self.server.ensure_postgres_running()
        assert self.server.get_uri() == self.url

    def close(self) -> None:
        self.server.cleanup()
        shutil.rmtree(self.parent, ignore_errors=True)


@pytest.fixture
def own_pg() -> Iterator[OwnPostgres]:
    pg = OwnPostgres()
    try:
        yield pg
    finally:
        pg.close()


def quick(data_dir: Path, **overrides: object) -> Settings:
    """Settings that fail fast: short timeouts, short retries, the breaker's recovery at 0."""
    values: dict[str, object] = {
        "monitoring_interval_ms": 60_000,
        "ping_timeout_ms": 1000,
        "db_timeout_ms": 1000,
        "db_retry_attempts": 2,
        "db_retry_delay_ms": 10,
        "breaker_recovery_ms": 0,
        "data_dir": data_dir,
    }
    values.update(overrides)
    return Settings.load(**values)


def count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


# -- the breaker -------------------------------------------------------------------------------


def test_the_breaker_opens_half_opens_and_closes() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=5, recovery_s=60, successes=2, clock=lambda: now[0])
    calls = []

    def failing() -> None:
        calls.append("f")
        raise StoreError("down")

    for _ in range(5):
        with pytest.raises(StoreError):
            breaker.call(failing)
    assert breaker.state == OPEN
    with pytest.raises(BreakerOpenError):
        breaker.call(lambda: calls.append("never"))
    assert calls == ["f"] * 5  # while open, nothing is attempted
    now[0] = 59.9
    with pytest.raises(BreakerOpenError):
        breaker.call(lambda: None)
    now[0] = 60.0
    breaker.call(lambda: None)  # the trial
    assert breaker.state == HALF_OPEN
    breaker.call(lambda: None)
    assert breaker.state == CLOSED
    assert [(t.old, t.new) for t in breaker.transitions] == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]


def test_a_failed_trial_opens_the_breaker_again() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=1, recovery_s=10, successes=2, clock=lambda: now[0])
    with pytest.raises(StoreError):
        breaker.call(lambda: (_ for _ in ()).throw(StoreError("down")))
    now[0] = 10
    with pytest.raises(StoreError):
        breaker.call(lambda: (_ for _ in ()).throw(StoreError("still down")))
    assert breaker.state == OPEN
    now[0] = 15
    with pytest.raises(BreakerOpenError):
        breaker.call(lambda: None)


# -- the spool ---------------------------------------------------------------------------------


def _cycle() -> MonitoringCycle:
    return MonitoringCycle(
        id=uuid.uuid4(), started_at=dt.datetime.now(dt.UTC), location="x", region_code="XX"
    )


def test_the_spool_round_trips_and_orders_by_time(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=1 << 20)
    site = uuid.uuid4()
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    first, second = _cycle(), _cycle()
    second.started_at = first.started_at + dt.timedelta(seconds=1)
    spool.append(second, [(site, at, "down", None, 10, "timeout", "slow", "x", "XX")])
    spool.append(first, [(site, at, "up", 200, 10, None, None, "x", "XX")])
    segments = spool.segments()
    assert [Spool.read(s)[0].id for s in segments] == [first.id, second.id]
    cycle, rows = Spool.read(segments[1])
    # Rows read back are as wide as PING_COLUMNS, NULLs where the spooled row was narrower.
    assert rows == [(site, at, "down", None, 10, "timeout", "slow", "x", "XX", *[None] * 6)]
    assert cycle.id == second.id


def test_a_full_spool_is_a_loud_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=300)
    rows = [(uuid.uuid4(), dt.datetime.now(dt.UTC), "up", 200, 1, None, None, "x", "XX")] * 3
    with pytest.raises(SpoolFullError, match="spool is full"):
        spool.append(_cycle(), rows)
    assert spool.backlog()["full"] is True
    assert spool.backlog()["dropped_pings"] == 3
    assert "spool full" in caplog.text


# -- a database that goes away -----------------------------------------------------------------


async def test_no_ping_is_lost_or_doubled_while_the_database_is_down(
    own_pg: OwnPostgres, tmp_path: Path
) -> None:
    db = connect(own_pg.url)
    settings = quick(tmp_path)
    async with open_zoo(ZooSpec.uniform(5, duration_s=120)) as zoo:
        for target in zoo.targets:
            ul.add_site(target.url, db=db)
        collector = Collector(db, settings)
        outcomes = []
        async with collector.session() as writer:
            for _ in range(2):
                outcomes.append((await collector.cycle()).stored)
            await trio.to_thread.run_sync(own_pg.stop)
            for _ in range(3):
                outcomes.append((await collector.cycle()).stored)
            assert writer.spool.backlog()["segments"] == 3
            assert writer.breaker.state != CLOSED
            await trio.to_thread.run_sync(own_pg.start)
            for _ in range(2):
                outcomes.append((await collector.cycle()).stored)
            assert writer.spool.backlog()["segments"] == 0
    assert outcomes == ["stored", "stored", "spooled", "spooled", "spooled", "stored", "stored"]
    assert count(own_pg.url, "SELECT count(*) FROM pings") == 5 * 7
    assert (
        count(own_pg.url, "SELECT count(DISTINCT (site_id, checked_at, location)) FROM pings") == 35
    )
    assert count(own_pg.url, "SELECT count(*) FROM monitoring_cycles") == 7
    assert count(own_pg.url, "SELECT sum(pings_1h) FROM site_stats") == 35


class Probed(QuietReporter):
    """Counts the pings probed; ``await until(n)`` waits for the n-th."""

    def __init__(self) -> None:
        self.count = 0
        self._more = trio.Event()

    def ping_done(self, site: Probeable, ping: PingResult) -> None:
        self.count += 1
        self._more.set()
        self._more = trio.Event()

    async def until(self, n: int) -> None:
        while self.count < n:
            await self._more.wait()


async def test_a_running_collector_publishes_its_breaker_and_spool_as_they_change(
    own_pg: OwnPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Probing goes on at each site's cadence while the database is away (the pings spooled,
    none lost), and status and health (other processes), which read the state a collector
    publishes, see within its round (the default interval, here a minute) the breaker open
    while the database is away, and closed with the spool empty once it is back."""
    monkeypatch.setenv("MIN_SITE_INTERVAL_MS", "1000")
    monkeypatch.setenv("PING_TIMEOUT_MS", "500")
    db = connect(own_pg.url)
    seen: list[tuple[str, int]] = []
    changed = trio.Event()

    async with open_zoo(ZooSpec.uniform(3, duration_s=120)) as zoo:
        for target in zoo.targets:
            ul.add_site(target.url, interval_ms=1000, db=db)
        probed = Probed()
        collector = Collector(db, quick(tmp_path, ping_timeout_ms=500), reporter=probed)
        real = collector.write_state

        def spy() -> None:
            nonlocal changed
            real()
            writer = collector._writer
            assert writer is not None
            assert writer.local is not None
            state = read_collector_state(writer.local.directory)
            assert state is not None
            store = state.store
            assert store is not None
            assert store.breaker is not None
            assert store.spool is not None
            seen.append((store.breaker.state, store.spool.segments))
            changed.set()
            changed = trio.Event()

        async def until(wanted: tuple[str, int] | str) -> None:
            while not seen or (seen[-1] if isinstance(wanted, tuple) else seen[-1][0]) != wanted:
                await changed.wait()

        monkeypatch.setattr(collector, "write_state", spy)
        with trio.fail_after(50):  # well inside the first round: no round has ended
            async with trio.open_nursery() as nursery:
                nursery.start_soon(collector.run)
                await probed.until(3)
                await trio.to_thread.run_sync(own_pg.stop)
                # Three sites every second: two more rounds of them come within seconds (the
                # dispatcher slept a minute once every site was in flight, waking only when
                # probes made elsewhere were learnt, which fails while the database is away).
                with trio.fail_after(10):
                    await probed.until(probed.count + 6)
                await until(OPEN)
                await trio.to_thread.run_sync(own_pg.start)
                await until((CLOSED, 0))
                assert collector.cycles_run == 0  # all of it published within the round
                collector.stop()
    assert any(state == OPEN and segments > 0 for state, segments in seen), seen
    assert count(own_pg.url, "SELECT count(*) FROM pings") == probed.count  # none lost


def test_a_killed_collector_replays_its_spool_on_restart(
    own_pg: OwnPostgres, tmp_path: Path
) -> None:
    db = connect(own_pg.url)
    env = {
        **os.environ,
        "UPTIMELAB_DATABASE_URL": own_pg.url,
        "UPTIMELAB_DATA_DIR": str(tmp_path),
        "DB_TIMEOUT_MS": "1000",
        "DB_RETRY_ATTEMPTS": "1",
        "PING_TIMEOUT_MS": "2000",
    }
    with zoo_in_thread(ZooSpec.uniform(4, duration_s=120)) as zoo:
        for target in zoo.targets:
            ul.add_site(target.url, db=db)
        # A first run knows the sites (and keeps them), then the database goes away.
        first = subprocess.run(
            [sys.executable, "-m", "uptimelab", "collect", "--once"], env=env, timeout=60
        )
        assert first.returncode == 0
        own_pg.stop()
        log = tmp_path / "collect.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "uptimelab", "collect"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        # The spool belongs to the database the first run reached (its identity's folder).
        (spool,) = tmp_path.glob("databases/*/spool")
        deadline = time.monotonic() + 30
        while not list(spool.glob("*.spool")) and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert len(list(spool.glob("*.spool"))) == 1, log.read_text()
        own_pg.start()
        again = subprocess.run(
            [sys.executable, "-m", "uptimelab", "collect", "--once"],
            env=env,
            timeout=60,
            capture_output=True,
            text=True,
        )
        assert again.returncode == 0, again.stderr
        # Its summary says its own pings were stored; the replay is said too.
        assert "stored 1 spooled cycle(s) an earlier run left" in again.stderr
    assert list(spool.glob("*.spool")) == []
    assert count(own_pg.url, "SELECT count(*) FROM pings") == 4 * 3
    # The two --once rounds; the killed collector's round never closed (its pings did land).
    assert count(own_pg.url, "SELECT count(*) FROM monitoring_cycles") == 2


class SilentServer:
    """Accepts TCP connections and never says a word: a database that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


async def test_a_database_that_never_answers_does_not_hold_up_the_cycle(tmp_path: Path) -> None:
    silent = SilentServer()
    try:
        db = Database(url=f"postgresql://x@127.0.0.1:{silent.port}/x")
        settings = quick(tmp_path, db_retry_attempts=1)
        async with open_zoo(ZooSpec.uniform(3, duration_s=60)) as zoo:
            now = dt.datetime.now(dt.UTC)
            sites = [ul.Site(url=t.url, created_at=now, updated_at=now) for t in zoo.targets]
            # What an earlier run against this database left: its identity and its sites.
            local = remember(tmp_path, db.url, str(uuid.uuid4()))
            local.sites_cache.write_text(json.dumps([s.model_dump(mode="json") for s in sites]))
            collector = Collector(db, settings)
            # A guard against a hang, not a figure: the client-side deadlines end the write.
            with trio.fail_after(120):
                async with collector.session():
                    summary = await collector.cycle()
    finally:
        silent.close()
    assert summary.sites_checked == 3
    assert summary.stored == "spooled"
    assert len(list(local.spool_dir.glob("*.spool"))) == 1


# -- health and status -------------------------------------------------------------------------


def _publish(data_dir: Path, breaker_state: str, finished: dt.datetime) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "collector-state.json").write_text(
        json.dumps(
            {
                "last_cycle": {"finished_at": finished.isoformat()},
                "store": {
                    "breaker": {"state": breaker_state, "since": finished.isoformat()},
                    "spool": {"full": False, "dropped_pings": 0},
                    "errors": [],
                },
            }
        )
    )


@pytest.mark.parametrize(
    ("breaker_state", "age_s", "exit_code"),
    [(CLOSED, 10, 0), (HALF_OPEN, 10, 1), (OPEN, 10, 1), (CLOSED, 3600, 2)],
)
def test_health_exit_code_follows_the_breaker_and_the_last_cycle(
    db: Database, tmp_path: Path, breaker_state: str, age_s: int, exit_code: int
) -> None:
    data = tmp_path / "state"
    _publish(data, breaker_state, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age_s))
    report = health(Settings.load(database_url=db.url, data_dir=data))
    assert report.exit_code == exit_code, report.as_dict()


def test_health_is_unhealthy_when_the_database_is_unreachable(tmp_path: Path) -> None:
    _publish(tmp_path, CLOSED, dt.datetime.now(dt.UTC))
    report = health(
        Settings.load(
            database_url="postgresql://x@127.0.0.1:1/x", data_dir=tmp_path, db_timeout_ms=500
        )
    )
    assert report.exit_code == 2
    assert report.checks[0].name == "database"
    assert report.checks[0].status == "unhealthy"


def test_a_non_empty_spool_is_degraded(db: Database, tmp_path: Path) -> None:
    local = find_local_state(tmp_path, db.url, timeout_ms=5000)  # the database's own folder
    assert local is not None
    _publish(local.directory, CLOSED, dt.datetime.now(dt.UTC))
    Spool(local.spool_dir, max_bytes=1 << 20).append(_cycle(), [])
    report = health(Settings.load(database_url=db.url, data_dir=tmp_path))
    assert report.exit_code == 1
    assert [c.status for c in report.checks if c.name == "spool"] == ["degraded"]


async def test_status_reports_cycles_breaker_spool_and_errors(db: Database, tmp_path: Path) -> None:
    settings = quick(tmp_path, database_url=db.url)
    async with open_zoo(ZooSpec.every_failure(duration_s=60)) as zoo:
        for name in ("ok", "refused", "status"):
            ul.add_site(zoo.url(name), db=db)
        collector = Collector(db, settings)
        async with collector.session():
            await collector.cycle()
    report = status(settings).model_dump(mode="json")
    assert report["database"]["reachable"] is True
    assert report["database"]["cycles_24h"]["cycles"] == 1
    assert report["database"]["sites"] == {"active": 3, "total": 3}
    assert report["database"]["last_cycle"]["pings_by_status"] == {"up": 1, "down": 2}
    assert report["errors_24h"]["by_category"] == {"refused": 1, "http_status": 1}
    assert report["breaker"]["state"] == CLOSED
    assert report["spool"]["segments"] == 0
    assert report["database"]["pings_table_bytes"] > 0
    local = remembered(tmp_path, db.url)  # the state is kept in the database's own folder
    assert local is not None
    assert read_collector_state(local.directory) is not None


def test_status_and_health_commands(db: Database) -> None:
    from .test_cli import run

    out = run("status", "--json")
    assert out.returncode == 0, out.stderr
    assert "config" in json.loads(out.stdout)
    healthy = run("health")
    assert healthy.returncode == 2  # no cycle has run yet
    assert "no cycle has finished yet" in healthy.stdout


def test_json_logs_carry_component_and_category(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .test_cli import run

    monkeypatch.setenv("DB_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("DB_RETRY_DELAY_MS", "10")
    result = run(
        "--log-format",
        "json",
        "--database-url",
        "postgresql://bob:pw@127.0.0.1:1/x",
        "collect",
        "--once",
    )
    assert result.returncode == 1
    *logged, last = result.stderr.splitlines()
    assert last.startswith("error: ")  # the one-line error stays plain
    entries = [json.loads(line) for line in logged]
    assert entries, result.stderr
    assert all({"time", "level", "component", "message"} <= set(e) for e in entries)
    assert {"component": "store", "category": "retry"}.items() <= entries[0].items()
    assert "pw@" not in result.stderr


async def test_a_database_that_freezes_mid_session_is_abandoned_and_replayed(
    own_pg: OwnPostgres, tmp_path: Path
) -> None:
    import psutil

    db = connect(own_pg.url)
    settings = quick(tmp_path, db_retry_attempts=1)
    postmaster = psutil.Process(own_pg.server.get_pid())
    async with open_zoo(ZooSpec.uniform(3, duration_s=120)) as zoo:
        for target in zoo.targets:
            ul.add_site(target.url, db=db)
        collector = Collector(db, settings)
        async with collector.session():
            assert (await collector.cycle()).stored == "stored"
            frozen = [postmaster, *postmaster.children(recursive=True)]
            for process in frozen:
                process.suspend()  # SIGSTOP: connections stay open, nothing answers
            try:
                with trio.fail_after(120):  # a hang guard: the write deadline ends it
                    summary = await collector.cycle()
            finally:
                for process in frozen:
                    process.resume()
            assert summary.stored == "spooled"
            assert (await collector.cycle()).stored == "stored"  # and the spool replayed first
    assert count(own_pg.url, "SELECT count(*) FROM pings") == 9
    assert count(own_pg.url, "SELECT count(*) FROM monitoring_cycles") == 3
    assert list((tmp_path / "spool").glob("*.spool")) == []
