"""Benchmark: refreshing site_stats per micro-batch against once a minute, at a collector's rate.

At R pings a second, a minute brings 60 batches of about R pings each (batches of about one
second), touching 60 x R distinct sites when each site is due once a minute or less often (a
fleet of 300 000 sites every 5 min: 1 000 pings/s, 60 000 distinct sites a minute). The scratch
database holds that many sites with two hours of history (one ping every 5 min, rolled up), then
one minute's refreshes are timed both ways, alternately, several times:

* per batch: 60 calls of ``uptimelab_refresh_site_stats(now(), <the R sites of the batch>)``;
* per minute: one call for all 60 x R sites.

    .venv/bin/python benchmarks/stats_refresh_cadence.py [--rate 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time
import uuid

from uptimelab.storage.database import Database, connect
from uptimelab.storage.writer import Writer
from uptimelab.testing.bench import placeholder_sites, scratch_database


def history(db: Database, sites: list[uuid.UUID], *, hours: float, every_s: int) -> int:
    """``hours`` of pings of every site up to now, all up; returns the rows written."""
    end = dt.datetime.now(dt.UTC)
    writer = Writer(db)
    steps = int(hours * 3600 / every_s)
    written = 0
    try:
        for k in range(steps, 0, -1):
            at = end - dt.timedelta(seconds=k * every_s)
            rows = [(s, at, "up", 200, 150, None, None, "bench", "BB") for s in sites]
            writer.write_rows(rows, {at.date()})
            written += len(rows)
    finally:
        writer.close()
    return written


def refresh(db: Database, groups: list[list[uuid.UUID]]) -> float:
    """Seconds to refresh each group in a transaction of its own, one after the other."""
    with db.connect() as conn:
        started = time.perf_counter()
        for ids in groups:
            with conn.transaction():
                conn.execute("SELECT uptimelab_refresh_site_stats(now(), %s)", (ids,))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000, help="pings per second")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    server = connect(os.environ.get("UPTIMELAB_DATABASE_URL"), migrate=False)
    with scratch_database(server) as db:
        sites = placeholder_sites(db, 60 * args.rate)
        rows = history(db, sites, hours=2, every_s=300)
        with db.connect(autocommit=True) as conn:
            conn.execute("SELECT uptimelab_advance_rollup(now())")
            conn.execute("VACUUM ANALYZE")
        print(f"{len(sites)} sites, {rows} pings of history")
        batches = [sites[k : k + args.rate] for k in range(0, len(sites), args.rate)]
        per_batch, per_minute = [], []
        for _ in range(args.repeat):
            per_batch.append(refresh(db, batches))
            per_minute.append(refresh(db, [sites]))
        b, m = statistics.median(per_batch), statistics.median(per_minute)
        print(f"per batch : 60 x {args.rate} sites  {b:6.2f} s a minute  {per_batch}")
        print(f"per minute: 1 x {len(sites)} sites  {m:6.2f} s a minute  {per_minute}")
        print(f"per batch / per minute: {b / m:.2f}")


if __name__ == "__main__":
    main()
