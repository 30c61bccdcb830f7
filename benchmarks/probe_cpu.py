"""Benchmark: CPU per ping of a collector cycle against a bare trio + httpx loop.

A zoo of N sites (log-normal latency, median 20 ms, no failures) is served by another process.
In one run, alternating, for `--repeat` rounds: a full uptimelab cycle (sites read from a scratch
database, pings probed, written and stats refreshed) with the lean engine and with the httpx
engine, and a bare trio + httpx loop fetching the same URLs with the same concurrency (fresh
connection per request, body read). CPU is this process's time (all threads). The fixed cost of
a cycle (a cycle over 1 site, same setup) is subtracted before dividing by N.

    .venv/bin/python benchmarks/probe_cpu.py [--sites 5000] [--concurrency 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import trio

from uptimelab.collector import Collector
from uptimelab.config import Settings
from uptimelab.storage.database import connect
from uptimelab.testing.bench import bare_httpx_loop, scratch_database
from uptimelab.testing.perf import register_targets, zoo_process


def cpu_of(fn: object) -> float:
    start = time.process_time()
    trio.run(fn)  # type: ignore[arg-type]
    return time.process_time() - start


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    server = connect(os.environ.get("UPTIMELAB_DATABASE_URL"), migrate=False)
    per_ping: dict[str, list[float]] = {"lean": [], "httpx": [], "bare": []}
    with (
        zoo_process(
            args.sites, seed=1, lifetime_s=3600, median_ms=20, timeout_share=0, fail_fast_share=0
        ) as targets,
        scratch_database(server) as db,
        scratch_database(server) as tiny_db,
        tempfile.TemporaryDirectory() as data,
    ):
        register_targets(db, targets)
        register_targets(tiny_db, targets[:1])
        urls = [t["url"] for t in targets]

        def collector(database: object, engine: str) -> Collector:
            settings = Settings.load(
                database_url=database.url,  # type: ignore[attr-defined]
                data_dir=Path(data),
                max_concurrent_pings=args.concurrency,
                probe_engine=engine,
            )
            return Collector(database, settings)  # type: ignore[arg-type]

        for _ in range(args.repeat):
            for engine in ("lean", "httpx"):
                fixed = cpu_of(collector(tiny_db, engine).cycle)
                total = cpu_of(collector(db, engine).cycle)
                per_ping[engine].append(1000 * (total - fixed) / (args.sites - 1))
            per_ping["bare"].append(
                1000 * cpu_of(lambda: bare_httpx_loop(urls, args.concurrency)) / args.sites
            )
    print(f"{args.sites} sites, concurrency {args.concurrency}, {args.repeat} rounds")
    for name, values in per_ping.items():
        print(f"CPU ms per ping, {name + ':':7} {spread(values)}")
    for engine in ("lean", "httpx"):
        ratios = [a / b for a, b in zip(per_ping[engine], per_ping["bare"], strict=True)]
        print(f"uptimelab ({engine}) / bare httpx loop: {spread(ratios)}")


if __name__ == "__main__":
    main()
