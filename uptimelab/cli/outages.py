"""``uptimelab outages``: maximal runs of down pings per site."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ..domain.redaction import redact
from ..storage.sites import get_site, list_sites
from ..text import span
from ._common import Format, FormatOption, console, duration_option, state

if TYPE_CHECKING:
    import pandas as pd


def outages(
    ctx: typer.Context,
    site: Annotated[str | None, typer.Option(help="Only this site (id or URL).")] = None,
    since: Annotated[str, typer.Option(help="How far back: 90m, 24h, 7d, 4w.")] = "7d",
    format: FormatOption = Format.table,
) -> None:
    """List outages: runs of consecutive down pings, all locations merged, newest first."""
    import pandas as pd  # here, so that other commands start without pandas

    from ..analytics.loaders import load_outages

    db = state(ctx).db()
    window = duration_option(since, "--since")
    only = None if site is None else [get_site(site, db=db).id]
    found = load_outages(db, since=window, sites=only)
    names = {str(s.id): s.name or redact(s.url) for s in list_sites(db=db)}
    found = found.sort_values("started_at", ascending=False)
    found.insert(1, "site", [names.get(str(s), str(s)) for s in found["site_id"]])
    if format is Format.json:
        typer.echo(found.to_json(orient="records", date_format="iso", indent=1))
        return
    if format is Format.csv:
        from ..report.export import CSV_LINE_END, csv_safe

        typer.echo(csv_safe(found).to_csv(index=False, lineterminator=CSV_LINE_END), nl=False)
        return
    table = Table(
        "site", "started (UTC)", "ended", "duration", "pings down", "first error", box=None
    )
    for row in found.to_dict("records"):
        ended = "ongoing" if pd.isna(row["ended_at"]) else _when(row["ended_at"])
        duration = "" if pd.isna(row["duration"]) else span(row["duration"])
        table.add_row(
            row["site"],
            _when(row["started_at"]),
            ended,
            duration,
            str(row["pings_down"]),
            str(row["first_error_category"] or ""),
            style="red" if ended == "ongoing" else None,
        )
    console.print(table)
    console.print(f"{len(found)} outage(s) in the last {since}")


def _when(at: pd.Timestamp) -> str:
    return at.tz_convert(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
