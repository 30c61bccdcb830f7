"""Benchmark: health's queries on the notifications table, and `maintain`'s prune of it.

In a scratch database, `--rows` notification rows (default 1 000 000) over `--days` days (default
180), on 20 channels of 1 000 sites, nearly all sent, a few hundred pending (some failing) and of
incidents still open; then health's query of the last day (`storage.notifications.delivery`),
the notifiers' losses, the reminders' query and the prune's first slice, each `--repeat` times
with and without `notifications_recorded_idx` (sql/018), with their plans (EXPLAIN ANALYZE).

    .venv/bin/python benchmarks/notifications_health.py [--rows 1000000] [--days 180]
        [--repeat 7] [--plans]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg

from uptimelab.storage import notifications
from uptimelab.storage.database import connect
from uptimelab.testing.bench import placeholder_sites, scratch_database

FILL = """
INSERT INTO notifications (key, channel, site_id, incident_id, kind, transition_at, title, body,
                           message_type, status, attempts, recorded_at, next_attempt_at,
                           sent_at, error)
SELECT 'incident:' || g || ':down:0',
       'json://hooks.example.org/*** #' || lpad(to_hex(g %% 20), 8, '0'),
       s.ids[1 + g %% cardinality(s.ids)],
       g,
       CASE WHEN g %% 2 = 0 THEN 'down' ELSE 'recovered' END,
       t.at, 'DOWN: site', 'the body of a message, a few lines long', 'failure',
       CASE WHEN g %% 5000 = 0 THEN 'pending' WHEN g %% 997 = 0 THEN 'expired'
            WHEN g %% 1999 = 0 THEN 'collapsed' ELSE 'sent' END,
       1 + (g %% 3 = 0)::integer,
       t.at, t.at,
       CASE WHEN g %% 5000 = 0 THEN NULL ELSE t.at + interval '1 second' END,
       CASE WHEN g %% 10000 = 0 THEN 'HTTP 503 from the receiver' END
  FROM generate_series(1, %(rows)s) AS g,
       LATERAL (SELECT now() - (%(rows)s - g) * (%(days)s * interval '1 day' / %(rows)s)
                       AS at) AS t,
       (SELECT array_agg(id) AS ids FROM sites) AS s
"""
OPEN_INCIDENTS = """
INSERT INTO incidents (site_id, started_at, confirmed_at, category, down_pings)
SELECT id, now() - interval '3 hours', now() - interval '2 hours', 'timeout', 2
  FROM sites LIMIT 50
"""


def spread(values: list[float]) -> str:
    mid, low, high = statistics.median(values), min(values), max(values)
    return f"median {mid * 1000:,.2f} ms (min {low * 1000:,.2f}, max {high * 1000:,.2f})"


def timed(conn: psycopg.Connection[Any], fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # warm
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--plans", action="store_true", help="print EXPLAIN ANALYZE of each")
    args = parser.parse_args()
    server = connect(os.environ.get("UPTIMELAB_DATABASE_URL"), migrate=False)
    with scratch_database(server) as db:
        placeholder_sites(db, 1000)
        started = time.perf_counter()
        with db.connect() as conn:
            conn.execute(FILL, {"rows": args.rows, "days": args.days})
            conn.execute(OPEN_INCIDENTS)
        with db.connect(autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE notifications")
            conn.execute("ANALYZE incidents")
            size = conn.execute(
                "SELECT pg_size_pretty(pg_total_relation_size('notifications')) AS s"
            ).fetchone()
        shown = size["s"] if size else "?"
        print(
            f"{args.rows:,} notification rows over {args.days} days ({shown}), "
            f"filled in {time.perf_counter() - started:.1f} s"
        )
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=90)
        queries: dict[str, tuple[str, Any]] = {
            "health: delivery of the last day": (notifications._DELIVERY, None),
            "health: losses of the last day": (notifications._LOSSES, None),
            "reminders: resend due": (notifications._RESEND_DUE, (3600,)),
            "prune: one slice (rolled back)": (
                notifications._PRUNE,
                {"cutoff": cutoff, "slice": notifications.PRUNE_SLICE_ROWS},
            ),
        }
        for with_index in (True, False):
            with db.connect(autocommit=True) as conn:
                if not with_index:
                    conn.execute("DROP INDEX notifications_recorded_idx")
            print(f"\n{'with' if with_index else 'WITHOUT'} notifications_recorded_idx:")
            for name, (query, params) in queries.items():
                with db.connect() as conn:

                    def run(q: str = query, p: Any = params, c: Any = conn) -> object:
                        with c.transaction(force_rollback=True):
                            cur = c.execute(q, p)
                            return cur.fetchall() if cur.description else cur.rowcount

                    times = timed(conn, run, args.repeat)
                    print(f"  {name:34} {spread(times)}")
                    if args.plans:
                        with conn.transaction(force_rollback=True):
                            plan = conn.execute(
                                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + query, params
                            ).fetchall()
                        for row in plan:
                            print("      " + next(iter(row.values())))


if __name__ == "__main__":
    main()
