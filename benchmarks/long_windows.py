"""Benchmark: a 365-day window for every site from the rollups kept for ever (issue 15 §2),
beside the raw scan of the days still in the database, in a scratch database.

The history: SITES sites; the older days exist as hourly and daily rollups only (their raw
pings pruned, recorded in pings_pruned_days as `uptimelab prune` leaves them), the last RAW_DAYS
days as raw pings every EVERY seconds from one location, rolled up by uptimelab_advance_rollup
as a collector's refresh does. Then, per policy, REPEAT runs of uptimelab_window_at(now, 365 d)
(every site; median and min-max), each beside a run of the same window by sql/013's version of
the function (kept here only, as bench_window_at_013, for the ratio of new to old in the same
run, whatever the machine's load), and uptimelab_window_reference(now, RAW_DAYS) (raw pings
only, the days still stored). The load average is printed before and after.

    .venv/bin/python benchmarks/long_windows.py [--sites 1000] [--days 365] [--raw-days 3]
        [--every 300] [--repeat 7]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import statistics
import time
from pathlib import Path

from uptimelab.storage.database import Database, connect
from uptimelab.testing.bench import scratch_database


def build(db: Database, sites: int, days: int, raw_days: int, every_s: int) -> dict[str, float]:
    """Write the history; returns how long each step took (seconds)."""
    now = dt.datetime.now(dt.UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first_raw = today - dt.timedelta(days=raw_days)
    first = today - dt.timedelta(days=days)
    per_hour = 3600 // every_s
    took: dict[str, float] = {}
    with db.connect() as conn:
        # A year of a fleet's rollups in one statement outlasts the connections' time-out on a
        # busy machine.
        conn.execute("SET statement_timeout = 0")
        conn.execute(
            "INSERT INTO sites (url) SELECT 'http://site-' || i || '.example/' "
            "FROM generate_series(1, %s) AS i",
            (sites,),
        )
        for day in range(raw_days + 2):
            conn.execute(
                "SELECT uptimelab_ensure_pings_partition(%s)",
                (first_raw.date() + dt.timedelta(days=day),),
            )
        started = time.perf_counter()
        # About one hour in a hundred has a down ping; one in three of those is confirmed.
        conn.execute(
            """INSERT INTO ping_rollup_hourly (site_id, hour, pings, pings_up,
                   up_response_ms_sum, up_response_count, pings_down_confirmed, up_us, down_us)
               SELECT s.id, h, %(n)s, %(n)s - d.down, (%(n)s - d.down) * 180, %(n)s - d.down,
                      d.down * d.confirmed, (%(n)s - d.down) * %(span)s::bigint,
                      d.down * %(span)s::bigint
                 FROM sites AS s
                CROSS JOIN generate_series(%(lo)s, %(hi)s, interval '1 hour') AS h
                CROSS JOIN LATERAL (SELECT (random() < 0.01)::int AS down,
                                           (random() < 0.33)::int AS confirmed
                                     WHERE h IS NOT NULL) AS d""",
            {
                "n": per_hour,
                "span": every_s * 1_000_000,
                "lo": first,
                "hi": first_raw - dt.timedelta(hours=1),
            },
        )
        conn.execute(
            """INSERT INTO ping_rollup_daily
               SELECT site_id, date_trunc('day', hour, 'UTC'), sum(pings), sum(pings_up),
                      sum(up_response_ms_sum), sum(up_response_count),
                      sum(pings_down_confirmed), sum(up_us), sum(down_us)
                 FROM ping_rollup_hourly GROUP BY 1, 2"""
        )
        conn.execute(
            "INSERT INTO pings_pruned_days (day, part, pings) "
            "SELECT d::date, 0, 0 FROM generate_series(%s::date, %s::date, interval '1 day') d",
            (first.date(), (first_raw - dt.timedelta(days=1)).date()),
        )
        conn.execute("UPDATE ping_rollup_state SET watermark = %s", (first_raw,))
        took["rollups written"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute(
            """INSERT INTO pings (site_id, checked_at, status, response_time_ms,
                   error_category, location, region_code)
               SELECT s.id, t, CASE WHEN d THEN 'down' ELSE 'up' END,
                      CASE WHEN d THEN NULL ELSE 180 END, CASE WHEN d THEN 'timeout' END,
                      'bench', 'XX'
                 FROM sites AS s
                CROSS JOIN generate_series(%s, %s, make_interval(secs => %s)) AS t
                CROSS JOIN LATERAL (SELECT random() < 0.01 AS d WHERE t IS NOT NULL) AS x""",
            (first_raw, now, every_s),
        )
        took["raw pings written"] = time.perf_counter() - started
    with db.connect(autocommit=True) as conn:
        conn.execute("SET statement_timeout = 0")
        conn.execute("ANALYZE")
        started = time.perf_counter()
        conn.execute("SELECT uptimelab_advance_rollup(now())")
        took["raw days rolled up (advance)"] = time.perf_counter() - started
        started = time.perf_counter()
        settled = conn.execute("SELECT uptimelab_settle_rollup(NULL) AS n").fetchone()
        took[f"raw days settled ({settled['n'] if settled else 0} rows)"] = (
            time.perf_counter() - started
        )
        conn.execute("ANALYZE")
    return took


OLD = "bench_window_at_013"


def create_old_function(db: Database) -> None:
    """sql/013's uptimelab_window_at, as it was before sql/019, under the name :data:`OLD`."""
    text = (Path(__file__).parent.parent / "sql" / "013_uptime_policies.sql").read_text()
    found = re.search(
        r"^CREATE OR REPLACE FUNCTION uptimelab_window_at\(.*?^\$\$;", text, re.S | re.M
    )
    assert found is not None, "sql/013 has no uptimelab_window_at"
    body = found.group(0).replace("uptimelab_window_at", OLD)
    with db.connect() as conn:
        conn.execute(body)  # sql/013's own text


def timed(db: Database, query: str, args: tuple[object, ...], repeat: int) -> tuple[float, int]:
    runs, rows = timed_runs(db, [query], args, repeat)
    return statistics.median(runs[0]), rows


def timed_runs(
    db: Database, queries: list[str], args: tuple[object, ...], repeat: int
) -> tuple[list[list[float]], int]:
    """Each query ``repeat`` times, in turn (one of each, then again); the seconds of each run."""
    runs: list[list[float]] = [[] for _ in queries]
    rows = 0
    with db.connect() as conn:
        for query in queries:  # once each first: plans and caches warm
            conn.execute(query, args).fetchall()
        for _ in range(repeat):
            for k, query in enumerate(queries):
                started = time.perf_counter()
                rows = len(conn.execute(query, args).fetchall())
                runs[k].append(time.perf_counter() - started)
    return runs, rows


def spread(runs: list[float]) -> str:
    return f"{statistics.median(runs):.3f} ({min(runs):.3f}-{max(runs):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--raw-days", type=int, default=3)
    parser.add_argument("--every", type=int, default=300, help="seconds between raw pings")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    server = connect(os.environ.get("UPTIMELAB_DATABASE_URL"), migrate=False)
    with scratch_database(server) as db:
        took = build(db, args.sites, args.days, args.raw_days, args.every)
        for step, seconds in took.items():
            print(f"{step}: {seconds:.1f} s", flush=True)
        with db.connect() as conn:
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM ping_rollup_daily) AS daily, "
                "(SELECT count(*) FROM ping_rollup_hourly) AS hourly, "
                "(SELECT count(*) FROM pings) AS raw"
            ).fetchone()
        assert counts is not None
        print(
            f"{args.sites} sites, {args.days} days: {counts['daily']} daily and "
            f"{counts['hourly']} hourly rollup rows, {counts['raw']} raw pings "
            f"({args.raw_days} days)"
        )
        create_old_function(db)
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(
            f"{'policy':<10} {'365 d, s (min-max)':>22} {'sql/013, s (min-max)':>22}"
            f" {'new/old':>8} {f'{args.raw_days} d raw scan':>16}"
        )
        for policy in ("samples", "confirmed", "time"):
            (fast, old), rows = timed_runs(
                db,
                [
                    "SELECT * FROM uptimelab_window_at(now(), %s, %s, false)",
                    f"SELECT * FROM {OLD}(now(), %s, %s, false)",
                ],
                (dt.timedelta(days=365), policy),
                args.repeat,
            )
            ratios = [a / b for a, b in zip(fast, old, strict=True)]
            with db.connect() as conn:
                answers = [
                    conn.execute(
                        f"SELECT * FROM {name}(now(), %s, %s, false) ORDER BY site_id",
                        (dt.timedelta(days=365), policy),
                    ).fetchall()
                    for name in ("uptimelab_window_at", OLD)
                ]
            assert answers[0] == answers[1], f"{policy}: not the rows of sql/013's function"
            raw, _ = timed(
                db,
                "SELECT * FROM uptimelab_window_reference(now(), %s, %s, false)",
                (dt.timedelta(days=args.raw_days), policy),
                max(1, args.repeat // 3),
            )
            print(
                f"{policy:<10} {spread(fast):>22} {spread(old):>22}"
                f" {statistics.median(ratios):>8.2f} {raw:>14.3f} s   ({rows} sites)"
            )
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
