"""Benchmark: how long a cycle takes against the ideal, and against a bare trio + httpx loop.

The order in which a cycle starts its pings decides its length. With 1 000 sites of log-normal
latency (median 150 ms) at concurrency 100, starting them in an arbitrary order leaves slow sites
for the end; uptimelab starts each cycle slowest first, by each site's latest stored ping.

For each repetition this script, in one run:
  1. serves a zoo of N realistic sites (no failures) from a separate process (`uptimelab zoo`),
  2. registers them in a scratch database and runs `cycles` uptimelab cycles,
  3. runs a bare trio + httpx loop (fresh connection per request, the same sliding window) over the
     same URLs, in the same slowest-first order, and in an arbitrary (shuffled) order,
and reports each against ideal = max(sum of latencies / concurrency, slowest site).

    .venv/bin/python benchmarks/cycle_order.py [--sites 1000] [--concurrency 100] [--repeat 5]

Uses UPTIMELAB_DATABASE_URL when set, else the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import trio

from uptimelab.collector import Collector
from uptimelab.config import Settings
from uptimelab.storage.database import connect
from uptimelab.testing.bench import bare_httpx_loop, scratch_database
from uptimelab.testing.perf import ideal_seconds, register_targets, zoo_process


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    server = connect(os.environ.get("UPTIMELAB_DATABASE_URL"), migrate=False)
    rows: list[dict[str, float]] = []
    for rep in range(args.repeat):
        with (
            zoo_process(
                args.sites, seed=rep, lifetime_s=900, timeout_share=0, fail_fast_share=0
            ) as targets,
            scratch_database(server) as db,
            tempfile.TemporaryDirectory() as data,
        ):
            register_targets(db, targets)
            ideal = ideal_seconds(targets, args.concurrency, 10_000)
            settings = Settings.load(
                database_url=db.url,
                data_dir=Path(data),
                max_concurrent_pings=args.concurrency,
                ping_timeout_ms=10_000,
            )
            collector = Collector(db, settings)
            times = []
            for _ in range(args.cycles):
                start = time.perf_counter()
                trio.run(collector.cycle)
                times.append(time.perf_counter() - start)
            latency = {t["url"]: t["latency_ms"] for t in targets}
            slowest_first = sorted(latency, key=latency.__getitem__, reverse=True)
            shuffled = list(latency)
            random.Random(rep).shuffle(shuffled)
            bare_same = trio.run(bare_httpx_loop, slowest_first, args.concurrency)
            bare_random = trio.run(bare_httpx_loop, shuffled, args.concurrency)
        row = {
            "ideal_s": ideal,
            "first_cycle_s": times[0],
            "later_cycle_s": statistics.median(times[1:]) if len(times) > 1 else times[0],
            "bare_same_order_s": bare_same,
            "bare_arbitrary_order_s": bare_random,
        }
        rows.append(row)
        print(
            f"run {rep + 1}: ideal {ideal:.2f} s | uptimelab cycle 1 {times[0]:.2f} s, "
            f"later {row['later_cycle_s']:.2f} s | bare same order {bare_same:.2f} s, "
            f"arbitrary order {bare_random:.2f} s",
            flush=True,
        )

    def ratio(a: str, b: str) -> list[float]:
        return [r[a] / r[b] for r in rows]

    print(f"\n{args.sites} sites, concurrency {args.concurrency}, {args.repeat} runs")
    print("uptimelab later cycles / ideal:          ", spread(ratio("later_cycle_s", "ideal_s")))
    print(
        "uptimelab later cycles - 1.15 x ideal (s):",
        spread([r["later_cycle_s"] - 1.15 * r["ideal_s"] for r in rows]),
    )
    print(
        "uptimelab later / bare same order:       ",
        spread(ratio("later_cycle_s", "bare_same_order_s")),
    )
    print("uptimelab first cycle / ideal:           ", spread(ratio("first_cycle_s", "ideal_s")))
    print(
        "bare arbitrary order / ideal:            ",
        spread(ratio("bare_arbitrary_order_s", "ideal_s")),
    )


if __name__ == "__main__":
    main()
