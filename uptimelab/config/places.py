"""Where uptimelab's state lives: the database, the data directory, the perf file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import platformdirs
from pydantic import AliasChoices, BaseModel, BeforeValidator, Field, field_validator

from .rules import RuleBroken, blank_is_none, expand_home, shown


def default_data_dir() -> Path:
    """The per-user directory for the embedded database and other state."""
    return platformdirs.user_data_path("uptimelab")


def _data_dir_not_blank(value: object) -> object:
    # Path("") is the current directory: an empty variable would put the database there.
    if isinstance(value, str) and not value.strip():
        raise RuleBroken(
            "data_dir", shown(value), "must not be empty (unset it for the per-user directory)"
        )
    return value


class PlacesSettings(BaseModel):
    """The fields of :class:`~uptimelab.config.Settings` that say where its state lives."""

    database_url: Annotated[str | None, BeforeValidator(blank_is_none)] = Field(
        default=None,
        validation_alias=AliasChoices("UPTIMELAB_DATABASE_URL", "DATABASE_URL"),
        description="PostgreSQL URL; unset means the embedded server in the data directory.",
    )
    data_dir: Annotated[Path, BeforeValidator(_data_dir_not_blank)] = Field(
        default_factory=default_data_dir,
        validation_alias=AliasChoices("UPTIMELAB_DATA_DIR"),
        description="Directory for the embedded database and local state; not a file.",
    )
    perf_json: Annotated[Path | None, BeforeValidator(blank_is_none)] = Field(
        default=None,
        validation_alias=AliasChoices("UPTIMELAB_PERF_JSON"),
        description="The `uptimelab perf --json` file that the notebooks and the report read; "
        "unset means perf.json in the data directory.",
    )

    @field_validator("data_dir")
    @classmethod
    def _data_dir_can_be_a_directory(cls, path: Path) -> Path:
        return usable_directory(path)

    @field_validator("perf_json")
    @classmethod
    def _perf_json_is_not_a_directory(cls, path: Path | None) -> Path | None:
        if path is None:
            return None
        path = expand_home(path, "perf_json")
        if path.is_dir():
            raise RuleBroken("perf_json", shown(str(path)), "is a directory, not a file")
        return path


def usable_directory(path: Path) -> Path:
    """``path`` (``~`` expanded) if it is a directory or could be made one: not a file, and the
    nearest existing ancestor a directory. Raises RuleBroken for the data directory otherwise.

    Nothing is created; whether the directory is writable is found out when it is first used.
    """
    path = expand_home(path, "data_dir")
    path_shown = shown(str(path))
    if "\0" in str(path):
        raise RuleBroken("data_dir", path_shown, "not a usable path (it holds a NUL character)")
    try:
        existing = next((p for p in (path, *path.parents) if p.exists()), None)
        is_dir = existing is not None and existing.is_dir()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise RuleBroken("data_dir", path_shown, f"not a usable path ({reason})") from None
    if existing is None:
        raise RuleBroken("data_dir", path_shown, "none of its parents exists")
    if not is_dir:
        where = "it is" if existing == path else f"{existing} is"
        raise RuleBroken("data_dir", path_shown, f"{where} a file, not a directory")
    return path
