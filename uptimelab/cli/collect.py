"""``uptimelab collect``: the collector, on its schedule, once, or as a dry run."""

from __future__ import annotations

import sys
import uuid
from typing import Annotated

import trio
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ..collector import Collector, CycleSummary, run_until_signal
from ..config import Settings
from ..domain.pings import PingResult
from ..domain.redaction import redact
from ..domain.sites import Probeable
from ..storage.database import connect
from ..storage.models import Site
from ._common import console, setting_option, state


class PlainReporter:
    """Lines for logs and pipes: one when a cycle starts, one when it ends."""

    def __init__(self, *, each_ping: bool = False) -> None:
        self.each_ping = each_ping

    def cycle_started(self, number: int, sites: int | None) -> None:
        console.print(f"cycle {number}: {probing(sites)}", markup=False)

    def ping_done(self, site: Probeable, ping: PingResult) -> None:
        if self.each_ping:
            console.print(ping_line(site, ping), markup=False, soft_wrap=True)

    def cycle_finished(self, summary: CycleSummary) -> None:
        console.print(summary_line(summary), markup=False, soft_wrap=True)

    def note(self, message: str) -> None:
        console.print(message, markup=False, soft_wrap=True)


class ProgressReporter(PlainReporter):
    """A progress bar per cycle, for a terminal."""

    def __init__(self, *, each_ping: bool = False) -> None:
        super().__init__(each_ping=each_ping)
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def cycle_started(self, number: int, sites: int | None) -> None:
        self._progress = Progress(
            TextColumn(f"cycle {number}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[down]} down"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("probing", total=sites, down=0)

    def ping_done(self, site: Probeable, ping: PingResult) -> None:
        if self._progress is not None and self._task is not None:
            task = self._progress.tasks[0]
            down = int(task.fields["down"]) + (ping.status == "down")
            self._progress.update(self._task, advance=1, down=down)
        if self.each_ping:
            console.print(ping_line(site, ping), markup=False, soft_wrap=True)

    def cycle_finished(self, summary: CycleSummary) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        super().cycle_finished(summary)


def probing(sites: int | None) -> str:
    """What a cycle is about to probe: ``sites`` as the collector knows them at its start."""
    if sites is None:
        return "probing the sites this collector will hold (none yet: they are being shared out)"
    return f"probing {sites} site(s)"


def reporter_for_terminal(*, each_ping: bool = False) -> PlainReporter:
    """A progress bar on a terminal, plain lines otherwise."""
    if sys.stdout.isatty() and console.is_terminal:
        return ProgressReporter(each_ping=each_ping)
    return PlainReporter(each_ping=each_ping)


def ping_line(site: Probeable, ping: PingResult) -> str:
    code = ping.status_code if ping.status_code is not None else "-"
    why = f"  {ping.error_category}: {ping.error_message}" if ping.error_category else ""
    return f"{ping.status:4} {code!s:>3} {ping.response_time_ms:>6} ms  {redact(site.url)}{why}"


def summary_line(summary: CycleSummary) -> str:
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(summary.by_category.items()))
    stored = outcome_text(summary)
    extra = f"; {summary.error}" if summary.error else ""
    pings = summary.up + summary.down
    # A round of the schedule may probe a site more than once (its own interval is shorter).
    counted = "" if pings == summary.sites_checked else f" in {pings} pings"
    return (
        f"cycle done in {summary.duration_ms / 1000:.2f} s: {summary.sites_checked} site(s)"
        f"{counted}, {summary.up} up, {summary.down} down{' (' + kinds + ')' if kinds else ''}; "
        f"{stored}{extra}"
    )


def outcome_text(summary: CycleSummary) -> str:
    """Where the cycle's pings went, as it happened: "spooled" is not "stored"."""
    if summary.dry_run:
        return "dry run, nothing stored"
    orphans = f" ({summary.orphans} of deleted sites dropped)" if summary.orphans else ""
    waiting = (
        f"; {summary.spool_waiting} cycle(s) wait in the spool" if summary.spool_waiting else ""
    )
    if summary.stored == "spooled" and not summary.spool_waiting:
        # Spooled while the database was away, and the spool is empty at the end: replayed.
        return f"stored (spooled while the database was unavailable, replayed since){orphans}"
    text = {
        "stored": "stored",
        "spooled": "spooled: the database is unavailable, they will be stored when it is back",
        "dropped": "DROPPED: the spool is full, these pings are lost",
        "quarantined": "quarantined: the database refused them (see `uptimelab health`)",
    }.get(summary.stored or "", "not stored")
    if summary.stored_pings:  # a round that the database left during it
        text = f"{summary.stored_pings} stored, the rest {text}"
    return f"{text}{orphans}{waiting}"


def cycle_failed(collector: Collector, *, dry_run: bool) -> bool:
    """Whether a one-off cycle failed: a collector fault always; and for a real run, any ping
    that is not in the database (spooled, dropped, quarantined, of a deleted site)."""
    summary = collector.last_summary
    if collector.cycles_failed or summary is None or summary.faults:
        return True
    return not dry_run and (summary.stored != "stored" or summary.orphans > 0)


def results_table(summary: CycleSummary, sites: dict[uuid.UUID, Site]) -> Table:
    table = Table("status", "code", "ms", "url", "category", "message", box=None)
    for ping in sorted(summary.pings, key=lambda p: sites[p.site_id].url):
        table.add_row(
            ping.status,
            "" if ping.status_code is None else str(ping.status_code),
            str(ping.response_time_ms),
            redact(sites[ping.site_id].url),
            ping.error_category or "",
            ping.error_message or "",
        )
    return table


def collect(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Run one cycle, print a summary, exit.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Run one cycle, print each result, store nothing.")
    ] = False,
    monitoring_interval_ms: Annotated[int | None, setting_option("monitoring_interval_ms")] = None,
    ping_timeout_ms: Annotated[int | None, setting_option("ping_timeout_ms")] = None,
    monitoring_location: Annotated[str | None, setting_option("monitoring_location")] = None,
    monitoring_region_code: Annotated[str | None, setting_option("monitoring_region_code")] = None,
    max_concurrent_pings: Annotated[int | None, setting_option("max_concurrent_pings")] = None,
) -> None:
    """Ping every active site on a schedule until SIGINT or SIGTERM, and store every ping.

    With --once the exit code is 0 when every ping was stored, 1 when any was not (spooled,
    dropped, quarantined) or the collector failed; a down site is not a failure. A dry run
    exits 1 only when the collector failed."""
    settings = Settings.load(
        database_url=state(ctx).database_url,
        monitoring_interval_ms=monitoring_interval_ms,
        ping_timeout_ms=ping_timeout_ms,
        monitoring_location=monitoring_location,
        monitoring_region_code=monitoring_region_code,
        max_concurrent_pings=max_concurrent_pings,
    )
    # Not migrated here: the writer reaches the database (and migrates) when it opens, and a
    # collector that knows its sites goes on, spooling, while the database is down.
    db = connect(state(ctx).database_url, migrate=False)
    reporter = reporter_for_terminal()
    collector = Collector(db, settings, reporter=reporter)
    cycles = 1 if (once or dry_run) else None
    trio.run(lambda: run_until_signal(collector, cycles=cycles, dry_run=dry_run))
    left = collector.notifier.left_pending if collector.notifier is not None else None
    if left:
        console.print(
            f"notifications: {left} still pending (not delivered in time): the next run sends them",
            markup=False,
            soft_wrap=True,
        )
    if dry_run and collector.last_summary is not None:
        by_id = {s.id: s for s in _sites(ctx)}
        console.print(results_table(collector.last_summary, by_id))
    if (once or dry_run) and cycle_failed(collector, dry_run=dry_run):
        raise typer.Exit(1)


def _sites(ctx: typer.Context) -> list[Site]:
    from ..storage.sites import list_sites

    return list_sites(db=state(ctx).db())
