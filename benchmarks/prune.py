"""Benchmark: pruning into the Parquet archive. Writes a synthetic history of N sites pinged every
minute for two days through the writer in a scratch database, then prunes every whole day before
today (write, verify, drop) and reports pings per second, the process's max RSS, and bytes per
ping in Parquet against PostgreSQL; then times each step of one day apart.

    .venv/bin/python benchmarks/prune.py [--sites 500]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import tempfile
import time
from pathlib import Path

from psycopg import sql

from uptimelab.storage.archive import read_day_file, write_day
from uptimelab.storage.database import connect
from uptimelab.storage.retention import prune
from uptimelab.testing.bench import scratch_database
from uptimelab.testing.history import write_history


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sites", type=int, default=500)
    args = parser.parse_args()
    server = connect(os.environ.get("UPTIMELAB_DATABASE_URL"), migrate=False)
    with scratch_database(server) as db, tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        history = write_history(db, "2d", sites=args.sites, every="1m")
        print(f"history: {history.pings} pings in {time.perf_counter() - started:.1f} s")
        with db.connect() as conn:
            row = conn.execute(
                "SELECT day, partition_name, pg_total_relation_size(partition_name::regclass) AS b"
                " FROM uptimelab_pings_partitions() ORDER BY day"
            ).fetchall()
        sizes = {r["day"]: r["b"] for r in row}
        # One day's steps apart, into a directory of its own (the partition stays).
        full_day = row[1]
        with db.connect(autocommit=True) as conn:
            t0 = time.perf_counter()
            written = write_day(
                conn, full_day["partition_name"], Path(tmp) / "steps", full_day["day"], 0
            )
            t1 = time.perf_counter()
            read_day_file(written.path)
            t2 = time.perf_counter()
            conn.execute(
                sql.SQL(
                    "SELECT count(*), sum(uptimelab_ping_key_hash(site_id, checked_at, location))"
                    " FROM {}"
                ).format(sql.Identifier(full_day["partition_name"]))
            )
            t3 = time.perf_counter()
        print(
            f"one day of {written.pings} pings: COPY + Parquet + read-back checksum "
            f"{t1 - t0:.2f} s (of which the file's checksum {t2 - t1:.2f} s), "
            f"the partition's checksum {t3 - t2:.2f} s"
        )
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        archive = Path(tmp) / "archive"
        # Every whole day before today: a cut-off 8 days ahead of now keeps today only.
        started = time.perf_counter()
        result = prune(
            dt.timedelta(days=8),
            archive=archive,
            db=db,
            now=dt.datetime.now(dt.UTC) + dt.timedelta(days=8),
        )
        took = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        files = sum(p.stat().st_size for p in archive.rglob("*.parquet"))
        in_db = sum(sizes[d.day] for d in result.pruned)
        print(
            f"prune: {len(result.pruned)} day(s), {result.pings} pings in {took:.2f} s "
            f"({result.pings / took:,.0f} pings/s); max RSS {before / 1024:.0f} MB before "
            f"(the history's writing), {peak / 1024:.0f} MB after; "
            f"Parquet {files / result.pings:.1f} bytes a ping, PostgreSQL (table and indexes) "
            f"{in_db / result.pings:.0f}"
        )


if __name__ == "__main__":
    main()
