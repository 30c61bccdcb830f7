"""The ``uptimelab`` command: one typer app per command group, joined here.

Every command calls one public function of the library with the same parameter names. Our errors
become one line on stderr and an exit code (2 for bad input, 1 for failures); a traceback is a bug.

A command's module is imported only when that command runs, so that ``uptimelab --help`` and the
light commands start without SQLAlchemy, pandas or matplotlib; the root's help lists the commands
from :data:`COMMANDS` without importing them.
"""

from __future__ import annotations

import enum
import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer._click import exceptions as click_errors
from typer.core import TyperCommand, TyperGroup

from ..errors import UptimelabError, lone_exception
from ..logs import configure as configure_logs
from ._common import State, err_console

if TYPE_CHECKING:
    from typer._click import Command, Context, HelpFormatter

# name -> (module in uptimelab.cli, its command function or typer app, the first paragraph of
# the command's help). The order is the order of `uptimelab --help`; a test checks the summaries.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "collect": (
        "collect",
        "collect",
        "Ping every active site on a schedule until SIGINT or SIGTERM, and store every ping.",
    ),
    "outages": (
        "outages",
        "outages",
        "List outages: runs of consecutive down pings, all locations merged, newest first.",
    ),
    "incidents": (
        "incidents",
        "incidents",
        "List incidents: confirmed outages (down_after down pings in a row) of each location and "
        "of the quorum verdict, newest first.",
    ),
    "status": (
        "health",
        "status",
        "Configuration, recent cycles and lateness, collectors, sites, breaker, spool, errors (GET "
        "/monitoring/status).",
    ),
    "health": (
        "health",
        "health",
        "One line per check; exit code 0 healthy, 1 degraded, 2 unhealthy "
        "(GET /monitoring/health).",
    ),
    "validate": (
        "validate",
        "validate",
        "Check the database and its schema, the HTTP client's categories, the cycle lock, speed\n"
        "and the settings; one line per check. Exit code 0 only when every check passes.",
    ),
    "perf": (
        "perf",
        "perf",
        "Time cycles against a zoo in another process and a scratch database; report against "
        "the ideal. With --collectors, run that many `uptimelab collect` processes over --sites "
        "for --duration and report how the fleet was served. Runs on the configured PostgreSQL "
        "server (a scratch database, dropped afterwards).",
    ),
    "report": (
        "report",
        "report",
        "Write a report of the last --since: fleet, uptime, latency, outages, SLA, collector.",
    ),
    "serve": (
        "serve",
        "serve",
        "Serve the HTTP API (GET /site-stats, /metrics, ...) until SIGINT or SIGTERM.",
    ),
    "zoo": (
        "zoo",
        "zoo",
        "Serve simulated sites on 127.0.0.1 until the duration ends or SIGINT/SIGTERM.",
    ),
    "demo": (
        "demo",
        "demo",
        "Watch a simulated fleet of about fifty sites for three cycles, offline; or write a week.",
    ),
    "prune": (
        "prune",
        "prune",
        "Prune pings older than --keep: each whole UTC day is archived to Parquet and verified, "
        "then its partition is dropped.",
    ),
    "maintain": (
        "maintain",
        "maintain",
        "Run the regular tasks, one line each: partitions ahead, prune by RETENTION_DAYS, stats.",
    ),
    "notify": ("notify", "app", "Notifications (apprise): send a test message."),
    "maintenance": (
        "maintenance",
        "app",
        "Maintenance windows: pings go on and incidents are recorded, notifications are "
        "suppressed, and stats may leave them out.",
    ),
    "db": ("db", "app", "The database: its URL and its schema."),
    "sites": ("sites", "app", "The sites to watch."),
    "stats": (
        "stats",
        "app",
        "Uptime, response time and coverage per site over 1h, 24h, 7d and 30d (the site_stats "
        "table), any window (--window 90d) or a calendar month (--month 2026-10).",
    ),
    "bench": ("bench", "app", "Benchmarks, run on demand (never part of the tests)."),
}


def load_command(name: str) -> Command:
    """The click command ``name``, built by typer as ``app.command``/``app.add_typer`` would."""
    module, attribute, _ = COMMANDS[name]
    target = getattr(import_module(f".{module}", __name__), attribute)
    holder = typer.Typer(add_completion=False)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
        group = typer.main.get_command(holder)
        assert isinstance(group, TyperGroup)
        return group.commands[name]
    holder.command(name)(target)
    return typer.main.get_command(holder)


class _Commands(Mapping[str, "Command"]):
    """The root's commands by name; each is built (its module imported) on first lookup."""

    def __init__(self) -> None:
        self._built: dict[str, Command] = {}

    def __getitem__(self, name: str) -> Command:
        if name not in COMMANDS:
            raise KeyError(name)
        if name not in self._built:
            self._built[name] = load_command(name)
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


class _LazyGroup(TyperGroup):
    """The root group. Its help lists :data:`COMMANDS` by their summaries; resolving a command
    to run it (or to show its own help) builds it."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands()  # type: ignore[assignment]
        self._listing = False

    def list_commands(self, ctx: Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if self._listing and cmd_name in COMMANDS:
            return TyperCommand(cmd_name, help=COMMANDS[cmd_name][2])
        return self.commands.get(cmd_name)

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


class LogFormat(enum.StrEnum):
    text = "text"
    json = "json"


app = typer.Typer(
    name="uptimelab",
    cls=_LazyGroup,
    help="Watch websites: collect pings into PostgreSQL, then analyse uptime and latency.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


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
        # Not standalone: a value typer cannot parse (`maintenance remove abc`) comes here as a
        # click error, to be said in one line like ours rather than in typer's box.
        code = app(
            args=list(argv) if argv is not None else None,
            prog_name="uptimelab",
            standalone_mode=False,
        )
    except click_errors.NoArgsIsHelpError as exc:
        sys.exit(exc.exit_code)  # the help is shown already
    except click_errors.ClickException as exc:
        err_console.print(
            f"error: {exc.format_message()}", markup=False, highlight=False, soft_wrap=True
        )
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted", markup=False)
        sys.exit(1)
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
    if isinstance(code, int) and code:  # typer.Exit(n) from a command, returned when not standalone
        sys.exit(code)
