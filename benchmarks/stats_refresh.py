"""Benchmark: the stats rollup path against the reference view (the same as `uptimelab bench
stats`): a synthetic history written through the writer into a scratch database, then a full
stats computation both ways, repeated, in one run.

    .venv/bin/python benchmarks/stats_refresh.py [--sites 1000] [--days 7] [--every 60]
"""

from __future__ import annotations

import argparse
import os

from uptimelab.storage.database import connect
from uptimelab.testing.bench import bench_stats, describe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--every", type=int, default=60, help="seconds between pings")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    server = connect(os.environ.get("UPTIMELAB_DATABASE_URL"), migrate=False)
    result = bench_stats(
        server, sites=args.sites, days=args.days, every_s=args.every, repeat=args.repeat
    )
    print("\n".join(describe(result)))


if __name__ == "__main__":
    main()
