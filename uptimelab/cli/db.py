"""``uptimelab db``: which database, and its schema."""

from __future__ import annotations

import typer

from ..storage.database import connect
from ..storage.site_urls import init_database
from ._common import console, state

app = typer.Typer(help="The database: its URL and its schema.", no_args_is_help=True)


@app.command("init")
def init(ctx: typer.Context) -> None:
    """Create or update the schema, and bring stored site URLs to their normal form, in one
    transaction (idempotent; an edited applied file is an error)."""
    db = connect(state(ctx).database_url, migrate=False)
    applied, report = init_database(db)
    version = db.schema_version()
    # soft_wrap: one line however many files, whatever the terminal's width.
    if applied:
        console.print(
            f"applied {', '.join(applied)}; schema version {version}", markup=False, soft_wrap=True
        )
    else:
        console.print(f"schema is up to date (version {version})", markup=False)
    if report.changed:
        console.print(f"normalised {report.changed} stored site URL(s)", markup=False)
    left = report.left_alone
    if left:
        console.print(
            f"left {len(left)} site URL(s) as they are ({len(report.collisions)} would collide, "
            f"{len(report.too_long)} too long, {len(report.invalid)} break the URL rules): "
            "see `uptimelab validate`",
            markup=False,
            soft_wrap=True,
        )


@app.command("url")
def url(ctx: typer.Context) -> None:
    """Print the URL of the database in use, password masked."""
    db = connect(state(ctx).database_url, migrate=False)
    suffix = "  (embedded)" if db.embedded else ""
    console.print(f"{db.masked_url}{suffix}", markup=False, soft_wrap=True)
