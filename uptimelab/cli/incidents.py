"""``uptimelab incidents``: confirmed outages per site and location, newest first."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ..domain.redaction import redact
from ..storage.incidents import Incident, list_incidents
from ..text import span
from ._common import Format, FormatOption, console, duration_option, state

QUORUM = "(quorum)"
"""How the location of an incident of the quorum verdict is shown."""


def incidents(
    ctx: typer.Context,
    open_only: Annotated[
        bool, typer.Option("--open", help="Only incidents still lasting.")
    ] = False,
    site: Annotated[str | None, typer.Option(help="Only this site (id or URL).")] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only incidents lasting within this long before now: 90m, 24h, 7d, 4w "
            "(default: all).",
            show_default=False,
        ),
    ] = None,
    format: FormatOption = Format.table,
) -> None:
    """List incidents: confirmed outages (down_after down pings in a row) of each location and
    of the quorum verdict, newest first."""
    window = None if since is None else duration_option(since, "--since")
    found = list_incidents(
        open_only=open_only,
        site=site,
        since=None if window is None else dt.datetime.now(dt.UTC) - window,
        db=state(ctx).db(),
    )
    records = [_record(i) for i in found]
    if format is Format.json:
        typer.echo(json.dumps(records, indent=1))
        return
    if format is Format.csv:
        from ..report.export import CSV_LINE_END

        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(_FIELDS), lineterminator=CSV_LINE_END)
        writer.writeheader()
        writer.writerows(records)
        typer.echo(out.getvalue(), nl=False)
        return
    table = Table(
        "id", "site", "location", "started (UTC)", "confirmed", "resolved", "lasted", "pings down",
        "first error", box=None,
    )  # fmt: skip
    for i in found:
        table.add_row(
            str(i.id),
            Text(i.site_name or str(i.site_id)),
            Text(i.location or QUORUM),
            _when(i.started_at),
            _when(i.confirmed_at),
            "ongoing" if i.resolved_at is None else _when(i.resolved_at),
            "" if i.duration is None else span(i.duration),
            str(i.down_pings),
            Text(i.category or ""),
            style="red" if i.resolved_at is None else None,
        )
    console.print(table)
    scope = f" lasting within the last {since}" if since else ""
    console.print(f"{len(found)} {'open ' if open_only else ''}incident(s){scope}")


_FIELDS = (
    "id", "site_id", "site", "location", "started_at", "confirmed_at", "resolved_at",
    "duration_s", "down_pings", "category", "message",
)  # fmt: skip


def _record(i: Incident) -> dict[str, Any]:
    """One incident as JSON or CSV shows it (times in ISO 8601 UTC, the message redacted)."""
    return {
        "id": i.id,
        "site_id": str(i.site_id),
        "site": i.site_name,
        "location": i.location,
        "started_at": _iso(i.started_at),
        "confirmed_at": _iso(i.confirmed_at),
        "resolved_at": None if i.resolved_at is None else _iso(i.resolved_at),
        "duration_s": None if i.duration is None else i.duration.total_seconds(),
        "down_pings": i.down_pings,
        "category": i.category,
        "message": None if i.message is None else redact(i.message),
    }


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _when(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
