"""``uptimelab db``: which database, and its schema."""

from __future__ import annotations

import typer

from ..storage.database import connect
from ._common import console, state

app = typer.Typer(help="The database: its URL and its schema.", no_args_is_help=True)


@app.command("init")
def init(ctx: typer.Context) -> None:
    """Create or update the schema (idempotent; an edited applied file is an error)."""
    db = connect(state(ctx).database_url, migrate=False)
    applied = db.migrate()
    version = db.schema_version()
    # soft_wrap: one line however many files, whatever the terminal's width.
    if applied:
        console.print(
            f"applied {', '.join(applied)}; schema version {version}", markup=False, soft_wrap=True
        )
    else:
        console.print(f"schema is up to date (version {version})", markup=False)


@app.command("url")
def url(ctx: typer.Context) -> None:
    """Print the URL of the database in use, password masked."""
    db = connect(state(ctx).database_url, migrate=False)
    suffix = "  (embedded)" if db.embedded else ""
    console.print(f"{db.masked_url}{suffix}", markup=False, soft_wrap=True)
