"""What `maintain` keeps of the raw pings, where it archives the rest, and how often it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, BaseModel, BeforeValidator, Field, field_validator

from .rules import (
    MAX_INTERVAL_MS,
    MAX_RETENTION_DAYS,
    RuleBroken,
    expand_home,
    shown,
)


def _not_blank(value: object) -> object:
    # Unlike other variables, an empty ARCHIVE_DIR is not "unset": it would be read as the
    # current directory, or (with RETENTION_DROP_UNARCHIVED) let pings go unarchived.
    if isinstance(value, str) and not value.strip():
        raise RuleBroken("archive_dir", shown(value), "is empty: unset it, or give a directory")
    return value


class RetentionSettings(BaseModel):
    """The fields of :class:`~uptimelab.config.Settings` for pruning and archiving pings."""

    retention_days: int | None = Field(
        default=None,
        ge=8,
        le=MAX_RETENTION_DAYS,
        description="Days of raw pings kept in the database; older whole days are archived "
        f"(ARCHIVE_DIR) or dropped by `maintain`; 8 to {MAX_RETENTION_DAYS}; unset: keep "
        "everything. At least 8: the 7-day stats read raw pings.",
    )
    archive_dir: Annotated[Path | None, BeforeValidator(_not_blank)] = Field(
        default=None,
        validation_alias=AliasChoices("ARCHIVE_DIR"),
        description="Directory of the Parquet archive of pruned pings "
        "(pings/date=YYYY-MM-DD/part-N.parquet); the notebooks read it with the live pings.",
    )
    retention_drop_unarchived: bool = Field(
        default=False,
        description="Let `maintain` drop pings older than RETENTION_DAYS without an ARCHIVE_DIR "
        "(they are gone for good; the hourly rollups stay).",
    )
    maintain_interval_ms: int = Field(
        default=3_600_000,
        ge=1000,
        le=MAX_INTERVAL_MS,
        description="Milliseconds between the collector's maintenance runs (with RETENTION_DAYS "
        f"set); 1000 to {MAX_INTERVAL_MS} (24 h).",
    )

    @field_validator("archive_dir")
    @classmethod
    def _archive_dir_is_not_a_file(cls, path: Path | None) -> Path | None:
        if path is None:
            return None
        path = expand_home(path, "archive_dir").absolute()
        if path.exists() and not path.is_dir():
            raise RuleBroken("archive_dir", shown(str(path)), "is a file, not a directory")
        return path
