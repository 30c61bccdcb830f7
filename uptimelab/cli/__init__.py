"""The ``uptimelab`` command: one typer app per command group, joined here.

Every command calls one public function of the library with the same parameter names. Our errors
become one line on stderr and an exit code (2 for bad input, 1 for failures); a traceback is a bug.
"""

from __future__ import annotations

import enum
import logging
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from ..errors import UptimelabError, lone_exception
from ..logs import configure as configure_logs
from . import (
    bench,
    collect,
    db,
    demo,
    health,
    outages,
    perf,
    report,
    serve,
    sites,
    stats,
    validate,
    zoo,
)
from ._common import State, err_console


class LogFormat(enum.StrEnum):
    text = "text"
    json = "json"


app = typer.Typer(
    name="uptimelab",
    help="Watch websites: collect pings into PostgreSQL, then analyse uptime and latency.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db.app, name="db")
app.add_typer(sites.app, name="sites")
app.add_typer(stats.app, name="stats")
app.add_typer(bench.app, name="bench")
app.command("collect")(collect.collect)
app.command("outages")(outages.outages)
app.command("status")(health.status)
app.command("health")(health.health)
app.command("validate")(validate.validate)
app.command("perf")(perf.perf)
app.command("report")(report.report)
app.command("serve")(serve.serve)
app.command("zoo")(zoo.zoo)
app.command("demo")(demo.demo)


@app.callback()
def _root(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="PostgreSQL URL (else UPTIMELAB_DATABASE_URL, DATABASE_URL, or the embedded one).",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what the collector does.")
    ] = False,
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", help="text, or json: one object a line.")
    ] = LogFormat.text,
) -> None:
    configure_logs(level=logging.INFO if verbose else logging.WARNING, fmt=log_format.value)
    ctx.obj = State(database_url=database_url)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the CLI, turning uptimelab's errors into one line and an exit code."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="uptimelab")
    except UptimelabError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except BaseExceptionGroup as group:
        # trio's nurseries wrap errors in groups; one of ours alone is still one line.
        lone = lone_exception(group)
        if not isinstance(lone, UptimelabError):
            raise
        err_console.print(f"error: {lone}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(lone.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted", markup=False)
        sys.exit(130)
