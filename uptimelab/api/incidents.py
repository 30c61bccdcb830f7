"""The API's incidents and maintenance windows: ``GET /incidents``, ``GET/POST /maintenance``
and ``DELETE /maintenance/{windowId}`` (writes need the bearer token).

Routes of their own, added by :func:`uptimelab.api.app.create_app` through :func:`add_routes`;
the database is read in worker threads under the app's limiter, as every other endpoint does.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
)
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException

from ..config import parse_duration
from ..domain.maintenance import (
    CRON_PATTERN,
    MAX_DURATION_MS,
    MAX_REASON_CHARS,
    MaintenanceError,
    MaintenanceWindow,
    UnknownMaintenanceError,
    check_cron,
)
from ..domain.redaction import redact
from ..errors import ConfigError
from ..storage.database import Database
from ..storage.incidents import Incident, list_incidents
from ..storage.maintenance_windows import add_maintenance, list_maintenance, remove_maintenance
from ..text import NOT_ON_ONE_LINE
from .errors import error_responses
from .inputs import each_query_value_once

T = TypeVar("T")
InThread = Callable[[Callable[[], T]], Awaitable[T]]
MAX_INCIDENTS = 10_000
"""Most incidents one GET /incidents answers."""
_BIGINT = 2**63 - 1


def _one_line_reason(value: str | None) -> str | None:
    if value is not None and NOT_ON_ONE_LINE.search(value):
        raise PydanticCustomError(
            "one_line", "reason must be one line of text, without control characters"
        )
    return value


# The pattern is the schema's; the check is the CLI's, said in its words.
Reason = Annotated[
    str | None,
    Field(max_length=MAX_REASON_CHARS, json_schema_extra={"pattern": r"^[^\x00-\x1f\x7f]*$"}),
    AfterValidator(_one_line_reason),
]


class IncidentRecord(BaseModel):
    """One incident: a confirmed outage of a site at one location, or of its quorum verdict
    (``location`` null)."""

    id: int
    site_id: uuid.UUID
    site: str | None = Field(description="The site's name.")
    location: str | None = Field(description="null: the quorum verdict across locations.")
    started_at: dt.datetime = Field(description="The first down ping.")
    confirmed_at: dt.datetime = Field(description="The down_after-th down ping in a row.")
    resolved_at: dt.datetime | None = Field(
        description="The first up ping of the recovery; null while it lasts."
    )
    duration_s: float | None = Field(description="resolved_at - started_at, in seconds.")
    down_pings: int = Field(ge=1)
    category: str | None = Field(description="The first down ping's error category.")
    message: str | None = Field(description="The first down ping's error message, redacted.")


class MaintenanceRecord(BaseModel):
    """A maintenance window: one-off ``[starts_at, ends_at)``, or recurring (``cron``, UTC)
    for ``duration_ms`` from each opening; ``site_id`` null: every site."""

    id: int
    site_id: uuid.UUID | None
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    cron: str | None
    duration_ms: int | None
    reason: str | None
    open_now: bool


class OneOffWindow(BaseModel):
    """A one-off window to add, ``[starts_at, ends_at)``; times carry a time zone."""

    model_config = ConfigDict(extra="forbid")

    site_id: uuid.UUID | None = Field(default=None, description="null: every site.")
    starts_at: AwareDatetime | None = Field(default=None, description="Default: now.")
    ends_at: AwareDatetime = Field(description="After starts_at.")
    reason: Reason = None


class RecurringWindow(BaseModel):
    """A recurring window to add: open at each time ``cron`` names (five fields, UTC) from
    ``starts_at`` until ``ends_at`` (null: for ever), for ``duration_ms`` each time."""

    model_config = ConfigDict(extra="forbid")

    site_id: uuid.UUID | None = Field(default=None, description="null: every site.")
    starts_at: AwareDatetime | None = Field(default=None, description="Default: now.")
    ends_at: AwareDatetime | None = Field(default=None, description="After starts_at.")
    # The pattern is the schema's; a cron that breaks it is refused in the CLI's words, not
    # with the pattern quoted back (several hundred characters of regular expression).
    cron: str = Field(
        max_length=200, json_schema_extra={"pattern": CRON_PATTERN}, examples=["0 3 * * 0"]
    )
    duration_ms: int = Field(ge=1000, le=MAX_DURATION_MS)
    reason: Reason = None

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if _SCHEMA_CRON.fullmatch(value) is None:
            try:
                check_cron(value)
            except ValueError as exc:
                reason = str(exc)
            else:
                reason = f"cron {value!r}: separate the five fields by single spaces"
            raise PydanticCustomError("cron", "{reason}", {"reason": reason})
        return value


_SCHEMA_CRON = re.compile(CRON_PATTERN)


def _window_kind(body: Any) -> str:
    """A body naming ``cron`` is a recurring window, any other a one-off: each is judged by its
    own shape alone, so that a bad cron is not also told that a one-off window needs ends_at."""
    return "recurring" if isinstance(body, dict) and "cron" in body else "one_off"


NewWindow = Annotated[
    Annotated[OneOffWindow, Tag("one_off")] | Annotated[RecurringWindow, Tag("recurring")],
    Discriminator(_window_kind),
]


def incident_record(i: Incident) -> IncidentRecord:
    return IncidentRecord(
        id=i.id,
        site_id=i.site_id,
        site=i.site_name,
        location=i.location,
        started_at=i.started_at,
        confirmed_at=i.confirmed_at,
        resolved_at=i.resolved_at,
        duration_s=None if i.duration is None else i.duration.total_seconds(),
        down_pings=i.down_pings,
        category=i.category,
        message=None if i.message is None else redact(i.message),
    )


def maintenance_record(w: MaintenanceWindow, now: dt.datetime) -> MaintenanceRecord:
    return MaintenanceRecord(
        id=w.id,
        site_id=w.site_id,
        starts_at=w.starts_at,
        ends_at=w.ends_at,
        cron=w.cron,
        duration_ms=w.duration_ms,
        reason=w.reason,
        open_now=w.contains(now),
    )


def add_routes(
    routes: FastAPI, db: Database, in_thread: InThread[Any], authorized: list[Any]
) -> None:
    """Add the routes to the app, reading ``db`` through ``in_thread``; ``authorized``: the
    dependencies of the writing ones (the bearer token)."""
    once = [Depends(each_query_value_once)]

    @routes.get(
        "/incidents",
        response_model=list[IncidentRecord],
        responses=error_responses(404, 422, 503),
        dependencies=once,
        operation_id="incidents",
    )
    async def incidents(
        open: Annotated[bool, Query(description="Only incidents still lasting.")] = False,
        site_id: Annotated[uuid.UUID | None, Query(description="Only this site's.")] = None,
        since: Annotated[
            str | None,
            Query(
                description="Only incidents lasting at or after this time: ISO 8601 "
                "(no zone: UTC), or a duration back from now as the CLI's --since takes it "
                "(7d, 12h, 1h30m; a unit is needed).",
                # The schema's durations are a safe subset of what is taken (1h30m is too).
                json_schema_extra={
                    "anyOf": [
                        {"type": "string", "format": "date-time"},
                        {
                            "type": "string",
                            "pattern": r"^(?:[1-9][0-9]{0,3}[smhd]|[1-9][0-9]{0,2}w)$",
                        },
                    ],
                    "examples": ["7d", "2026-12-01T03:00Z"],
                },
            ),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_INCIDENTS)] = 1000,
    ) -> list[IncidentRecord]:
        """Incidents, newest first (`uptimelab incidents`): each location's and, for a site two
        or more locations report, its quorum verdict's (location null)."""
        after = None if since is None else _time(since, "since")
        found = await in_thread(
            lambda: list_incidents(open_only=open, site=site_id, since=after, limit=limit, db=db)
        )
        return [incident_record(i) for i in found]

    @routes.get(
        "/maintenance",
        response_model=list[MaintenanceRecord],
        responses=error_responses(404, 422, 503),
        dependencies=once,
        operation_id="maintenance_windows",
    )
    async def maintenance_windows(
        site_id: Annotated[
            uuid.UUID | None, Query(description="Only windows that apply to this site.")
        ] = None,
    ) -> list[MaintenanceRecord]:
        """Maintenance windows, by start (`uptimelab maintenance list`)."""
        found = await in_thread(lambda: list_maintenance(site=site_id, db=db))
        now = dt.datetime.now(dt.UTC)
        return [maintenance_record(w, now) for w in found]

    @routes.post(
        "/maintenance",
        response_model=MaintenanceRecord,
        status_code=201,
        responses=error_responses(400, 401, 404, 409, 413, 422, 503),
        dependencies=authorized,
        operation_id="add_maintenance",
    )
    async def add_window(wanted: NewWindow) -> MaintenanceRecord:
        """Add a maintenance window (`uptimelab maintenance add`). 409: the window is of a
        valid shape but contradicts itself (it ends before it starts, by default now; its cron
        names no time that exists; a time before 1970 or after 9000)."""
        try:
            window = await in_thread(
                lambda: add_maintenance(site=wanted.site_id, db=db, **_given(wanted))
            )
        except MaintenanceError as exc:
            raise HTTPException(409, str(exc)) from None
        return maintenance_record(window, dt.datetime.now(dt.UTC))

    @routes.delete(
        "/maintenance/{windowId}",
        response_model=MaintenanceRecord,
        responses=error_responses(401, 404, 422, 503),
        dependencies=authorized,
        operation_id="remove_maintenance",
    )
    async def remove_window(
        window_id: Annotated[int, Path(alias="windowId", ge=1, le=_BIGINT)],
    ) -> MaintenanceRecord:
        """Delete a maintenance window (`uptimelab maintenance remove`)."""
        try:
            window = await in_thread(lambda: remove_maintenance(window_id, db=db))
        except UnknownMaintenanceError as exc:
            raise HTTPException(404, str(exc)) from None
        return maintenance_record(window, dt.datetime.now(dt.UTC))


def _given(wanted: OneOffWindow | RecurringWindow) -> dict[str, Any]:
    given = wanted.model_dump(exclude={"site_id"})
    return given


def _time(text: str, name: str) -> dt.datetime:
    """An ISO 8601 time (no zone: UTC), or a duration back from now as the CLI's ``--since``
    reads it (``7d``), at most 100 years; 422 for anything else (a bare number is neither here:
    pydantic would read it as seconds since 1970, the CLI as seconds)."""
    text = text.strip()
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    else:
        return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
    try:
        if text.isdigit():
            raise ConfigError(text)
        span = parse_duration(text, name=name)
        if span > dt.timedelta(days=36_525):
            raise ConfigError(text)
    except ConfigError:
        msg = "give an ISO 8601 time or a duration such as 7d (at most 100 years)"
        raise RequestValidationError(
            [{"loc": ("query", name), "msg": msg, "type": "value_error"}]
        ) from None
    return dt.datetime.now(dt.UTC) - span
