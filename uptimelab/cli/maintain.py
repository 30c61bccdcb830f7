"""``uptimelab maintain``: partitions ahead, prune by RETENTION_DAYS, refresh stats."""

from __future__ import annotations

from typing import Annotated

import typer

from ..config import Settings
from ..errors import UptimelabError
from ..ops.maintain import maintain as run_maintain
from ..ops.maintain import maintain_every
from ..storage.maintenance import MaintenanceReport
from ._common import console, err_console, interval_option, state
from .prune import day_progress


def maintain(
    ctx: typer.Context,
    every: Annotated[
        str | None,
        typer.Option(
            help="Run again every so long (1h, 30m) until interrupted; default: once.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the regular tasks, one line each: partitions ahead, prune by RETENTION_DAYS, stats.

    partitions: makes the daily partitions of today and the 7 days after it.
    prune: pings older than RETENTION_DAYS (unset: none) go to ARCHIVE_DIR.
    Without ARCHIVE_DIR they are dropped only when RETENTION_DROP_UNARCHIVED=true.
    stats: refreshes site_stats and the planner's statistics of the recent partitions.
    One run at a time per database (an advisory lock), however many collectors or cron jobs ask."""
    interval = None if every is None else interval_option(every, "--every")
    settings = Settings.load()
    db = state(ctx).db()
    if interval is None:
        with day_progress("pruning (days)") as progress:
            report = run_maintain(db=db, settings=settings, progress=progress)
        _print(report)
        return
    maintain_every(
        interval,
        db=db,
        settings=settings,
        on_report=_print,
        on_error=_failed,
    )


def _print(report: MaintenanceReport) -> None:
    for line in report.lines:
        console.print(line, markup=False, soft_wrap=True)


def _failed(exc: UptimelabError) -> None:
    err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
