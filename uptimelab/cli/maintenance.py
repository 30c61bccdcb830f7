"""``uptimelab maintenance``: windows during which notifications are suppressed."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ..domain.maintenance import MaintenanceError, MaintenanceWindow
from ..storage import maintenance_windows as lib
from ..storage.models import Site
from ..text import span
from ._common import console, site_label, sites_by_id, state

app = typer.Typer(
    help="Maintenance windows: pings go on and incidents are recorded, notifications are "
    "suppressed, and stats may leave them out.",
    no_args_is_help=True,
)

_TIME_HELP = "ISO 8601, e.g. 2026-12-01T03:00Z (no zone: UTC)."


@app.command("add")
def add(
    ctx: typer.Context,
    site: Annotated[
        str | None, typer.Option(help="The site (id or URL); default: every site.")
    ] = None,
    starts_at: Annotated[
        str | None,
        typer.Option(help=f"When the window (or its recurrence) starts; default now. {_TIME_HELP}"),
    ] = None,
    ends_at: Annotated[
        str | None,
        typer.Option(
            help=f"When a one-off window ends, or a recurring one opens no more. {_TIME_HELP}"
        ),
    ] = None,
    cron: Annotated[
        str | None,
        typer.Option(
            help="Recurring: open at each time this five-field cron expression names, in UTC, "
            "e.g. '0 3 * * 0' (Sundays 03:00)."
        ),
    ] = None,
    duration_ms: Annotated[
        int | None,
        typer.Option(help="Recurring: how long each opening lasts, in milliseconds (1 s to 31 d)."),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why, shown in listings.")] = None,
) -> None:
    """Add a maintenance window: one-off (--ends-at) or recurring (--cron and --duration-ms)."""
    window = lib.add_maintenance(
        site=site,
        starts_at=_time(starts_at, "--starts-at"),
        ends_at=_time(ends_at, "--ends-at"),
        cron=cron,
        duration_ms=duration_ms,
        reason=reason,
        db=state(ctx).db(),
    )
    console.print(f"added maintenance window {window.id}: {_shape(window)}", soft_wrap=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    site: Annotated[
        str | None, typer.Option(help="Only windows that apply to this site (id or URL).")
    ] = None,
    current: Annotated[bool, typer.Option("--current", help="Only windows open now.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array of windows.")] = False,
) -> None:
    """List maintenance windows, by start."""
    now = dt.datetime.now(dt.UTC)
    found = lib.list_maintenance(site=site, current_at=now if current else None, db=state(ctx).db())
    if as_json:
        typer.echo(json.dumps([record(w) for w in found], indent=1))
        return
    sites = sites_by_id(ctx) if any(w.site_id is not None for w in found) else {}
    table = Table("id", "site", "when", "open now", "reason", box=None)
    for w in found:
        table.add_row(
            str(w.id),
            # The site's name (else its URL, redacted) and the id's first part, to tell apart.
            "all" if w.site_id is None else _site(sites.get(w.site_id), w.site_id),
            _shape(w),
            "yes" if w.contains(now) else "",
            Text(w.reason or ""),
        )
    console.print(table)
    console.print(f"{len(found)} window(s)")


@app.command("remove")
def remove(
    ctx: typer.Context,
    window_id: Annotated[int, typer.Argument(help="The window's id (see `maintenance list`).")],
) -> None:
    """Delete a maintenance window."""
    window = lib.remove_maintenance(window_id, db=state(ctx).db())
    console.print(f"removed maintenance window {window.id}: {_shape(window)}", soft_wrap=True)


def record(w: MaintenanceWindow) -> dict[str, Any]:
    """A window as JSON shows it (times ISO 8601 UTC)."""
    return {
        "id": w.id,
        "site_id": None if w.site_id is None else str(w.site_id),
        "starts_at": _iso(w.starts_at),
        "ends_at": None if w.ends_at is None else _iso(w.ends_at),
        "cron": w.cron,
        "duration_ms": w.duration_ms,
        "reason": w.reason,
    }


def _time(text: str | None, flag: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        at = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise MaintenanceError(f"{flag}: {text!r} is not an ISO 8601 time ({_TIME_HELP})") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def _shape(w: MaintenanceWindow) -> str:
    if w.cron is None:
        return f"{_when(w.starts_at)} to {_when(w.ends_at) if w.ends_at else '?'}"
    length = span(dt.timedelta(milliseconds=w.duration_ms or 0))
    until = f" until {_when(w.ends_at)}" if w.ends_at else ""
    return f"'{w.cron}' for {length} from {_when(w.starts_at)}{until}"


def _site(site: Site | None, site_id: uuid.UUID) -> Text:
    return Text(f"{site_label(site, site_id)} ({str(site_id)[:8]})")


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _when(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
