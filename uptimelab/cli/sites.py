"""``uptimelab sites``: add, list, remove, enable, disable and import sites."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..domain.redaction import redact
from ..storage import sites as lib
from ..storage.models import Site
from ._common import console, state

app = typer.Typer(help="The sites to watch.", no_args_is_help=True)

SiteArg = Annotated[str, typer.Argument(help="The site's id or URL.", show_default=False)]


@app.command("add")
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="http:// or https:// URL to watch.")],
    name: Annotated[str | None, typer.Option(help="Display name (default: the host).")] = None,
    expect: Annotated[
        str, typer.Option(help="Expected status codes: 200-399, 200,204, 200-299,301, 404.")
    ] = "200-399",
    method: Annotated[str, typer.Option(help="HTTP method.")] = "GET",
    timeout_ms: Annotated[
        int | None, typer.Option(help="This site's deadline (default PING_TIMEOUT_MS).")
    ] = None,
) -> None:
    """Register a site."""
    site = lib.add_site(
        url, name=name, expect=expect, method=method, timeout_ms=timeout_ms, db=state(ctx).db()
    )
    console.print(f"added {redact(site.url)} ({site.id})", markup=False, soft_wrap=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array of sites.")] = False,
) -> None:
    """List the sites."""
    found = lib.list_sites(db=state(ctx).db())
    if as_json:
        typer.echo(json.dumps([_row(s) for s in found], default=str, indent=1))
        return
    table = Table("id", "name", "url", "active", "method", "expect", box=None)
    for s in found:
        table.add_row(
            str(s.id),
            s.name or "",
            redact(s.url),
            "yes" if s.is_active else "no",
            s.method,
            s.expected_status,
        )
    console.print(table)
    console.print(f"{len(found)} site(s)")


@app.command("remove")
def remove(ctx: typer.Context, site: SiteArg) -> None:
    """Delete a site with its pings and stats."""
    removed = lib.remove_site(site, db=state(ctx).db())
    console.print(f"removed {redact(removed.url)}", markup=False, soft_wrap=True)


@app.command("enable")
def enable(ctx: typer.Context, site: SiteArg) -> None:
    """Ping a disabled site again."""
    changed = lib.enable_site(site, db=state(ctx).db())
    console.print(f"enabled {redact(changed.url)}", markup=False, soft_wrap=True)


@app.command("disable")
def disable(ctx: typer.Context, site: SiteArg) -> None:
    """Stop pinging a site, keeping its history."""
    changed = lib.disable_site(site, db=state(ctx).db())
    console.print(f"disabled {redact(changed.url)}", markup=False, soft_wrap=True)


@app.command("import")
def import_(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="CSV, JSON or YAML file; columns as in sites.")],
    format: Annotated[
        str | None, typer.Option(help="csv, json or yaml (default: by extension).")
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option(help="Import the valid rows and report the invalid ones.")
    ] = False,
) -> None:
    """Add or update sites from a file, matched by URL (idempotent)."""
    report = lib.import_sites(path, format=format, skip_invalid=skip_invalid, db=state(ctx).db())
    console.print(
        f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
        f"invalid {len(report.invalid)}",
        markup=False,
    )
    for number, reason in report.invalid:
        console.print(f"  row {number}: {reason}", markup=False, soft_wrap=True)


def _row(site: Site) -> dict[str, object]:
    row = site.model_dump(mode="json")
    row["url"] = redact(site.url)
    return row
