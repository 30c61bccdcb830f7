"""Benchmark: what one micro-batch's site_stats refresh costs as the fleet and its history grow.

A collector refreshes site_stats for each stored batch's sites (``uptimelab_refresh_site_stats(
now(), <the batch's sites>)``). That must cost the batch's sites, not the fleet: the fleet's
pings arrive at R a second, so a refresh that reads every site's rows of the current hour, of
the windows' edges or of the rollups grows with the fleet, its history and the hour.

For each fleet size F the scratch database holds F sites with ``--hours`` of hourly rollup
rows (by default 8 days, so that the 7-day window has hourly rows all through, as a running
fleet's has), daily rows that are their sums and ``--days`` more before them, and the last
``--raw-hours`` of raw pings (one every ``--every`` seconds per site, rolled up to the last
whole hour); then batches of ``--batch`` sites are refreshed, each in a transaction rolled back
(so every timing starts from the same state), both with the functions of ``--migration`` (now)
and with those they replaced (each as the last file before it defined it, loaded into a schema
``before`` and reached through search_path), alternately, in one run. It prints the
milliseconds per batch (median, min-max), the ratio before/now and the load average.

    UPTIMELAB_DATABASE_URL=... .venv/bin/python benchmarks/batch_refresh.py \
        [--fleet 10000 50000] [--batch 1000] [--repeat 7] [--migration 024_]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from pathlib import Path

from uptimelab.storage.database import Database, connect
from uptimelab.testing.bench import scratch_database

SQL = Path(__file__).resolve().parent.parent / "sql"
# The functions each file replaced, measured against their previous definitions.
REPLACED = {
    "020_": [
        "uptimelab_site_stats_at",
        "uptimelab_ping_values",
        "uptimelab_window_at",
        "uptimelab_site_stats_policy_at",
    ],
    "024_": ["uptimelab_site_stats_at", "uptimelab_window_at"],
}


def definition(text: str, name: str) -> str:
    """The CREATE FUNCTION statement of ``name`` in a migration's text."""
    start = text.index(f"CREATE OR REPLACE FUNCTION {name}(")
    body = re.compile(r"AS \$\$").search(text, start)
    assert body is not None
    end = text.index("$$;", body.end()) + 3
    return text[start:end]


def load_before(db: Database, migration: str) -> None:
    """The functions ``migration`` replaced (each as the last file before it defined it) in a
    schema of their own, under the same names."""
    files = sorted(p for p in SQL.glob("*.sql") if p.name < migration)
    with db.connect(autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS before")
        for name in REPLACED[migration]:
            text = next(
                t
                for t in (p.read_text() for p in reversed(files))
                if f"CREATE OR REPLACE FUNCTION {name}(" in t
            )
            stmt = definition(text, name).replace(
                f"CREATE OR REPLACE FUNCTION {name}(", f"CREATE OR REPLACE FUNCTION before.{name}("
            )
            conn.execute(stmt)


def build(db: Database, fleet: int, *, days: int, hours: int, raw_hours: int, every: int) -> int:
    """The fleet and its history; returns the raw pings written."""
    with db.connect(autocommit=True) as conn:
        conn.execute(
            "INSERT INTO sites (url, interval_ms) "
            "SELECT 'http://bench-' || g || '.invalid/', %s FROM generate_series(1, %s) AS g",
            (every * 1000, fleet),
        )
        for back in (0, 1):
            conn.execute(
                "SELECT uptimelab_ensure_pings_partition((now() AT TIME ZONE 'UTC')::date - %s)",
                (back,),
            )
        # Raw pings of the last raw_hours, each site on its own phase.
        raw = conn.execute(
            """INSERT INTO pings (site_id, checked_at, status, status_code, response_time_ms,
                                  location, region_code)
               SELECT s.id, at, 'up', 200, 100 + (random() * 50)::int, 'bench', 'BB'
                 FROM sites AS s
                CROSS JOIN LATERAL generate_series(
                      now() - make_interval(hours => %s)
                          + make_interval(secs => (abs(hashtext(s.id::text)) %% %s)),
                      now() - interval '1 second', make_interval(secs => %s)) AS at""",
            (raw_hours, every, every),
        ).rowcount
        conn.execute("SELECT uptimelab_advance_rollup(now())")
        first_raw = conn.execute(
            "SELECT date_trunc('hour', now() - make_interval(hours => %s), 'UTC') AS h",
            (raw_hours,),
        ).fetchone()
        assert first_raw is not None
        per_hour = 3600 // every
        # Older whole hours straight into the hourly rollup, older whole days into the daily.
        conn.execute(
            """INSERT INTO ping_rollup_hourly (site_id, hour, pings, pings_up,
                                               up_response_ms_sum, up_response_count)
               SELECT s.id, h, %s, %s, %s * 120, %s
                 FROM sites AS s
                CROSS JOIN generate_series(%s - make_interval(hours => %s),
                                           %s - interval '1 hour', interval '1 hour') AS h
               ON CONFLICT DO NOTHING""",
            (per_hour, per_hour, per_hour, per_hour, first_raw["h"], hours, first_raw["h"]),
        )
        # The days of those hours: their sums, as the advances and settles leave them.
        conn.execute(
            """INSERT INTO ping_rollup_daily AS y
               SELECT r.site_id, date_trunc('day', r.hour, 'UTC'), sum(r.pings), sum(r.pings_up),
                      sum(r.up_response_ms_sum), sum(r.up_response_count),
                      sum(r.pings_down_confirmed), sum(r.up_us), sum(r.down_us)
                 FROM ping_rollup_hourly AS r GROUP BY 1, 2
               ON CONFLICT (site_id, day) DO UPDATE SET
                   pings = EXCLUDED.pings, pings_up = EXCLUDED.pings_up,
                   up_response_ms_sum = EXCLUDED.up_response_ms_sum,
                   up_response_count = EXCLUDED.up_response_count,
                   pings_down_confirmed = EXCLUDED.pings_down_confirmed,
                   up_us = EXCLUDED.up_us, down_us = EXCLUDED.down_us"""
        )
        per_day = 24 * per_hour
        conn.execute(
            """INSERT INTO ping_rollup_daily (site_id, day, pings, pings_up, up_response_ms_sum,
                                              up_response_count, pings_down_confirmed, up_us,
                                              down_us)
               SELECT s.id, d, %s, %s, %s * 120, %s, 0, 86400000000, 0
                 FROM sites AS s
                CROSS JOIN generate_series(
                      date_trunc('day', %s - make_interval(hours => %s), 'UTC')
                          - make_interval(days => %s),
                      date_trunc('day', %s - make_interval(hours => %s), 'UTC')
                          - interval '1 day', interval '1 day') AS d
               ON CONFLICT DO NOTHING""",
            (
                per_day,
                per_day,
                per_day,
                per_day,
                first_raw["h"],
                hours,
                days,
                first_raw["h"],
                hours,
            ),
        )
        conn.execute("SELECT uptimelab_settle_rollup(NULL)")
        conn.execute("VACUUM ANALYZE")
    return int(raw)


def refresh_ms(db: Database, batch: list[object], schema: str) -> float:
    with db.connect() as conn:
        conn.execute(f"SET search_path = {schema}")
        started = time.perf_counter()
        conn.execute("SELECT uptimelab_refresh_site_stats(now(), %s)", (batch,))
        took = (time.perf_counter() - started) * 1000
        conn.rollback()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleet", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30, help="days of daily rows before the hourly")
    parser.add_argument("--hours", type=int, default=192, help="hours of hourly rollup rows")
    parser.add_argument("--raw-hours", type=int, default=2, help="hours of raw pings")
    parser.add_argument("--every", type=int, default=300, help="seconds between a site's pings")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--migration", choices=sorted(REPLACED), default="024_", help="the file measured"
    )
    args = parser.parse_args()
    server = connect(os.environ.get("UPTIMELAB_DATABASE_URL"), migrate=False)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    for fleet in args.fleet:
        with scratch_database(server) as db:
            raw = build(
                db,
                fleet,
                days=args.days,
                hours=args.hours,
                raw_hours=args.raw_hours,
                every=args.every,
            )
            load_before(db, args.migration)
            with db.connect() as conn:
                ids = [r["id"] for r in conn.execute("SELECT id FROM sites ORDER BY random()")]
            batches = [ids[k : k + args.batch] for k in range(0, len(ids), args.batch)]
            now_ms: list[float] = []
            before_ms: list[float] = []
            for k in range(args.repeat):
                batch = batches[k % len(batches)]
                # Each goes first every other time: the first reads the batch's pages cold.
                if k % 2 == 0:
                    before_ms.append(refresh_ms(db, batch, "before, public"))
                    now_ms.append(refresh_ms(db, batch, "public"))
                else:
                    now_ms.append(refresh_ms(db, batch, "public"))
                    before_ms.append(refresh_ms(db, batch, "before, public"))
            b, n = statistics.median(before_ms), statistics.median(now_ms)
            print(
                f"fleet {fleet:>7}: {raw} raw pings; batch of {args.batch} sites: "
                f"before {b:8.1f} ms ({min(before_ms):.1f}-{max(before_ms):.1f}), "
                f"now {n:7.1f} ms ({min(now_ms):.1f}-{max(now_ms):.1f}), "
                f"before/now {b / n:5.1f}x; load average {os.getloadavg()[0]:.2f}"
            )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
