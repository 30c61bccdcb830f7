"""SQLModel tables that mirror ``sql/*.sql``, in one place.

The SQL files are the source of truth for the schema; these classes give Python code typed rows and
let SQLAlchemy/SQLModel users query the same tables. ``tests/test_db.py`` fails if they drift.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from ..domain.pings import ERROR_CATEGORIES, PING_COLUMNS, PingResult
from ..domain.redaction import redact

__all__ = [
    "ERROR_CATEGORIES",
    "PING_COLUMNS",
    "MonitoringCycle",
    "Ping",
    "PingRollupHourly",
    "Site",
    "SiteStats",
]


def _tz(*, nullable: bool = False, primary_key: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), nullable=nullable, primary_key=primary_key)


class PingRollupHourly(SQLModel, table=True):
    """Per site and UTC hour: pings, pings up, and the sum and count of up response times.

    Kept current by triggers on ``pings``; the stats refresh reads whole hours from here.
    """

    __tablename__ = "ping_rollup_hourly"

    site_id: uuid.UUID = Field(foreign_key="sites.id", primary_key=True)
    hour: dt.datetime = Field(sa_column=_tz(primary_key=True))
    pings: int
    pings_up: int
    up_response_ms_sum: int = Field(sa_column=Column(BigInteger, nullable=False))
    up_response_count: int
    # Added by sql/013_uptime_policies.sql (settled by uptimelab_settle_rollup).
    pings_down_confirmed: int = 0
    up_us: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    down_us: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class Site(SQLModel, table=True):
    """A website to watch."""

    __tablename__ = "sites"

    def __repr_args__(self) -> Sequence[tuple[str | None, Any]]:
        # A notebook shows reprs: the URL's password never is.
        return [
            (name, redact(value) if name == "url" and isinstance(value, str) else value)
            for name, value in super().__repr_args__()
        ]

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str | None = None
    url: str = Field(unique=True)
    is_active: bool = True
    method: str = "GET"
    expected_status: str = "200-399"
    follow_redirects: bool = True
    max_redirects: int = 5
    timeout_ms: int | None = None
    interval_ms: int | None = None
    retry_interval_ms: int | None = None
    created_at: dt.datetime = Field(sa_column=_tz())
    updated_at: dt.datetime = Field(sa_column=_tz())
    # Added by sql/007_tls_verify.sql: false accepts any certificate (a weaker check).
    tls_verify: bool = True
    # Added by sql/009_assertions.sql: what the page must say, and what the request carries
    # (headers may hold secrets: they are kept out of the repr).
    expect_body: str | None = None
    expect_json: str | None = None
    max_response_ms: int | None = None
    headers: dict[str, str] | None = Field(
        default=None, sa_column=Column(JSONB, nullable=True), repr=False
    )
    body: str | None = Field(default=None, repr=False)
    # Added by sql/008_probe_depth.sql: a certificate expiring in fewer days is a warning.
    cert_min_days: int = 14
    # Added by sql/011_incidents.sql: the counts that confirm and resolve an incident, and the
    # site's own apprise URLs (tokens: kept out of the repr).
    down_after: int = 2
    up_after: int = 1
    notify: list[str] | None = Field(
        default=None, sa_column=Column(ARRAY(Text), nullable=True), repr=False
    )


class Ping(SQLModel, table=True):
    """One check of one site from one location. A failed ping is data: ``status == 'down'``."""

    __tablename__ = "pings"

    site_id: uuid.UUID = Field(foreign_key="sites.id", primary_key=True)
    checked_at: dt.datetime = Field(sa_column=_tz(primary_key=True))
    status: str
    status_code: int | None = None
    response_time_ms: int | None = None
    error_category: str | None = None
    error_message: str | None = None
    location: str = Field(primary_key=True)
    region_code: str
    # Added by sql/008_probe_depth.sql: phase timings (ms) and the certificate's expiry.
    dns_ms: int | None = None
    connect_ms: int | None = None
    tls_ms: int | None = None
    ttfb_ms: int | None = None
    transfer_ms: int | None = None
    cert_expires_at: dt.datetime | None = Field(default=None, sa_column=_tz(nullable=True))

    @classmethod
    def from_result(cls, ping: PingResult) -> Ping:
        """The SQLModel row of a probe's result."""
        return cls(**{f: getattr(ping, f) for f in PingResult.__slots__})


class MonitoringCycle(SQLModel, table=True):
    """One collector cycle: when, where, how many sites, how many up and down."""

    __tablename__ = "monitoring_cycles"

    id: uuid.UUID = Field(primary_key=True)
    started_at: dt.datetime = Field(sa_column=_tz())
    finished_at: dt.datetime | None = Field(default=None, sa_column=_tz(nullable=True))
    location: str
    region_code: str
    sites_checked: int = 0
    up: int = 0
    down: int = 0
    duration_ms: int | None = None
    dry_run: bool = False
    error: str | None = None
    # Added by sql/005_scheduler.sql: which collector, and how late its latest ping was.
    collector_id: uuid.UUID | None = None
    late_ms: int | None = None


class SiteStats(SQLModel, table=True):
    """The seed's aggregate statistics per site, for dashboards."""

    __tablename__ = "site_stats"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    site_id: uuid.UUID = Field(foreign_key="sites.id", unique=True)
    uptime_1h: float = 0.0
    uptime_24h: float = 0.0
    uptime_7d: float = 0.0
    avg_response_time_1h: int = 0
    avg_response_time_24h: int = 0
    avg_response_time_7d: int = 0
    current_status: str = "down"
    last_checked: dt.datetime = Field(sa_column=_tz())
    created_at: dt.datetime = Field(sa_column=_tz())
    updated_at: dt.datetime = Field(sa_column=_tz())
    # Added by sql/003_stats.sql, so that "no data" and "0 % uptime" can be told apart.
    pings_1h: int = 0
    pings_24h: int = 0
    pings_7d: int = 0
    # Added by sql/008_probe_depth.sql: the latest certificate expiry seen.
    cert_expires_at: dt.datetime | None = Field(default=None, sa_column=_tz(nullable=True))
    # Added by sql/013_uptime_policies.sql: coverage (percent of the pings expected), the 30-day
    # window, and the uptime policy the row was computed under.
    coverage_1h: float = 0.0
    coverage_24h: float = 0.0
    coverage_7d: float = 0.0
    uptime_30d: float = 0.0
    avg_response_time_30d: int = 0
    pings_30d: int = 0
    policy: str = "samples"
    maintenance_excluded: bool = False
