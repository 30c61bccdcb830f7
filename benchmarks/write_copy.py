"""Benchmark: the cycle writer against a bare psycopg COPY of the same rows.

In a scratch database, alternating for `--repeat` rounds: the collector's writer storing a cycle
of N pings (one per site, partitions ready, one transaction with COPY plus the cycle row, as in
production, without the stats refresh) and a bare `COPY pings FROM STDIN` of rows of the same
shape in one transaction. Both write into the same table (same indexes, same trigger). Rows are
as wide as an HTTPS ping makes them (phase timings and a certificate expiry).

    .venv/bin/python benchmarks/write_copy.py [--sites 10000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from uptimelab.config import Settings
from uptimelab.domain.pings import PING_COLUMNS, PingResult
from uptimelab.storage.copying import ping_row
from uptimelab.storage.database import connect
from uptimelab.storage.models import MonitoringCycle
from uptimelab.storage.writer import Writer
from uptimelab.testing.bench import placeholder_sites, scratch_database


def spread(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):,.3f} (min {min(values):,.3f}, max {max(values):,.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    server = connect(os.environ.get("UPTIMELAB_DATABASE_URL"), migrate=False)
    ours: list[float] = []
    bare: list[float] = []
    with scratch_database(server) as db, tempfile.TemporaryDirectory() as data:
        ids = placeholder_sites(db, args.sites)
        writer = Writer(db, Settings.load(database_url=db.url, data_dir=Path(data)))
        at = dt.datetime.now(dt.UTC)
        expires = at + dt.timedelta(days=60)
        with psycopg.connect(db.url, autocommit=True) as conn:
            for k in range(2 * args.repeat + 2):
                at += dt.timedelta(seconds=1)
                # Rows as wide as an HTTPS ping makes them: every phase and a certificate.
                pings = [
                    PingResult(
                        s, at, "up", 200, 120, None, None, "bench", "BB", 8, 12, 25, 70, 5, expires
                    )
                    for s in ids
                ]
                cycle = MonitoringCycle(
                    id=uuid.uuid4(), started_at=at, location="bench", region_code="BB"
                )
                rows = [ping_row(p) for p in pings]  # bare COPY gets its rows ready-made
                start = time.perf_counter()
                if k % 2 == 0:
                    writer.write_cycle(cycle, pings)
                    elapsed, sink = time.perf_counter() - start, ours
                else:
                    with (
                        conn.transaction(),
                        conn.cursor().copy(
                            f"COPY pings ({', '.join(PING_COLUMNS)}) FROM STDIN"
                        ) as copy,
                    ):
                        for row in rows:
                            copy.write_row(row)
                    elapsed, sink = time.perf_counter() - start, bare
                if k >= 2:  # the first round of each warms up
                    sink.append(args.sites / elapsed)
        writer.close()
    print(f"{args.sites} pings per cycle, {args.repeat} rounds each, alternating")
    print(f"writer rows/s:    {spread(ours)}")
    print(f"bare COPY rows/s: {spread(bare)}")
    print(f"writer / bare:    {spread([a / b for a, b in zip(ours, bare, strict=True)])}")


if __name__ == "__main__":
    main()
