"""``uptimelab perf``: the seed's performance test, against a zoo served by another process.

Each scenario serves a realistic zoo (log-normal latency, median 150 ms; 2 % of sites never
answer; 3 % fail fast) from a separate process, so that its CPU is not counted as ours, registers
the sites in a scratch database, and runs cycles exactly as ``uptimelab collect`` does (pings
written by the writer, stats refreshed). It reports the cycle time, the ideal time
max(sum of latencies / concurrency, slowest site) from what the zoo serves, their ratio, pings per
second, CPU milliseconds per ping, peak RSS and write time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from ..collector import Collector, CycleSummary, QuietReporter
from ..config import Settings
from ..errors import UptimelabError
from ..storage.database import Database
from .bench import scratch_database

SCENARIOS = {"small": 5, "medium": 25, "large": 100}
MEMORY_STRESS_SITES = 20_000
Progress = Callable[[str], None]


@dataclass
class ScenarioResult:
    """What one scenario measured. Times in seconds, CPU in ms per ping, memory in MB."""

    name: str
    sites: int
    concurrency: int
    cycles: int
    cycle_s: float
    ideal_s: float
    ratio: float
    pings_per_s: float
    cpu_ms_per_ping: float
    peak_rss_mb: float
    write_s: float
    refresh_s: float
    stored_pings: int
    cycle_times_s: list[float] = field(default_factory=list)
    within_interval: bool | None = None


@contextlib.contextmanager
def zoo_process(
    sites: int,
    *,
    seed: int,
    lifetime_s: float,
    median_ms: float = 150.0,
    timeout_share: float = 0.02,
    fail_fast_share: float = 0.03,
) -> Iterator[list[dict[str, Any]]]:
    """Serve a realistic zoo of ``sites`` targets from a separate process; yields its targets."""
    with tempfile.TemporaryDirectory(prefix="uptimelab-perf-") as tmp:
        targets = Path(tmp) / "targets.json"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uptimelab",
                "zoo",
                "--sites",
                str(sites),
                "--no-every-failure",
                "--seed",
                str(seed),
                "--duration",
                str(int(lifetime_s)),
                "--targets-json",
                str(targets),
                "--median-ms",
                str(median_ms),
                "--timeout-share",
                str(timeout_share),
                "--fail-fast-share",
                str(fail_fast_share),
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60 + sites / 2000
            while not (targets.exists() and targets.read_text().rstrip().endswith("]")):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise UptimelabError(f"the zoo process did not start (exit code {proc.poll()})")
                time.sleep(0.05)
            yield json.loads(targets.read_text())
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def ideal_seconds(targets: list[dict[str, Any]], concurrency: int, timeout_ms: int) -> float:
    """max(sum of per-site times / concurrency, slowest site): a hanging site costs the timeout,
    a refused one nothing, any other its latency."""
    times = []
    for t in targets:
        if t["behaviour"] == "hang":
            times.append(timeout_ms / 1000)
        elif t["behaviour"] == "refused":
            times.append(0.0)
        else:
            times.append(t["latency_ms"] / 1000)
    return max(sum(times) / concurrency, max(times, default=0.0))


def register_targets(db: Database, targets: list[dict[str, Any]]) -> None:
    with db.connect() as conn, conn.cursor().copy("COPY sites (url, name) FROM STDIN") as copy:
        for t in targets:
            copy.write_row((t["url"], t["name"]))


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_scenario(
    server: Database,
    name: str,
    sites: int,
    *,
    concurrency: int,
    timeout_ms: int = 10_000,
    cycles: int = 1,
    interval_s: float | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> ScenarioResult:
    """Run ``cycles`` cycles over a zoo of ``sites``: back to back, or with ``interval_s`` on the
    collector's own fixed cadence (the sustained mode; at least 60 s)."""
    lifetime = (interval_s or 0) * cycles + timeout_ms / 1000 * (cycles + 2) + sites / 50 + 120
    with (
        zoo_process(sites, seed=seed, lifetime_s=lifetime) as targets,
        scratch_database(server) as db,
        tempfile.TemporaryDirectory(prefix="uptimelab-perf-data-") as data_dir,
    ):
        register_targets(db, targets)
        settings = Settings.load(
            database_url=db.url,
            data_dir=Path(data_dir),
            max_concurrent_pings=concurrency,
            ping_timeout_ms=timeout_ms,
            monitoring_interval_ms=max(60_000, round((interval_s or 60) * 1000)),
        )
        reporter = _Timing(progress, name)
        collector = reporter.collector = Collector(db, settings, reporter=reporter)
        cpu = time.process_time()
        started = time.perf_counter()

        async def go() -> None:
            if interval_s is not None:
                await collector.run(cycles=cycles)
                return
            async with collector.session():
                for _ in range(cycles):
                    await collector.cycle()

        trio.run(go)
        wall = time.perf_counter() - started
        cpu_s = time.process_time() - cpu
        with db.connect() as conn:
            row = conn.execute("SELECT count(*) AS n FROM pings").fetchone()
        stored = int(row["n"]) if row else 0
    pings = sites * cycles
    cycle_s = reporter.cycle_s
    ideal = ideal_seconds(targets, concurrency, timeout_ms)
    median = sorted(cycle_s)[len(cycle_s) // 2] if cycle_s else wall
    return ScenarioResult(
        name=name,
        sites=sites,
        concurrency=concurrency,
        cycles=cycles,
        cycle_s=median,
        ideal_s=ideal,
        ratio=median / ideal if ideal else float("nan"),
        pings_per_s=pings / sum(cycle_s) if cycle_s else 0.0,
        cpu_ms_per_ping=1000 * cpu_s / pings if pings else 0.0,
        peak_rss_mb=peak_rss_mb(),
        write_s=max(reporter.write_s, default=0.0),
        refresh_s=max(reporter.refresh_s, default=0.0),
        stored_pings=stored,
        cycle_times_s=cycle_s,
        within_interval=None if interval_s is None else all(c <= interval_s for c in cycle_s),
    )


class _Timing(QuietReporter):
    """Collects each cycle's duration, and tells the user as cycles end."""

    def __init__(self, progress: Progress | None, name: str) -> None:
        self.progress = progress
        self.name = name
        self.cycle_s: list[float] = []
        self.write_s: list[float] = []
        self.refresh_s: list[float] = []
        self.collector: Collector | None = None

    def cycle_finished(self, summary: CycleSummary) -> None:
        self.cycle_s.append(summary.duration_ms / 1000)
        store = self.collector.status()["store"] if self.collector else None
        if store:
            self.write_s.append(store["last_write_s"])
            self.refresh_s.append(store["last_refresh_s"])
        if self.progress:
            self.progress(
                f"{self.name}: cycle {len(self.cycle_s)} of {summary.sites_checked} sites in "
                f"{summary.duration_ms / 1000:.2f} s ({summary.stored})"
            )


def plot(results: list[ScenarioResult], path: Path) -> None:
    """Cycle time against ideal across the scenarios, as a PNG."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.subplots()
    names = [f"{r.name}\n{r.sites} sites" for r in results]
    positions = range(len(results))
    axes.bar([p - 0.2 for p in positions], [r.cycle_s for r in results], 0.4, label="cycle")
    axes.bar([p + 0.2 for p in positions], [r.ideal_s for r in results], 0.4, label="ideal")
    for p, r in zip(positions, results, strict=True):
        axes.annotate(f"{r.ratio:.2f}x", (p - 0.2, r.cycle_s), ha="center", va="bottom")
    axes.set_xticks(list(positions), names)
    axes.set_ylabel("seconds")
    axes.set_title("uptimelab cycle time against the ideal")
    axes.legend()
    figure.savefig(path, dpi=110)


def as_json(results: list[ScenarioResult]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(r) for r in results]
