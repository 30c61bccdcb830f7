"""Benchmark: what keeping incidents costs the write of a batch.

In a scratch database with N sites, each round stores one ping per site and location (a batch of
N x L rows) through the collector's PingCopier, alternately with incident tracking (the writer's
way: sql/011 in the batch's transaction) and without, for `--repeat` rounds each, a minute
apart. A share of the sites (`--flaky`, default 10 %) is down in a pattern that confirms and
resolves incidents (down_after 2); the rest stays up (the fast path: nothing to recompute).
`--locations 2` adds the quorum verdict's series for every site.

`--live` writes the rounds from now on (above the rollup's watermark, as a collector does; by
default they start two hours back, below it, where sql/013's trigger marks rollup rows dirty in
both arms). `--compare-017` adds a third arm: sql/017's entry point (loaded under another name),
which set aside only one-location sites.

`--explain` then stores one more batch with tracking under auto_explain (EXPLAIN ANALYZE of
every statement the functions run, nested ones too) and prints the statements that took at
least `--explain-min-ms`, slowest first, with their plans.

    .venv/bin/python benchmarks/incident_tracking.py [--sites 1000] [--locations 1]
        [--flaky 0.1] [--repeat 10] [--history-hours 0] [--live] [--compare-017]
        [--explain] [--explain-min-ms 1]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import random
import re
import statistics
import time
from collections.abc import Iterator
from typing import Any

import psycopg

from uptimelab.storage import database as database_module
from uptimelab.storage import incidents as incidents_module
from uptimelab.storage.copying import PingCopier
from uptimelab.storage.database import connect
from uptimelab.storage.incidents import IncidentRules
from uptimelab.testing.bench import placeholder_sites, scratch_database


def spread(values: list[float]) -> str:
    mid, low, high = statistics.median(values), min(values), max(values)
    return f"median {mid:,.4f} (min {low:,.4f}, max {high:,.4f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--locations", type=int, default=1)
    parser.add_argument("--flaky", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument(
        "--history-hours",
        type=float,
        default=0,
        help="hours of up pings (one a minute per series) stored before the rounds",
    )
    parser.add_argument("--live", action="store_true")
    parser.add_argument("--compare-017", action="store_true")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--explain-min-ms", type=float, default=1.0)
    args = parser.parse_args()
    arms = 3 if args.compare_017 else 2
    old: list[float] = []
    server = connect(os.environ.get("UPTIMELAB_DATABASE_URL"), migrate=False)
    tracked: list[float] = []
    bare: list[float] = []
    explained: list[tuple[float, str]] = []
    random.seed(1)
    with scratch_database(server) as db:
        ids = placeholder_sites(db, args.sites)
        flaky = set(random.sample(ids, int(len(ids) * args.flaky)))
        places = [f"loc-{i}" for i in range(args.locations)]
        with_incidents, without = PingCopier(IncidentRules()), PingCopier(None)
        at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=0 if args.live else 2)
        incidents = 0
        with psycopg.connect(db.url, autocommit=True) as conn:
            if args.history_hours:
                history(conn, at, args.history_hours, places)
            if args.compare_017:
                conn.execute(sql_017())
            for k in range(arms * (args.repeat + 2)):
                at += dt.timedelta(minutes=1)
                # flaky sites: down, down, up, up (an incident every four minutes)
                down = (k // arms) % 4 < 2
                rows = [
                    (s, at, "down", None, None, "timeout", "timed out", place, "BB")
                    if s in flaky and down
                    else (s, at, "up", 200, 120, None, None, place, "BB")
                    for s in ids
                    for place in places
                ]
                arm = k % arms
                copier = without if arm == 1 else with_incidents
                start = time.perf_counter()
                if arm == 2:
                    with uses(OLD_TRACK):
                        copier.write(conn, None, rows, replay=False)
                else:
                    copier.write(conn, None, rows, replay=False)
                elapsed = time.perf_counter() - start
                if k >= 2 * arms:  # two rounds of each warm up
                    (tracked, bare, old)[arm].append(elapsed)
            found = conn.execute("SELECT count(*) FROM incidents").fetchone()
            incidents = int(found[0]) if found else 0
            if args.explain:
                at += dt.timedelta(minutes=1)
                k = arms * (args.repeat + 2)
                down = (k // arms) % 4 < 2
                rows = [
                    (s, at, "down", None, None, "timeout", "timed out", place, "BB")
                    if s in flaky and down
                    else (s, at, "up", 200, 120, None, None, place, "BB")
                    for s in ids
                    for place in places
                ]
                explained = explain(conn, with_incidents, rows, args.explain_min_ms)
    rows = args.sites * args.locations
    print(
        f"{args.sites} sites x {args.locations} location(s) = {rows} pings a batch, "
        f"{len(flaky)} flaky, {args.repeat} rounds each, alternating; {incidents} incidents kept"
    )
    print(f"with incidents, s a batch:    {spread(tracked)}")
    print(f"without, s a batch:           {spread(bare)}")
    pairs = list(zip(tracked, bare, strict=True))
    print(f"tracking cost, ms a batch:    {spread([(a - b) * 1000 for a, b in pairs])}")
    print(f"with / without:               {spread([a / b for a, b in pairs])}")
    if args.compare_017:
        print(f"with sql/017's, s a batch:    {spread(old)}")
        triples = list(zip(old, bare, strict=True))
        print(f"sql/017's cost, ms a batch:   {spread([(a - b) * 1000 for a, b in triples])}")
        ratios = [(t - b) / (o - b) for t, b, o in zip(tracked, bare, old, strict=True) if o > b]
        print(f"cost now / sql/017's:         {spread(ratios)}")
    if args.explain:
        print(f"\nstatements of one tracked batch taking >= {args.explain_min_ms} ms:")
        for ms, text in explained:
            print(f"--- {ms:.1f} ms\n{text}")


OLD_TRACK = incidents_module._TRACK.replace(
    "uptimelab_track_incidents_fast", "uptimelab_track_incidents_fast_017"
)


def sql_017() -> str:
    """sql/017's uptimelab_track_incidents_fast, as uptimelab_track_incidents_fast_017."""
    text = (database_module.sql_dir() / "017_incident_tracking_fast.sql").read_text()
    body = text[text.index("CREATE OR REPLACE FUNCTION") :]
    return body.replace("uptimelab_track_incidents_fast(", "uptimelab_track_incidents_fast_017(")


@contextlib.contextmanager
def uses(statement: str) -> Iterator[None]:
    """The writer's tracking statement replaced by ``statement`` meanwhile."""
    kept = incidents_module._TRACK
    incidents_module._TRACK = statement
    try:
        yield
    finally:
        incidents_module._TRACK = kept


def history(
    conn: psycopg.Connection[Any], end: dt.datetime, hours: float, places: list[str]
) -> None:
    """Up pings one a minute for every site and location over ``hours`` before ``end``, and
    their series in incident_series (as a collector that ran that long leaves them)."""
    start = end - dt.timedelta(hours=hours)
    day = start.date()
    while day <= end.date() + dt.timedelta(days=1):
        conn.execute("SELECT uptimelab_ensure_pings_partition(%s)", (day,))
        day += dt.timedelta(days=1)
    began = time.perf_counter()
    conn.execute(
        """INSERT INTO pings (site_id, checked_at, status, status_code, response_time_ms,
                              location, region_code)
           SELECT s.id, g, 'up', 200, 120, l, 'BB'
             FROM sites AS s, unnest(%s::text[]) AS l,
                  generate_series(%s::timestamptz, %s::timestamptz - interval '1 minute',
                                  interval '1 minute') AS g""",
        (places, start, end),
    )
    conn.execute(
        "INSERT INTO incident_series (site_id, location) "
        "SELECT s.id, l FROM sites AS s, unnest(%s::text[]) AS l ON CONFLICT DO NOTHING",
        (places,),
    )
    conn.execute("ANALYZE")
    print(f"history: {hours:g} h stored in {time.perf_counter() - began:.1f} s")


def explain(
    conn: psycopg.Connection[Any], copier: PingCopier, rows: list[Any], min_ms: float
) -> list[tuple[float, str]]:
    """Store ``rows`` with tracking under auto_explain (needs a superuser): the plans of the
    statements that took at least ``min_ms``, slowest first."""
    plans: list[tuple[float, str]] = []

    def noted(diag: psycopg.errors.Diagnostic) -> None:
        text = diag.message_primary or ""
        match = re.match(r"duration: ([0-9.]+) ms", text)
        if match:
            plans.append((float(match.group(1)), text))

    conn.execute("LOAD 'auto_explain'")
    for name, value in (
        ("log_min_duration", f"{min_ms}ms"),
        ("log_analyze", "on"),
        ("log_buffers", "on"),
        ("log_nested_statements", "on"),
        ("log_level", "notice"),
    ):
        conn.execute(f"SET auto_explain.{name} = '{value}'")
    conn.add_notice_handler(noted)
    try:
        start = time.perf_counter()
        copier.write(conn, None, rows, replay=False)
        whole = (time.perf_counter() - start) * 1000
        plans.append((whole, "(the whole write, as the client saw it)"))
    finally:
        conn.remove_notice_handler(noted)
        conn.execute("SET auto_explain.log_min_duration = -1")
    return sorted(plans, key=lambda p: -p[0])


if __name__ == "__main__":
    main()
