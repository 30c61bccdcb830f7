"""``uptimelab bench``: benchmarks run on demand against a scratch database."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import Progress

from ..storage.database import connect
from ..testing.bench import bench_stats, describe
from ._common import console, interval_option, state

app = typer.Typer(help="Benchmarks, run on demand (never part of the tests).", no_args_is_help=True)


@app.command("stats")
def stats(
    ctx: typer.Context,
    sites: Annotated[int, typer.Option(min=1, help="Sites in the synthetic history.")] = 1000,
    days: Annotated[int, typer.Option(min=1, max=60, help="Days of history.")] = 7,
    every: Annotated[str, typer.Option(help="Ping interval of the history (60s, 5m).")] = "60s",
    repeat: Annotated[int, typer.Option(min=1, help="Repetitions of each timing.")] = 5,
) -> None:
    """Write a synthetic history through the writer, then time the stats both ways.

    Runs in a scratch database on the configured server (dropped afterwards).
    """
    every_s = int(interval_option(every, "--every").total_seconds())
    # Connect without migrating: the benchmark works in a scratch database of its own.
    server = connect(state(ctx).database_url, migrate=False)
    with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("writing the history (days)", total=days + 1)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = bench_stats(
            server, sites=sites, days=days, every_s=every_s, repeat=repeat, progress=advance
        )
    for line in describe(result):
        console.print(line, markup=False, soft_wrap=True)
    if not result.agree:
        raise typer.Exit(1)
