"""What the CLI's command groups share: the root options and the consoles."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from ..storage.database import Database

PIPED_WIDTH = 250

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
