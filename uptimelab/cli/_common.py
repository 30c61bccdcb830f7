"""What the CLI's command groups share: the root options, the consoles, the output formats and
the naming of options in errors."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import enum
import errno
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from ..domain.redaction import redact
from ..errors import ConfigError, OutputError
from ..text import csv_cell

if TYPE_CHECKING:
    from ..storage.database import Database
    from ..storage.models import Site

PIPED_WIDTH = 250
MAX_DURATION = dt.timedelta(days=36_525)
"""The longest --since/--keep/--window/--every: 100 years, so that now minus it is still a date."""

# No markup: names, URLs, errors and categories come from outside and are shown as typed (a site
# named "[red]x" is not styled); our own styling goes through style= arguments.
console = Console(highlight=False, markup=False)
err_console = Console(stderr=True, highlight=False, markup=False)
if not console.is_terminal:
    # Into a pipe or a file, a table is not cut to 80 columns: a URL shown as "http://127.0.…"
    # is of no use to grep. COLUMNS still sets the width (get_terminal_size reads it first).
    console.width = shutil.get_terminal_size((PIPED_WIDTH, 24)).columns


@dataclass
class State:
    """Root options, handed to every command through typer's context."""

    database_url: str | None = None
    _db: Database | None = field(default=None, repr=False)

    def db(self) -> Database:
        """The database, connected (and migrated) on first use."""
        if self._db is None:
            from ..storage.database import connect  # here: `uptimelab --help` needs no driver

            self._db = connect(self.database_url)
        return self._db


def state(ctx: typer.Context) -> State:
    obj: Any = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


def setting_option(field_name: str, flag: str | None = None) -> Any:
    """A typer Option for a Settings field: named after it, help text from the field."""
    from ..config import help_for  # here: only the commands that take settings load pydantic

    return typer.Option(
        flag or "--" + field_name.replace("_", "-"), help=help_for(field_name), show_default=False
    )


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOption = Annotated[Format, typer.Option("--format", help="table, json or csv.")]


@contextlib.contextmanager
def flag_errors(*flags: str, **renamed: str) -> Iterator[None]:
    """Name the option in a library ConfigError about the value of one of ``flags``.

    The CLI's options carry the library's parameter names, and the library's ConfigError about a
    parameter starts with that name: "sort key 'x' is not one of ..." becomes "--sort: sort key
    'x' is not one of ...", and "since='7x': use a positive duration ..." (from
    ``parse_duration``) becomes "--since='7x': use a positive duration ...". ``renamed`` maps a
    parameter to a flag named otherwise (quorum="--quorum-k"). Others pass as they are.
    """
    try:
        yield
    except ConfigError as exc:
        text = str(exc)
        named = [(flag.removeprefix("--").replace("-", "_"), flag) for flag in flags]
        for name, flag in [*named, *renamed.items()]:
            if text.startswith(name + "="):
                raise ConfigError(flag + text.removeprefix(name)) from exc
            if text.startswith(name + " "):
                raise ConfigError(f"{flag}: {text}") from exc
        raise


def duration_option(text: str, flag: str) -> dt.timedelta:
    """The duration typed for option ``flag`` (``--since``), as ``parse_duration`` reads it, and
    at most :data:`MAX_DURATION`. Raises ConfigError naming the flag and the text as typed."""
    from ..config import parse_duration  # here: only the commands that take durations load it

    span = parse_duration(text, name=flag)
    if span > MAX_DURATION:
        raise ConfigError(f"{flag}={text!r}: at most 100 years (36525d)")
    return span


MIN_INTERVAL = dt.timedelta(seconds=1)
"""The shortest --every/--interval: below a second, a schedule is a busy loop."""


def interval_option(text: str, flag: str) -> dt.timedelta:
    """The interval typed for a repeating option ``flag`` (``--every``, ``--interval``): a
    duration as :func:`duration_option` reads it, and at least :data:`MIN_INTERVAL`. Raises
    ConfigError naming the flag and the text as typed."""
    span = duration_option(text, flag)
    if span < MIN_INTERVAL:
        raise ConfigError(f"{flag}={text}: at least 1s")
    return span


def path_text(text: str) -> Path:
    """The parser of every path option and argument: empty text, which pathlib would read as
    "." (the current directory), is bad input (one line, exit 2), never a place to write."""
    if not text.strip():
        raise typer.BadParameter("is empty: give a path")
    return Path(text)


def output_file_option(path: Path, flag: str) -> Path:
    """``path`` typed for ``flag`` (``--json``, ``--targets-json``), checked before any work:
    a ConfigError (bad input) when it is a directory or leads through a file. Whether the system
    lets it be written is found out by :func:`writing`."""
    if path.is_dir():
        raise ConfigError(f"{flag}={path}: is a directory, not a file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag}={path}: {parent} is a file, not a directory")
            break
    return path


@contextlib.contextmanager
def writing(flag: str, path: Path) -> Iterator[None]:
    """An OSError writing ``path`` (given as ``flag``) as one line: a ConfigError when the path
    is of the wrong kind (a directory, through a file), else an OutputError, the system refused
    (exit 1), as for the report and the exports."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.EISDIR, errno.ENOTDIR):
            raise ConfigError(f"{flag}={path}: {reason}") from exc
        raise OutputError(f"{flag}={path}: cannot write it: {reason}") from exc


def print_records(data: list[dict[str, Any]], format: Format) -> None:
    """``data`` as JSON (indented) or CSV (a header row, then a row per record) on stdout."""
    if format is Format.json:
        typer.echo(json.dumps(data, indent=1))
        return
    buffer = io.StringIO()
    if data:
        writer = csv.DictWriter(buffer, fieldnames=list(data[0]))
        writer.writeheader()
        writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in data)
    typer.echo(buffer.getvalue(), nl=False)


def sites_by_id(ctx: typer.Context) -> dict[Any, Site]:
    """Every site, by id: the names the stats tables show."""
    from ..storage.sites import list_sites  # here: `uptimelab --help` needs no driver

    return {s.id: s for s in list_sites(db=state(ctx).db())}


def site_label(site: Site | None, site_id: object) -> str:
    """A site as a table names it: its name, else its URL (redacted), else its id."""
    if site is None:
        return str(site_id)
    return site.name or redact(site.url)


def pct(value: float, pings: int) -> str:
    """An uptime cell: one decimal, or ``-`` when no pings were counted."""
    return "-" if pings == 0 else f"{value:.1f}"
