"""``uptimelab perf --collectors N``: many collector processes sharing one fleet and one database.

A scratch database, one or more zoo processes serving the sites, and N ``uptimelab collect``
processes of one location, which share the sites through their leases. While they run, a poller
in this process notes when each stored batch (one transaction: its ``xmin``) first becomes
visible, which gives every ping's delay from its ``checked_at`` (the probe's start, so the delay
includes the probe itself) to the moment a query sees it, to within the poll period (0.25 s).
Each collector's RSS is read from ``/proc``. Optionally one collector is killed (SIGKILL) halfway;
the others are stopped with SIGTERM at the end. Then the database says how the fleet was served
(:mod:`.fleet_analysis`).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from ..errors import UptimelabError
from ..storage.database import Database
from .bench import scratch_database
from .fleet_analysis import CollectorFigures, FleetResult, analyse
from .perf import zoo_process

LOCATION = "perf"
POLL_S = 0.25
ANALYSE_EVERY_S = 60.0
ZOO_REQUESTS_PER_S = 400  # what one zoo process serves comfortably next to the collectors
Progress = Callable[[str], None]


def run_fleet(
    server: Database,
    *,
    collectors: int,
    sites: int,
    interval_s: float = 300.0,
    duration_s: float = 600.0,
    kill_one: bool = False,
    lease_ms: int | None = None,
    concurrency: int | None = None,
    zoos: int | None = None,
    timeout_ms: int | None = None,
    progress: Progress | None = None,
) -> FleetResult:
    """Run ``collectors`` processes over ``sites`` zoo sites each due every ``interval_s``
    seconds, for ``duration_s`` seconds, and measure them (see the module's docstring).

    ``lease_ms`` defaults to 10 s with ``kill_one``, 30 s otherwise; ``concurrency`` (pings in
    flight per collector) to twice what the rate needs at 0.4 s a ping when one collector is
    lost; ``zoos`` to one per 400
    requests a second. Raises UptimelabError when a zoo or a collector fails to run, StoreError
    when the scratch database cannot be made.
    """
    rate = sites / interval_s
    zoos = zoos or max(1, math.ceil(rate / ZOO_REQUESTS_PER_S))
    lease_ms = lease_ms or (10_000 if kill_one else 30_000)
    # At 0.4 s a ping (2 % of the zoo hangs until the timeout), with the headroom for the
    # survivors of a lost collector to carry the fleet and catch up: twice the rate they need.
    survivors = max(1, collectors - 1)
    concurrency = concurrency or min(1000, max(10, math.ceil(2 * 0.4 * rate / survivors)))
    timeout_ms = timeout_ms or min(10_000, round(interval_s * 500))
    result = FleetResult(
        collectors, sites, interval_s, duration_s, zoos, concurrency, lease_ms, load_average=[]
    )
    say = progress or (lambda _: None)
    lifetime = duration_s + 120 + sites / 200
    shares = [sites // zoos + (k < sites % zoos) for k in range(zoos)]
    with contextlib.ExitStack() as stack:
        targets: list[dict[str, Any]] = []
        for k, share in enumerate(shares):
            targets += stack.enter_context(zoo_process(share, seed=k, lifetime_s=lifetime))
        db = stack.enter_context(scratch_database(server))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="uptimelab-fleet-")))
        _register(db, targets, interval_s)
        say(f"{sites} sites on {zoos} zoo(s); starting {collectors} collectors")
        env = os.environ | {
            "UPTIMELAB_DATABASE_URL": db.url,
            "MONITORING_LOCATION": LOCATION,
            "MONITORING_INTERVAL_MS": str(max(60_000, round(interval_s * 1000))),
            "MAX_CONCURRENT_PINGS": str(concurrency),
            "PING_TIMEOUT_MS": str(timeout_ms),
            "COLLECTOR_LEASE_MS": str(lease_ms),
        }
        poller = _Poller(db.url)
        stack.callback(poller.stop)
        procs = [_start_collector(env, tmp / f"c{k}", stack) for k in range(collectors)]
        result.per_collector = [CollectorFigures(p.pid) for p in procs]
        # The run starts when every collector has beaten once: a busy machine takes seconds to
        # start a Python process, which is not the fleet's time.
        _wait_for_heartbeats(db, procs, tmp)
        started = time.time()
        result.load_average.append(os.getloadavg()[0])
        kill_at = started + duration_s / 2 if kill_one else None
        killed_buckets: frozenset[int] = frozenset()
        killed_at = 0.0
        next_say = started + 30
        while (now := time.time()) < started + duration_s:
            time.sleep(1)
            _sample(procs, result)
            result.load_average[1:2] = [max(result.load_average[1:2] + [os.getloadavg()[0]])]
            for k, p in enumerate(procs):
                if p.poll() is not None and not result.per_collector[k].killed:
                    raise UptimelabError(f"collector {k} exited early: {_tail(tmp / f'c{k}')}")
            if kill_at is not None and now >= kill_at:
                killed_buckets = _buckets_of(db, procs[0].pid)
                procs[0].send_signal(signal.SIGKILL)
                killed_at = time.time()
                procs[0].wait()
                result.per_collector[0].killed = True
                kill_at = None
                say(
                    f"killed collector 0 (pid {procs[0].pid}) holding {len(killed_buckets)} buckets"
                )
            if now >= next_say:
                next_say += 30
                rss = ", ".join(f"{c.rss_mb:.0f}" for c in result.per_collector)
                say(
                    f"{now - started:.0f} s: {poller.seen} pings visible; RSS MB {rss}; "
                    f"load {os.getloadavg()[0]:.2f}"
                )
        _owned(db, procs, result)
        stopped = time.time()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for k, p in enumerate(procs):
            try:
                result.per_collector[k].exit_code = p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                result.per_collector[k].exit_code = p.wait()
        result.load_average.append(os.getloadavg()[0])
        time.sleep(2 * POLL_S)
        poller.stop()
        result.analysed = poller.analyse
        analyse(db, result, poller.delays, started, stopped, (killed_buckets, killed_at))
    return result


def _register(db: Database, targets: list[dict[str, Any]], interval_s: float) -> None:
    with (
        db.connect() as conn,
        conn.cursor().copy("COPY sites (url, name, interval_ms) FROM STDIN") as copy,
    ):
        for t in targets:
            copy.write_row((t["url"], t["name"], round(interval_s * 1000)))


def _start_collector(env: dict[str, str], data_dir: Path, stack: contextlib.ExitStack) -> Any:
    data_dir.mkdir(mode=0o700)
    log = (data_dir / "collector.log").open("wb")
    stack.callback(log.close)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uptimelab", "collect"],
        env=env | {"UPTIMELAB_DATA_DIR": str(data_dir)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def end() -> None:  # whatever happened, no collector outlives the run
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    stack.callback(end)
    return proc


def _tail(data_dir: Path) -> str:
    lines = (data_dir / "collector.log").read_text(errors="replace").strip().splitlines()
    return " | ".join(lines[-3:]) or "no output"


def _sample(procs: list[Any], result: FleetResult) -> None:
    for p, figures in zip(procs, result.per_collector, strict=True):
        if figures.killed:
            continue
        status = _proc_status(p.pid)
        if status:
            figures.rss_mb = status.get("VmRSS", 0) / 1024
            figures.peak_rss_mb = max(figures.peak_rss_mb, status.get("VmHWM", 0) / 1024)


def _proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB; empty when it is gone (or not Linux)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def _wait_for_heartbeats(db: Database, procs: list[Any], tmp: Path, limit_s: float = 120) -> None:
    """Until every collector process has a row in ``collectors``; raises when one exits first or
    ``limit_s`` passes (a hang guard)."""
    pids = {p.pid for p in procs}
    deadline = time.monotonic() + limit_s
    while True:
        with db.connect() as conn:
            rows = conn.execute("SELECT pid FROM collectors").fetchall()
        if pids <= {r["pid"] for r in rows}:
            return
        for k, p in enumerate(procs):
            if p.poll() is not None:
                raise UptimelabError(f"collector {k} exited early: {_tail(tmp / f'c{k}')}")
        if time.monotonic() > deadline:
            raise UptimelabError(f"the collectors did not start within {limit_s:g} s")
        time.sleep(POLL_S)


def _buckets_of(db: Database, pid: int) -> frozenset[int]:
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT l.bucket FROM collector_leases l JOIN collectors c ON c.id = l.collector_id "
            "WHERE c.pid = %s AND c.stopped_at IS NULL",
            (pid,),
        ).fetchall()
    return frozenset(r["bucket"] for r in rows)


def _owned(db: Database, procs: list[Any], result: FleetResult) -> None:
    with db.connect() as conn:
        rows = conn.execute("SELECT pid, sites_owned FROM collectors").fetchall()
    owned = {r["pid"]: r["sites_owned"] for r in rows}
    for p, figures in zip(procs, result.per_collector, strict=True):
        figures.sites_owned = owned.get(p.pid, 0)


class _Poller:
    """Notes when each stored batch first becomes visible: a transaction's rows share an xmin, so
    each poll fetches the rows of transactions not seen yet within the horizon. On a server
    whose autovacuum is off it also does autovacuum's part that matters here, ANALYZE every
    minute: without statistics of the day's partition, a refresh of 300 sites took 0.85 s."""

    HORIZON_S = 30.0

    def __init__(self, url: str) -> None:
        self.url = url
        self.delays: list[float] = []
        self.seen = 0
        self.analyse = False
        self._xids: dict[int, float] = {}
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fleet-poller", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                row = conn.execute("SHOW autovacuum").fetchone()
                self.analyse = row is not None and row[0] == "off"
                analysed = time.monotonic()
                while not self._stop.wait(POLL_S):
                    self._poll(conn)
                    if self.analyse and time.monotonic() - analysed > ANALYSE_EVERY_S:
                        conn.execute("ANALYZE pings, ping_rollup_hourly, site_stats")
                        analysed = time.monotonic()
                self._poll(conn)
        except psycopg.Error as exc:  # reported by stop()
            self._error = exc

    def _poll(self, conn: psycopg.Connection[Any]) -> None:
        now = time.time()
        self._xids = {x: t for x, t in self._xids.items() if t > now - 2 * self.HORIZON_S}
        rows = conn.execute(
            "SELECT xmin::text::bigint, array_agg(extract(epoch FROM checked_at)::float8) "
            "FROM pings WHERE location = %s AND checked_at > to_timestamp(%s) "
            "AND NOT (xmin::text::bigint = ANY(%s::bigint[])) GROUP BY 1",
            (LOCATION, now - self.HORIZON_S, list(self._xids)),
        ).fetchall()
        for xid, checked in rows:
            self._xids[xid] = now
            self.delays += [now - c for c in checked]
            self.seen += len(checked)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self._error is not None:
            raise UptimelabError(f"the delay poller failed: {self._error}")
