"""``uptimelab report``: the notebooks' content as one self-contained HTML file, or the period's
pings, outages and stats as CSV or Parquet files."""

from __future__ import annotations

import enum
import time
from pathlib import Path
from typing import Annotated

import typer

from ._common import console, duration_option, flag_errors, path_text, state


class ReportFormat(enum.StrEnum):
    html = "html"
    csv = "csv"
    parquet = "parquet"


def report(
    ctx: typer.Context,
    out: Annotated[
        Path,
        typer.Option(
            parser=path_text,
            help="The HTML file to write; with --format csv or parquet, the directory.",
            show_default=False,
        ),
    ],
    since: Annotated[str, typer.Option(help="How far back: 24h, 7d, 30d, 4w.")] = "30d",
    format: Annotated[
        ReportFormat,
        typer.Option(help="html: one file, plots embedded; csv or parquet: pings, outages, stats."),
    ] = ReportFormat.html,
    target: Annotated[
        float, typer.Option(help="The SLA's uptime target in percent.", min=0, max=100)
    ] = 99.9,
) -> None:
    """Write a report of the last --since: fleet, uptime, latency, outages, SLA, collector."""
    from ..report import write_report

    duration_option(since, "--since")  # checked here too: the library takes the text
    started = time.perf_counter()
    with flag_errors("--out", "--since", "--format", "--target"):
        written = write_report(
            out, since=since, format=format.value, target=target, db=state(ctx).db()
        )
    elapsed = time.perf_counter() - started
    for path in written:
        console.print(f"wrote {path} ({_size(path.stat().st_size)})", markup=False)
    console.print(f"in {elapsed:.1f} s")


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024**2:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024**2:.1f} MiB"
