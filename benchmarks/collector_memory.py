"""Benchmark: where a collector's memory per site goes. Registers N zoo-like sites in a scratch
database, then, under tracemalloc, does what a collector on its schedule does with them: the
sites query, the site cache on disk, the schedule's hold, one round of pops and probes. Reports
the peak and the memory kept after each step, per site.

    .venv/bin/python benchmarks/collector_memory.py [--sites 10000 100000]
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

from uptimelab.collector.schedule import Schedule
from uptimelab.storage import fleet
from uptimelab.storage.database import Database, connect
from uptimelab.storage.local_state import LocalState, save_sites
from uptimelab.testing.bench import scratch_database


def register(db: Database, n: int) -> None:
    with db.connect() as conn:
        conn.execute(
            "INSERT INTO sites (url, name, interval_ms) "
            "SELECT 'http://127.0.0.1:' || (40000 + g %% 3) || '/t/site-' "
            "|| lpad(g::text, 6, '0'), 'site-' || lpad(g::text, 6, '0'), 300000 "
            "FROM generate_series(1, %s) AS g",
            (n,),
        )


def measure(db: Database, n: int) -> list[tuple[str, float, float]]:
    """(step, MB kept after it, MB peak during it) for each step."""
    out: list[tuple[str, float, float]] = []
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]

    def step(name: str) -> None:
        gc.collect()
        now, peak = tracemalloc.get_traced_memory()
        out.append((name, (now - base) / 2**20, (peak - base) / 2**20))
        tracemalloc.reset_peak()

    with db.connect() as conn:
        sites = fleet.sites_in_buckets(conn, frozenset(range(fleet.BUCKETS)))
    step("sites query (list of ActiveSite)")
    with tempfile.TemporaryDirectory() as tmp:
        local = LocalState(Path(tmp), "bench")
        save_sites(local, sites)
    step("site cache written")
    schedule = Schedule(300)
    now = time.time()
    schedule.hold(sites, {}, now)
    step("schedule holds them")
    while (due := schedule.pop_due(now + 1)) is not None:
        schedule.probed(due[0].id, now, down=False)
    step("one round: popped and probed")
    with db.connect() as conn:
        again = fleet.sites_in_buckets(conn, frozenset(range(fleet.BUCKETS)))
    schedule.hold(again, {}, now)
    del again
    step("reloaded from the database (every 30 s)")
    del sites
    step("first query's list dropped (the schedule keeps the sites)")
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    print(f"-- {n} sites: largest holders now")
    for stat in snapshot.statistics("lineno")[:8]:
        print(f"   {stat.size / n:7.1f} B/site  {stat.traceback}")
    del schedule
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    server = connect(os.environ.get("UPTIMELAB_DATABASE_URL"), migrate=False)
    for n in args.sites:
        with scratch_database(server) as db:
            register(db, n)
            steps = measure(db, n)
        print(f"{'step':52} {'kept MB':>8} {'peak MB':>8} {'kept B/site':>11}")
        for name, kept, peak in steps:
            print(f"{name:52} {kept:8.1f} {peak:8.1f} {kept * 2**20 / n:11.0f}")


if __name__ == "__main__":
    main()
