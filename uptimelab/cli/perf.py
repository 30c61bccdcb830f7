"""``uptimelab perf``: the seed's performance test (and the sustained 100 000-site run)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..errors import ConfigError, UptimelabError
from ..storage.database import connect
from ..testing.perf import (
    MEMORY_STRESS_SITES,
    SCENARIOS,
    ScenarioResult,
    as_json,
    plot,
    run_scenario,
)
from ._common import console, state


def perf(
    ctx: typer.Context,
    scenario: Annotated[
        list[str] | None,
        typer.Option(help="small (5 sites), medium (25), large (100); default: all three."),
    ] = None,
    sites: Annotated[int | None, typer.Option(min=1, help="A scenario of N sites.")] = None,
    memory_stress: Annotated[
        bool, typer.Option(help=f"Add the memory stress run ({MEMORY_STRESS_SITES} sites).")
    ] = False,
    concurrency: Annotated[int, typer.Option(min=1, max=1000, help="Pings in flight.")] = 10,
    timeout_ms: Annotated[int, typer.Option(min=100, help="Ping deadline, ms.")] = 10_000,
    cycles: Annotated[int, typer.Option(min=1, help="Cycles per scenario.")] = 1,
    sustained: Annotated[
        bool,
        typer.Option(help="Run --sites on the collector's cadence of --interval for --cycles."),
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between cycles (sustained).")] = 300,
    json_file: Annotated[Path | None, typer.Option("--json", help="Write results here.")] = None,
    plot_file: Annotated[
        Path | None, typer.Option("--plot", help="PNG of cycle time against ideal.")
    ] = None,
) -> None:
    """Time cycles against a zoo in another process and a scratch database; report against the
    ideal. Runs on the configured PostgreSQL server (a scratch database, dropped afterwards)."""
    server = connect(state(ctx).database_url, migrate=False)
    runs: list[tuple[str, int, int]] = []
    if sustained:
        if sites is None:
            raise ConfigError("--sustained needs --sites")
        if interval < 60:
            raise ConfigError(f"--interval={interval:g}: the interval must be at least 60 s")
    else:
        for name in scenario or ([] if sites else list(SCENARIOS)):
            if name not in SCENARIOS:
                raise ConfigError(f"--scenario={name!r}: use one of {', '.join(SCENARIOS)}")
            runs.append((name, SCENARIOS[name], concurrency))
        if sites:
            runs.append((f"{sites} sites", sites, concurrency))
        if memory_stress:
            runs.append(("memory stress", MEMORY_STRESS_SITES, max(concurrency, 200)))
    results: list[ScenarioResult] = []

    def say(line: str) -> None:
        console.print(line, markup=False)

    if sustained and sites is not None:
        results.append(
            run_scenario(
                server,
                "sustained",
                sites,
                concurrency=concurrency,
                timeout_ms=timeout_ms,
                cycles=cycles,
                interval_s=interval,
                progress=say,
            )
        )
    for name, n, conc in runs:
        results.append(
            run_scenario(
                server,
                name,
                n,
                concurrency=conc,
                timeout_ms=timeout_ms,
                cycles=cycles,
                progress=say,
            )
        )
    table = Table(
        "scenario",
        "sites",
        "conc",
        "cycle s",
        "ideal s",
        "ratio",
        "pings/s",
        "CPU ms/ping",
        "peak RSS MB",
        "write s",
        "stored",
        box=None,
    )
    for r in results:
        table.add_row(
            r.name,
            str(r.sites),
            str(r.concurrency),
            f"{r.cycle_s:.2f}",
            f"{r.ideal_s:.2f}",
            f"{r.ratio:.2f}",
            f"{r.pings_per_s:.0f}",
            f"{r.cpu_ms_per_ping:.3f}",
            f"{r.peak_rss_mb:.0f}",
            f"{r.write_s:.3f}",
            f"{r.stored_pings}",
        )
    console.print(table)
    if sustained and results:
        r = results[0]
        verdict = "every cycle within the interval" if r.within_interval else "OVERRAN"
        console.print(
            f"sustained: {r.cycles} cycles of {r.sites} sites every {interval:g} s: {verdict}; "
            f"{r.stored_pings} of {r.sites * r.cycles} pings stored; longest refresh "
            f"{r.refresh_s:.2f} s",
            markup=False,
        )
    if json_file is not None:
        with _written("--json", json_file):
            json_file.write_text(json.dumps(as_json(results), indent=1))
    if plot_file is not None:
        with _written("--plot", plot_file):
            plot(results, plot_file)


@contextlib.contextmanager
def _written(flag: str, path: Path) -> Iterator[None]:
    """An OSError writing ``path`` as one line: the environment failed (exit 1)."""
    try:
        yield
    except OSError as exc:
        raise UptimelabError(f"{flag}={path}: cannot write it: {exc.strerror or exc}") from exc
