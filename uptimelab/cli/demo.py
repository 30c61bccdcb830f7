"""``uptimelab demo``: a zoo, three cycles with progress, and a table of what was found; or, with
``--history 7d``, a synthetic week written in seconds for the notebooks and the report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import trio
import typer
from rich.table import Table

from ..storage.site_stats import site_stats
from ..storage.sites import list_sites
from ..testing.demo import run_demo
from ._common import Format, console, flag_errors, state
from .collect import reporter_for_terminal
from .stats import print_stats

if TYPE_CHECKING:
    from ..testing.history import HistorySummary

ZOO_SITES = 40
HISTORY_SITES = 50


def demo(
    ctx: typer.Context,
    cycles: Annotated[int, typer.Option(min=1, max=20, help="Cycles to run.")] = 3,
    sites: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=2000,
            show_default=False,
            help=f"Realistic sites besides one per failure mode ({ZOO_SITES} by default); with "
            f"--history, the history's sites (8 or more, {HISTORY_SITES} by default).",
        ),
    ] = None,
    history: Annotated[
        str | None,
        typer.Option(
            help="Instead of the zoo, write a synthetic history this long (1d to 90d, e.g. 7d) "
            "ending now, then refresh the stats.",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random draws: same seed, same data.")] = 7,
    every: Annotated[
        str, typer.Option(help="With --history: the interval between cycles (60s to 1h).")
    ] = "5m",
) -> None:
    """Watch a simulated fleet of about fifty sites for three cycles, offline; or write a week."""
    db = state(ctx).db()
    where = "the embedded PostgreSQL" if db.embedded else db.masked_url
    if history is not None:
        from ..testing.history import write_history

        count = HISTORY_SITES if sites is None else sites
        with flag_errors("--sites", "--history", "--every"):
            summary = write_history(db, history, sites=count, seed=seed, every=every)
        print_history(summary, where)
        return
    count = ZOO_SITES if sites is None else sites
    console.print(
        f"uptimelab demo: {count} simulated sites plus one per failure mode; data in {where}"
    )
    reporter = reporter_for_terminal()
    rows = trio.run(lambda: run_demo(db, cycles=cycles, sites=count, seed=seed, reporter=reporter))
    sites_by_id = {s.id: s for s in list_sites(db=db)}
    table = Table("site", "status", "code", "last ms", "error category", box=None)
    for r in rows:
        table.add_row(
            r["name"],
            r["status"] or "-",
            "" if r["status_code"] is None else str(r["status_code"]),
            "" if r["response_time_ms"] is None else str(r["response_time_ms"]),
            r["error_category"] or "",
            style="red" if r["status"] == "down" else None,
        )
    console.print(table)
    demo_urls = {r["url"] for r in rows}
    stats = [
        s
        for s in site_stats(sort="uptime_24h", db=db)
        if s.site_id in sites_by_id and sites_by_id[s.site_id].url in demo_urls
    ]
    console.print("\nsite_stats after the demo's cycles (uptimelab stats):")
    print_stats(stats, Format.table, sites_by_id)
    up = sum(r["status"] == "up" for r in rows)
    console.print(
        f"{up} of {len(rows)} sites up. The demo's sites are disabled now that their zoo is gone; "
        "try `uptimelab sites list` or `uptimelab collect --dry-run` on your own sites."
    )


def print_history(summary: HistorySummary, where: str) -> None:
    """What the history holds, one planted event a line."""
    fmt = "%m-%d %H:%M"
    console.print(
        f"uptimelab demo: wrote a synthetic history to {where}: {summary.pings:,} pings and "
        f"{summary.cycles:,} cycles of {summary.sites} sites, {summary.start.strftime(fmt)} to "
        f"{summary.end.strftime(fmt)} UTC, in {summary.write_s:.1f} s; site_stats refreshed."
    )
    table = Table("planted", "site", "cause", "UTC", box=None)
    for event in summary.incidents:
        until = "now" if event.ended_at is None else event.ended_at.strftime(fmt)
        table.add_row(
            event.kind.replace("_", " "),
            event.site or "(collector)",
            event.cause + (f" ({event.category})" if event.category else ""),
            f"{event.started_at.strftime(fmt)} to {until}",
        )
    console.print(table)
    console.print(
        "The history's sites are registered inactive (their .example URLs cannot be pinged). "
        "Next: the notebooks in notebooks/, or `uptimelab report --out report.html`."
    )
