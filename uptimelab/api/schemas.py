"""The request and response bodies of the API that are its own (status and health are the
shared models of :mod:`uptimelab.domain.state`); FastAPI validates them and documents them in
/openapi.json."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..domain.pings import ERROR_CATEGORIES
from ..domain.sites import MAX_URL_LENGTH

MAX_TEST_SITES = 100
"""Most sites one POST /monitoring/test may name."""

ErrorCategory = Literal[ERROR_CATEGORIES]  # type: ignore[valid-type]
Percent = Annotated[float, Field(ge=0, le=100)]
Count = Annotated[int, Field(ge=0)]


class Error(BaseModel):
    """Every error answer: the HTTP status, its phrase, and what went wrong."""

    status: int
    error: str
    message: str


class CycleStarted(BaseModel):
    cycle_id: uuid.UUID
    started_at: dt.datetime
    message: str


class DryRunRequest(BaseModel):
    """The body of POST /monitoring/test; no body (or no ``sites``) probes every active site."""

    model_config = ConfigDict(extra="forbid")

    sites: (
        Annotated[
            list[Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)]],
            Field(min_length=1, max_length=MAX_TEST_SITES),
        ]
        | None
    ) = Field(default=None, description="Sites to probe (ids or URLs); default: every active site.")


class PingOutcome(BaseModel):
    """One ping of a dry run (URL credentials redacted)."""

    site_id: uuid.UUID
    name: str | None
    url: str
    checked_at: dt.datetime
    status: Literal["up", "down"]
    status_code: int | None
    response_time_ms: int | None
    error_category: ErrorCategory | None
    error_message: str | None


class DryRun(BaseModel):
    """A cycle that probed and stored nothing, with each result (sorted by URL)."""

    cycle_id: uuid.UUID
    started_at: dt.datetime
    finished_at: dt.datetime
    duration_ms: Count
    sites_checked: Count
    up: Count
    down: Count
    by_category: dict[str, Annotated[int, Field(ge=1)]]
    interrupted: bool
    results: list[PingOutcome]


class SiteStatsRecord(BaseModel):
    """One site's stats, as ``uptimelab stats --format json`` prints them."""

    name: str | None
    url: str | None = Field(description="The site's URL, credentials redacted.")
    site_id: uuid.UUID
    current_status: Literal["up", "down"]
    last_checked: dt.datetime
    updated_at: dt.datetime
    uptime_1h: Percent
    uptime_24h: Percent
    uptime_7d: Percent
    avg_response_time_1h: Count
    avg_response_time_24h: Count
    avg_response_time_7d: Count
    pings_1h: Count
    pings_24h: Count
    pings_7d: Count
    cert_expires_at: dt.datetime | None = Field(
        default=None, description="When the latest certificate seen expires; null over HTTP."
    )
    uptime_30d: Percent = 0.0
    avg_response_time_30d: Count = 0
    pings_30d: Count = 0
    coverage_1h: Percent = Field(default=0.0, description="Pings received / expected, percent.")
    coverage_24h: Percent = 0.0
    coverage_7d: Percent = 0.0
    policy: Literal["samples", "confirmed", "time"] = Field(
        default="samples", description="The uptime policy the numbers follow."
    )
    maintenance_excluded: bool = False
