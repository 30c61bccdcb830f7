"""Benchmark: what sql/013's rollup trigger adds to a batch's write and to its stats refresh.

In a scratch database with N sites: rounds of one ping per site (a batch of N rows, a second
apart, live: above the rollup's watermark, as a collector writes them), each a bare COPY in one
transaction followed by the per-batch refresh of those sites (`uptimelab_refresh_site_stats(now(),
ids)`, as the writer calls it), alternately with `pings_rollup_policy_insert` (sql/013: a
statement trigger with a transition table) enabled and disabled, `--repeat` rounds each. A
`--late` share of each batch is written below the watermark (a replay), where the trigger marks
rollup rows dirty for the next refreshes to settle.

    .venv/bin/python benchmarks/policy_trigger.py [--sites 1000] [--repeat 15] [--late 0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time

import psycopg

from uptimelab.domain.pings import PING_COLUMNS, PingResult
from uptimelab.storage.copying import ping_row
from uptimelab.storage.database import connect
from uptimelab.testing.bench import placeholder_sites, scratch_database

TRIGGER = "pings_rollup_policy_insert"


def spread(values: list[float]) -> str:
    mid, low, high = statistics.median(values), min(values), max(values)
    return f"median {mid * 1000:,.1f} ms (min {low * 1000:,.1f}, max {high * 1000:,.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--late", type=float, default=0.0, help="share written below the mark")
    args = parser.parse_args()
    server = connect(os.environ.get("UPTIMELAB_DATABASE_URL"), migrate=False)
    write: dict[bool, list[float]] = {True: [], False: []}
    refresh: dict[bool, list[float]] = {True: [], False: []}
    with scratch_database(server) as db:
        ids = placeholder_sites(db, args.sites)
        late = ids[: int(len(ids) * args.late)]
        at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
        with psycopg.connect(db.url, autocommit=True) as conn:
            for day in (-1, 0, 1):
                conn.execute(
                    "SELECT uptimelab_ensure_pings_partition(%s)",
                    (at.date() + dt.timedelta(days=day),),
                )
            # Two hours of history first, so that the rollup has hours to mark below its mark.
            for _ in range(120):
                at += dt.timedelta(minutes=1)
                with conn.cursor().copy(f"COPY pings ({', '.join(PING_COLUMNS)}) FROM STDIN") as c:
                    for s in ids:
                        c.write_row(
                            ping_row(PingResult(s, at, "up", 200, 120, None, None, "b", "BB"))
                        )
            conn.execute("SELECT uptimelab_refresh_site_stats(now(), NULL)")
            for k in range(2 * args.repeat + 2):
                enabled = k % 2 == 0
                conn.execute(
                    f"ALTER TABLE pings {'ENABLE' if enabled else 'DISABLE'} TRIGGER {TRIGGER}"
                )
                now = dt.datetime.now(dt.UTC)
                rows = [
                    ping_row(
                        PingResult(
                            s,
                            now - dt.timedelta(minutes=90, seconds=k) if s in late else now,
                            "up",
                            200,
                            120,
                            None,
                            None,
                            "b",
                            "BB",
                        )
                    )
                    for s in ids
                ]
                start = time.perf_counter()
                with (
                    conn.transaction(),
                    conn.cursor().copy(f"COPY pings ({', '.join(PING_COLUMNS)}) FROM STDIN") as c,
                ):
                    for row in rows:
                        c.write_row(row)
                written = time.perf_counter()
                conn.execute("SELECT uptimelab_refresh_site_stats(now(), %s)", (ids,))
                done = time.perf_counter()
                if k >= 2:  # a round of each warms up
                    write[enabled].append(written - start)
                    refresh[enabled].append(done - written)
            conn.execute(f"ALTER TABLE pings ENABLE TRIGGER {TRIGGER}")
    print(
        f"{args.sites} pings a batch ({len(late)} below the watermark), "
        f"{args.repeat} rounds each, alternating"
    )
    for enabled in (True, False):
        name = "with the trigger" if enabled else "without"
        print(f"COPY, {name:17} {spread(write[enabled])}")
        print(f"refresh, {name:14} {spread(refresh[enabled])}")
    pairs = zip(write[True], write[False], strict=True)
    print(f"trigger's cost on the COPY: {spread([a - b for a, b in pairs])}")
    pairs = zip(refresh[True], refresh[False], strict=True)
    print(f"and on the refresh:         {spread([a - b for a, b in pairs])}")


if __name__ == "__main__":
    main()
