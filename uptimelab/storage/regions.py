"""Stats per location and the quorum verdict across locations, computed in SQL at a time.

The numbers follow the contract in ``sql/006_quorum.sql``: per-location stats are the
``site_stats`` columns from one location's pings alone; the quorum verdict at an instant T takes
each location's latest ping within (T - 2 * interval, T] and calls the site down when at least
``min(K, n)`` of those n pings are down, K = ``quorum`` or, unset, a majority (n // 2 + 1).
``uptimelab.stats.location_stats`` and ``uptimelab.stats.quorum_stats`` compute the same numbers
from a pings frame.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, Field

from ..config import MAX_INTERVAL_MS, Settings
from ..domain.redaction import redact
from ..errors import ConfigError
from .database import Database, default_db

MAX_QUORUM: Final = 1000
"""The largest K accepted (the bound of the QUORUM setting)."""

Uptime = Annotated[float, Field(ge=0, le=100, description="Percent.")]
Count = Annotated[int, Field(ge=0)]


class LocationStats(BaseModel):
    """One site's stats from one location's pings (``uptimelab stats --location``)."""

    name: str | None
    url: str = Field(description="The site's URL, credentials redacted.")
    site_id: uuid.UUID
    location: str
    uptime_1h: Uptime
    uptime_24h: Uptime
    uptime_7d: Uptime
    avg_response_time_1h: Count
    avg_response_time_24h: Count
    avg_response_time_7d: Count
    pings_1h: Count
    pings_24h: Count
    pings_7d: Count
    current_status: Literal["up", "down"]
    last_checked: dt.datetime


class QuorumStats(BaseModel):
    """One site's quorum verdict and quorum uptime (``uptimelab stats --quorum``)."""

    name: str | None
    url: str = Field(description="The site's URL, credentials redacted.")
    site_id: uuid.UUID
    uptime_1h: Uptime
    uptime_24h: Uptime
    uptime_7d: Uptime
    instants_1h: int = Field(ge=0, description="Ping instants (any location) in the window.")
    instants_24h: Count
    instants_7d: Count
    current_status: Literal["up", "down"] | None = Field(
        description="The verdict now; null when no location pinged within two intervals."
    )
    locations: int = Field(ge=0, description="Locations whose latest ping counts now.")
    locations_down: int = Field(ge=0, description="How many of those are down.")


LOCATION_SORTABLE: Final = tuple(
    c for c in LocationStats.model_fields if c not in ("name", "url", "site_id")
)
QUORUM_SORTABLE: Final = tuple(
    c for c in QuorumStats.model_fields if c not in ("name", "url", "site_id")
)


def location_stats(
    location: str | None = None,
    *,
    sort: str = "uptime_24h",
    status: str | None = None,
    at: dt.datetime | None = None,
    db: Database | None = None,
) -> list[LocationStats]:
    """Per (site, location): the site_stats columns from that location's pings alone, at ``at``
    (default: the database's now()); one row per site and location with a ping in the 7 days
    before ``at``. ``location`` keeps only that location (None: every one); ``sort`` and
    ``status`` as in :func:`uptimelab.storage.site_stats.site_stats` (ties go by site, then
    location).

    Raises ConfigError for an unknown sort column or status.
    """
    if location is not None and "\x00" in location:
        return []  # text in PostgreSQL holds no NUL: no location has this name
    order = _order(sort, LOCATION_SORTABLE) + ', l.site_id, l.location COLLATE "C"'
    query = (
        "SELECT s.name, s.url, l.* FROM uptimelab_location_stats(coalesce(%(at)s, now()),"
        " %(location)s) AS l JOIN sites AS s ON s.id = l.site_id"
        f" {_where(status)} ORDER BY {order}"
    )
    params = {"at": at, "location": location, "status": status}
    with default_db(db).connect() as conn:
        rows = conn.execute(query, params).fetchall()
    return [LocationStats.model_validate(_redacted(r)) for r in rows]


def quorum_stats(
    *,
    quorum: int | None = None,
    default_interval_ms: int | None = None,
    sort: str = "uptime_24h",
    status: str | None = None,
    at: dt.datetime | None = None,
    db: Database | None = None,
) -> list[QuorumStats]:
    """Per site: the quorum verdict at ``at`` (default: the database's now()) and quorum uptime
    over 1h, 24h and 7d before it; one row per site with a ping in those 7 days.

    ``quorum`` is K, the locations that must be down (None: a majority of those reporting;
    with fewer reporting than K, all of them). ``default_interval_ms`` is the interval of sites
    without their own (None: the setting MONITORING_INTERVAL_MS). ``sort`` is a column,
    '-' first for descending; ``status`` keeps the sites whose verdict now is 'up' or 'down'.

    Raises ConfigError for a quorum or interval out of range, an unknown sort column or status
    (and for a broken setting when ``default_interval_ms`` is None).
    """
    check_quorum(quorum)
    if default_interval_ms is None:
        default_interval_ms = Settings.load().monitoring_interval_ms
    check_interval(default_interval_ms, "default_interval_ms")
    order = _order(sort, QUORUM_SORTABLE) + ", q.site_id"
    query = (
        "SELECT s.name, s.url, q.* FROM uptimelab_quorum_stats(coalesce(%(at)s, now()),"
        " %(interval)s, %(quorum)s) AS q JOIN sites AS s ON s.id = q.site_id"
        f" {_where(status, 'q')} ORDER BY {order}"
    )
    params = {"at": at, "interval": default_interval_ms, "quorum": quorum, "status": status}
    with default_db(db).connect() as conn:
        rows = conn.execute(query, params).fetchall()
    return [QuorumStats.model_validate(_redacted(r)) for r in rows]


def site_intervals_ms(db: Database | None = None) -> dict[str, int | None]:
    """Every site's own interval in milliseconds (``sites.interval_ms``; None: the default),
    by site id as a string."""
    with default_db(db).connect() as conn:
        rows = conn.execute("SELECT id::text AS id, interval_ms FROM sites").fetchall()
    return {r["id"]: r["interval_ms"] for r in rows}


def check_quorum(quorum: int | None) -> None:
    """Raise ConfigError unless ``quorum`` is None or a whole number from 1 to MAX_QUORUM."""
    if quorum is None:
        return
    if isinstance(quorum, bool) or not isinstance(quorum, int) or not 1 <= quorum <= MAX_QUORUM:
        raise ConfigError(f"quorum {quorum!r} is not a whole number from 1 to {MAX_QUORUM}")


def check_interval(interval_ms: int, name: str) -> None:
    """Raise ConfigError naming ``name`` unless ``interval_ms`` is 1 ms to 24 h."""
    if (
        isinstance(interval_ms, bool)
        or not isinstance(interval_ms, int)
        or not 1 <= interval_ms <= MAX_INTERVAL_MS
    ):
        raise ConfigError(
            f"{name} {interval_ms!r} is not a whole number from 1 to {MAX_INTERVAL_MS}"
        )


def _order(sort: str, columns: tuple[str, ...]) -> str:
    column = sort.lstrip("-")
    if column not in columns:
        raise ConfigError(
            f"sort key {sort!r} is not one of {', '.join(columns)} ('-' first for descending)"
        )
    # A column from the fixed list, never the caller's text.
    return f"{column} {'DESC' if sort.startswith('-') else 'ASC'} NULLS LAST"


def _where(status: str | None, alias: str = "l") -> str:
    if status not in (None, "up", "down"):
        raise ConfigError(f"status {status!r} is not up or down")
    return "" if status is None else f"WHERE {alias}.current_status = %(status)s"


def _redacted(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "url": redact(row["url"])}
