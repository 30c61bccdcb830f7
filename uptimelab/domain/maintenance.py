"""Maintenance windows as rules: what a window is, and whether an instant falls in one.

A one-off window is ``[starts_at, ends_at)``. A recurring one opens at each time its cron
expression names (five fields: minute, hour, day of month, month, day of week; in UTC), at or
after ``starts_at`` and before ``ends_at`` (None: for ever), and stays open ``duration_ms``.
``site_id`` None means every site. During a window pings are taken and stored and incidents
recorded; notifications are suppressed, and stats may leave its pings out.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import ConfigError
from ..text import NOT_ON_ONE_LINE, rule_broken

MAX_DURATION_MS = 31 * 86_400_000
"""The longest a recurring window stays open (31 days), in milliseconds."""
MAX_REASON_CHARS = 500
_EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
# Five fields of numbers, *, ranges, steps and lists: names (MON, JAN), @daily and the
# non-standard L, W, # and ? are left out, so that every reader of the table agrees on them.
_CRON_FIELD = r"(?:\*|\d+(?:-\d+)?)(?:/\d+)?(?:,(?:\*|\d+(?:-\d+)?)(?:/\d+)?)*"
_CRON = re.compile(rf"{_CRON_FIELD}(?: +{_CRON_FIELD}){{4}}")


class MaintenanceError(ConfigError):
    """A maintenance window breaks a rule (exit 2)."""


class UnknownMaintenanceError(MaintenanceError, LookupError):
    """No maintenance window has that id."""


def _cron_field(value: str) -> str:
    item = rf"(?:\*|(?:{value})(?:-(?:{value}))?)(?:/[1-9][0-9]{{0,2}})?"
    return rf"{item}(?:,{item})*"


CRON_PATTERN = (
    "^"
    + " ".join(
        _cron_field(v)
        for v in (
            "[0-5]?[0-9]",  # minute
            "[01]?[0-9]|2[0-3]",  # hour
            "0?[1-9]|[12][0-9]|3[01]",  # day of month
            "0?[1-9]|1[0-2]",  # month
            "[0-7]",  # day of week (0 and 7: Sunday)
        )
    )
    + "$"
)
"""A cron expression as the API's schema describes it (single spaces between the fields)."""
_BOUNDED = re.compile(CRON_PATTERN)


def check_cron(expression: str) -> str:
    """``expression`` with its spaces made single, if it is a five-field cron expression of
    numbers, ``*``, ranges, steps and lists within each field's bounds that names some time
    (not February 30th); else ValueError."""
    from croniter import CroniterBadDateError, croniter  # lazy: see _opened_before

    text = " ".join(str(expression).split())
    if not _CRON.fullmatch(text) or not _BOUNDED.fullmatch(text) or not croniter.is_valid(text):
        raise ValueError(
            f"cron {expression!r}: give five fields (minute hour day-of-month month day-of-week) "
            "of numbers, *, ranges a-b, steps /n and lists, e.g. '0 3 * * 0' (Sundays 03:00 UTC)"
        )
    try:
        croniter(text, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)).get_next(dt.datetime)
    except CroniterBadDateError:
        raise ValueError(f"cron {expression!r} names no time that exists") from None
    return text


class MaintenanceSpec(BaseModel):
    """A maintenance window as given by a user: validated."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    site_id: uuid.UUID | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    cron: str | None = None
    duration_ms: int | None = Field(default=None, ge=1000, le=MAX_DURATION_MS)
    reason: str | None = Field(default=None, max_length=MAX_REASON_CHARS)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None or value == "" else check_cron(value)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _in_range(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and not _EARLIEST <= value <= _LATEST:
            raise ValueError("give a time between the years 1970 and 9000")
        return value

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str | None) -> str | None:
        if value is not None and NOT_ON_ONE_LINE.search(value):
            raise ValueError("reason must be one line of text, without control characters")
        return value or None

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.cron is None:
            if self.ends_at is None:
                raise ValueError("a one-off window needs ends_at (or give cron and duration_ms)")
            if self.duration_ms is not None:
                raise ValueError("duration_ms goes with cron (a recurring window)")
        elif self.duration_ms is None:
            raise ValueError("a recurring window (cron) needs duration_ms")
        return self


def maintenance_spec(**values: object) -> MaintenanceSpec:
    """Validate a window, turning pydantic's report into one MaintenanceError line."""
    try:
        return MaintenanceSpec.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        cause = (err.get("ctx") or {}).get("error")
        message = str(cause) if cause is not None else rule_broken(err)
        if not where or message.startswith(where):
            raise MaintenanceError(message) from None
        raise MaintenanceError(f"{where}: {message}") from None


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """One row of ``maintenance``."""

    id: int
    site_id: uuid.UUID | None
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    cron: str | None
    duration_ms: int | None
    reason: str | None
    created_at: dt.datetime | None = None

    def applies_to(self, site_id: uuid.UUID) -> bool:
        """Whether the window is the site's own or one of every site."""
        return self.site_id is None or self.site_id == site_id

    def opening_before(self, at: dt.datetime) -> dt.datetime | None:
        """The latest time the window opened at or before ``at`` (None: not yet)."""
        if at < self.starts_at:
            return None
        if self.cron is None:
            return self.starts_at
        last = at if self.ends_at is None or at < self.ends_at else self.ends_at - _US
        opened = _opened_before(self.cron, last.astimezone(dt.UTC).replace(second=0, microsecond=0))
        return opened if opened >= self.starts_at else None

    def contains(self, at: dt.datetime) -> bool:
        """Whether ``at`` (timezone-aware) falls in the window: ``[opening, opening + length)``
        for its latest opening at or before ``at``."""
        opened = self.opening_before(at)
        if opened is None:
            return False
        if self.cron is None:
            return self.ends_at is not None and at < self.ends_at
        assert self.duration_ms is not None
        return at < opened + dt.timedelta(milliseconds=self.duration_ms)


_US = dt.timedelta(microseconds=1)


def _opened_before(cron: str, minute: dt.datetime) -> dt.datetime:
    """The latest time ``cron`` names at or before ``minute`` (a whole minute, UTC)."""
    # Imported here, not with the module: croniter (and the dateutil it brings) cost every
    # collector about 30 ms at start, and only recurring windows need it.
    from croniter import croniter

    if croniter.match(cron, minute):
        return minute
    opened: dt.datetime = croniter(cron, minute).get_prev(dt.datetime)
    return opened


def in_any(windows: list[MaintenanceWindow], site_id: uuid.UUID, at: dt.datetime) -> bool:
    """Whether ``at`` falls in one of ``windows`` that applies to the site."""
    return any(w.applies_to(site_id) and w.contains(at) for w in windows)
