"""Benchmark: what keeping incidents costs the write of a batch.

In a scratch database with N sites, each round stores one ping per site and location (a batch of
N x L rows) through the collector's PingCopier, alternately with incident tracking (the writer's
way: sql/011 in the batch's transaction) and without, for `--repeat` rounds each, a minute
apart. A share of the sites (`--flaky`, default 10 %) is down in a pattern that confirms and
resolves incidents (down_after 2); the rest stays up (the fast path: nothing to recompute).
`--locations 2` adds the quorum verdict's series for every site.

    .venv/bin/python benchmarks/incident_tracking.py [--sites 1000] [--locations 1]
        [--flaky 0.1] [--repeat 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import time

import psycopg

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
    args = parser.parse_args()
    server = connect(os.environ.get("UPTIMELAB_DATABASE_URL"), migrate=False)
    tracked: list[float] = []
    bare: list[float] = []
    random.seed(1)
    with scratch_database(server) as db:
        ids = placeholder_sites(db, args.sites)
        flaky = set(random.sample(ids, int(len(ids) * args.flaky)))
        places = [f"loc-{i}" for i in range(args.locations)]
        with_incidents, without = PingCopier(IncidentRules()), PingCopier(None)
        at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
        incidents = 0
        with psycopg.connect(db.url, autocommit=True) as conn:
            for k in range(2 * args.repeat + 4):
                at += dt.timedelta(minutes=1)
                # flaky sites: down, down, up, up (an incident every four minutes)
                down = (k // 2) % 4 < 2
                rows = [
                    (s, at, "down", None, None, "timeout", "timed out", place, "BB")
                    if s in flaky and down
                    else (s, at, "up", 200, 120, None, None, place, "BB")
                    for s in ids
                    for place in places
                ]
                copier = with_incidents if k % 2 == 0 else without
                start = time.perf_counter()
                copier.write(conn, None, rows, replay=False)
                elapsed = time.perf_counter() - start
                if k >= 4:  # two rounds of each warm up
                    (tracked if k % 2 == 0 else bare).append(elapsed)
            found = conn.execute("SELECT count(*) FROM incidents").fetchone()
            incidents = int(found[0]) if found else 0
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


if __name__ == "__main__":
    main()
