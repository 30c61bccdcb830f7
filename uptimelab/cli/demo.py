"""``uptimelab demo``: a zoo, three cycles with progress, and a table of what was found."""

from __future__ import annotations

from typing import Annotated

import trio
import typer
from rich.table import Table

from ..demo import run_demo
from ..site_stats import site_stats
from ..sites import list_sites
from ._common import console, state
from .collect import reporter_for_terminal
from .stats import Format, print_stats


def demo(
    ctx: typer.Context,
    cycles: Annotated[int, typer.Option(min=1, max=20, help="Cycles to run.")] = 3,
    sites: Annotated[
        int, typer.Option(min=0, max=2000, help="Realistic sites, besides one per failure mode.")
    ] = 40,
) -> None:
    """Watch a simulated fleet of about fifty sites for three cycles, offline."""
    db = state(ctx).db()
    where = "the embedded PostgreSQL" if db.embedded else db.masked_url
    console.print(
        f"uptimelab demo: {sites} simulated sites plus one per failure mode; data in {where}"
    )
    reporter = reporter_for_terminal()
    rows = trio.run(lambda: run_demo(db, cycles=cycles, sites=sites, reporter=reporter))
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
