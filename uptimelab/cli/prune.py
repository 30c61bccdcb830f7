"""``uptimelab prune``: old daily partitions of pings into the Parquet archive, or dropped."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from ..errors import ConfigError
from ..storage.retention import PruneResult, check_keep
from ..storage.retention import prune as run_prune
from ._common import console, duration_option, err_console, path_text, state


@contextlib.contextmanager
def day_progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr (shown on a terminal, gone when done), and its callback.

    Not on a pipe or a file: there a stopped bar leaves a blank line before any error line."""
    if not err_console.is_terminal:
        yield lambda done, total: None
        return
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance


def prune(
    ctx: typer.Context,
    keep: Annotated[
        str,
        typer.Option(
            help="Keep this much history in the database (90d, 12w); at least 8d. Whole UTC days "
            "older than that go.",
            show_default=False,
        ),
    ],
    archive: Annotated[
        Path | None,
        typer.Option(
            parser=path_text,
            help="Write each day to DIR/pings/date=YYYY-MM-DD/part-N.parquet and verify it "
            "before its partition is dropped (no question asked). Without it the days are "
            "dropped for good, after a confirmation.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the days that would go; change nothing.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Drop without --archive without asking.")
    ] = False,
) -> None:
    """Prune pings older than --keep: each whole UTC day is archived to Parquet and verified,
    then its partition is dropped.

    Verified: the file's row count and a checksum of its keys match the partition's.
    Dropped: DETACH PARTITION and DROP TABLE, never DELETE; the hourly rollups stay.
    Crash-safe: run it again after a kill and it resumes; no day is lost or archived twice."""
    span = duration_option(keep, "--keep")
    try:
        check_keep(span)
    except ConfigError as exc:
        # The library speaks of the value in days (keep=0.333333d); echo what was typed.
        raise ConfigError(f"--keep={keep!r}: {str(exc).partition(': ')[2]}") from None
    if archive is not None:
        archive = archive.expanduser().absolute()
        if archive.exists() and not archive.is_dir():
            raise ConfigError(f"--archive={archive}: is a file, not a directory")
    db = state(ctx).db()
    if dry_run:
        _print(run_prune(span, archive=archive, dry_run=True, db=db), archive)
        return
    if archive is None and not yes:
        if not sys.stdin.isatty():
            raise ConfigError(
                "--archive not given: the pings would be dropped for good; "
                "pass --yes to drop them without asking, or --archive DIR"
            )
        plan = run_prune(span, archive=None, dry_run=True, db=db)
        pings = sum(d.pings for d in plan.planned)
        if not plan.planned:
            console.print(f"nothing to prune before {plan.cutoff:%Y-%m-%d %H:%M} UTC")
            return
        if not typer.confirm(
            f"Drop {len(plan.planned)} day(s) of pings ({pings} pings) without archiving them?"
        ):
            err_console.print("nothing dropped")
            raise typer.Exit(1)
    with day_progress("pruning (days)") as progress:
        result = run_prune(span, archive=archive, db=db, progress=progress)
    _print(result, archive)


def _print(result: PruneResult, archive: Path | None) -> None:
    out = console.print
    cutoff = f"{result.cutoff:%Y-%m-%d %H:%M} UTC"
    if result.default_days_moved:
        out(f"moved {result.default_days_moved} day(s) out of pings_default into day partitions")
    if result.dry_run:
        pings = sum(d.pings for d in result.planned)
        out(
            f"would prune {len(result.planned)} day(s) before {cutoff}, {pings} pings",
            soft_wrap=True,
        )
        for day in result.planned:
            out(f"  {day.day.isoformat()}  {day.pings} pings  ({day.partition})", soft_wrap=True)
        return
    if not result.pruned:
        out(f"nothing to prune before {cutoff}")
        return
    first, last = result.pruned[0].day, result.pruned[-1].day
    where = f"archived to {archive / 'pings'}" if archive else "dropped unarchived"
    out(
        f"pruned {len(result.pruned)} day(s) ({first} to {last}) before {cutoff}: "
        f"{result.pings} pings {where}",
        soft_wrap=True,
    )
