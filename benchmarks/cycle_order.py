"""Benchmark: how long a cycle takes against the ideal, and against a bare trio + httpx loop.

The order in which a cycle starts its pings decides its length. With 1 000 sites of log-normal
latency (median 150 ms) at concurrency 100, starting them in an arbitrary order leaves slow sites
for the end; uptimelab starts each cycle slowest first, by each site's latest stored ping.

For each repetition this script, in one run:
  1. serves a zoo of N realistic sites (no failures) from a separate process (`uptimelab zoo`),
  2. registers them in a fresh database and runs `cycles` uptimelab cycles,
  3. runs a bare trio + httpx loop (fresh connection per request, the same sliding window) over the
     same URLs, in the same slowest-first order, and in an arbitrary (shuffled) order,
and reports each against ideal = max(sum of latencies / concurrency, slowest site).

    .venv/bin/python benchmarks/cycle_order.py [--sites 1000] [--concurrency 100] [--repeat 5]

Uses UPTIMELAB_DATABASE_URL when set, else the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import trio

from uptimelab.collector import Collector
from uptimelab.config import Settings
from uptimelab.db import Database, connect
from uptimelab.sites import SiteSpec, upsert_sites


def start_zoo(
    sites: int, seed: int, where: Path
) -> tuple[subprocess.Popen[bytes], list[dict[str, Any]]]:
    targets = where / "targets.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uptimelab",
            "zoo",
            "--sites",
            str(sites),
            "--median-ms",
            "150",
            "--timeout-share",
            "0",
            "--fail-fast-share",
            "0",
            "--no-every-failure",
            "--seed",
            str(seed),
            "--duration",
            "900",
            "--targets-json",
            str(targets),
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not targets.exists() or not targets.read_text().endswith("]"):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("the zoo did not start")
        time.sleep(0.1)
    return proc, json.loads(targets.read_text())


def fresh_database() -> tuple[Database, str, str]:
    """A new database on the configured server (or the embedded one) and its admin URL."""
    admin = connect(os.environ.get("UPTIMELAB_DATABASE_URL"), migrate=False)
    name = f"uptimelab_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    from urllib.parse import urlsplit, urlunsplit

    url = urlunsplit(urlsplit(admin.url)._replace(path="/" + name))
    return connect(url), admin.url, name


async def bare_loop(urls: list[str], concurrency: int) -> float:
    """A bare trio + httpx sliding window: fresh connection per request, body read."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        queue = iter(urls)

        async def worker() -> None:
            for url in queue:
                response = await client.get(url)
                response.read()

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
        return trio.current_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    rows: list[dict[str, float]] = []
    for rep in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            zoo, targets = start_zoo(args.sites, seed=rep, where=Path(tmp))
            db, admin_url, name = fresh_database()
            try:
                latency = {t["url"]: t["latency_ms"] / 1000 for t in targets}
                ideal = max(sum(latency.values()) / args.concurrency, max(latency.values()))
                upsert_sites(
                    [
                        (SiteSpec(url=t["url"], name=t["name"]), frozenset({"url", "name"}))
                        for t in targets
                    ],
                    db=db,
                )
                settings = Settings.load(
                    database_url=db.url,
                    max_concurrent_pings=args.concurrency,
                    ping_timeout_ms=10_000,
                    monitoring_interval_ms=300_000,
                )
                collector = Collector(db, settings)
                times = []
                for _ in range(args.cycles):
                    start = time.perf_counter()
                    trio.run(collector.cycle)
                    times.append(time.perf_counter() - start)
                slowest_first = sorted(latency, key=latency.__getitem__, reverse=True)
                shuffled = list(latency)
                random.Random(rep).shuffle(shuffled)
                bare_same = trio.run(bare_loop, slowest_first, args.concurrency)
                bare_random = trio.run(bare_loop, shuffled, args.concurrency)
            finally:
                zoo.send_signal(signal.SIGINT)
                zoo.wait(30)
                db.close()
                with psycopg.connect(admin_url, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
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

    def spread(values: list[float]) -> str:
        return (
            f"median {statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"
        )

    print(f"\n{args.sites} sites, concurrency {args.concurrency}, {args.repeat} runs")
    later = [r["later_cycle_s"] for r in rows]
    print(
        "uptimelab later cycles / ideal:          ",
        spread([r["later_cycle_s"] / r["ideal_s"] for r in rows]),
    )
    print(
        "uptimelab later cycles - 1.15 x ideal (s):",
        spread([r["later_cycle_s"] - 1.15 * r["ideal_s"] for r in rows]),
    )
    print(
        "uptimelab later / bare same order:       ",
        spread([r["later_cycle_s"] / r["bare_same_order_s"] for r in rows]),
    )
    print(
        "uptimelab first cycle / ideal:           ",
        spread([r["first_cycle_s"] / r["ideal_s"] for r in rows]),
    )
    print(
        "bare arbitrary order / ideal:            ",
        spread([r["bare_arbitrary_order_s"] / r["ideal_s"] for r in rows]),
    )
    print("later cycle seconds:                     ", spread(later))


if __name__ == "__main__":
    main()
