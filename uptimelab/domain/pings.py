"""Pings: what one check of one site found, its columns and its error categories."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

# The columns of ``pings``, in the order the writer copies them.
PING_COLUMNS = (
    "site_id",
    "checked_at",
    "status",
    "status_code",
    "response_time_ms",
    "error_category",
    "error_message",
    "location",
    "region_code",
)

ERROR_CATEGORIES = (
    "dns",
    "refused",
    "timeout",
    "tls",
    "network",
    "protocol",
    "http_status",
    "too_many_redirects",
    # Added by sql/009_assertions.sql: an expected status, but the page failed an assertion.
    "assertion",
)


@dataclass(slots=True)
class PingResult:
    """One ping, as the probe made it: the columns of ``pings``, in a small object (a cycle of
    100 000 sites holds 100 000 of them)."""

    site_id: uuid.UUID
    checked_at: dt.datetime
    status: str
    status_code: int | None
    response_time_ms: int | None
    error_category: str | None
    error_message: str | None
    location: str
    region_code: str
