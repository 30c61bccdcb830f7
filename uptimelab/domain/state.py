"""The shapes of status, health and the collector's published state (pure pydantic, no I/O).

One set of models for every place these travel: the state file a collector publishes
(``collector/state.py``), ``uptimelab status --json`` and ``uptimelab health --json`` (``ops/``),
and GET /monitoring/status and /monitoring/health (``api/``)::

    Status                          what `uptimelab status` shows
    ├── config                      the settings in force (secrets masked, no API token)
    ├── database: DatabaseStatus    cycles (CycleCounts), lateness (Lateness), collectors
    │                               (FleetCollector), sites (SiteCounts), last_cycle (LastCycle),
    │                               sites whose certificate is not verified (UnverifiedSite)
    ├── collector: CollectorState   the published state file, or null
    │   ├── last_cycle: PublishedCycle
    │   └── store: StoreState       breaker (BreakerState), spool (SpoolBacklog), errors
    ├── breaker: BreakerState
    ├── spool: SpoolBacklog
    └── errors_24h: ErrorReport
    HealthReport                    what `uptimelab health` shows: status and checks (Check)

The published state is read by other processes, perhaps of another version: every field of it
has a default, and unknown fields are ignored.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

HealthStatus = Literal["healthy", "degraded", "unhealthy"]
HEALTHY: HealthStatus = "healthy"
DEGRADED: HealthStatus = "degraded"
UNHEALTHY: HealthStatus = "unhealthy"
EXIT_CODES: dict[HealthStatus, int] = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}


class _Published(BaseModel):
    """Read leniently: written by another process, perhaps of another version."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, serialize_by_alias=True)


# -- the collector's published state ---------------------------------------------------------


class BreakerTransition(_Published):
    at: dt.datetime | None = None
    from_state: str | None = Field(default=None, alias="from")
    to: str | None = None
    reason: str | None = None


class BreakerState(_Published):
    """The database circuit breaker: closed, open or half-open (or unknown without a state)."""

    state: str = "unknown"
    since: dt.datetime | None = None
    consecutive_failures: int | None = None
    last_transition: BreakerTransition | None = None


class SpoolBacklog(_Published):
    """Cycles kept on disk because the database did not take them."""

    segments: int = Field(default=0, ge=0)
    bytes: int = Field(default=0, ge=0)
    max_bytes: int | None = None
    full: bool = False
    full_since: dt.datetime | None = None
    dropped_pings: int = Field(default=0, ge=0)
    quarantined: int = Field(default=0, ge=0, description="Segments that can never be stored.")


class ErrorEvent(_Published):
    """One error the writer met (a database call, the spool)."""

    at: dt.datetime
    component: str = "unknown"
    category: str = "unknown"
    message: str = ""


class StoreState(_Published):
    """The writer's side: breaker, spool and recent errors."""

    last_write_s: float | None = None
    last_refresh_s: float | None = None
    breaker: BreakerState | None = None
    spool: SpoolBacklog | None = None
    errors: list[ErrorEvent] = Field(default_factory=list)


class PublishedCycle(_Published):
    """The last cycle a collector ran, as it reported it."""

    id: uuid.UUID | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    sites_checked: int | None = None
    up: int | None = None
    down: int | None = None
    by_category: dict[str, int] = Field(default_factory=dict)
    duration_ms: int | None = None
    interrupted: bool | None = None
    stored: str | None = None
    orphans: int | None = None
    spool_waiting: int | None = None
    error: str | None = None
    faults: int | None = Field(
        default=None, description="Sites that got no ping because our own client failed."
    )


class CollectorState(_Published):
    """What a collector publishes after every cycle (``Collector.status()`` plus who wrote it)."""

    location: str | None = None
    region_code: str | None = None
    interval_ms: int | None = None
    cycles_run: int = 0
    cycles_failed: int = 0
    skipped_starts: int = 0
    running_since: dt.datetime | None = None
    current_cycle_id: uuid.UUID | None = None
    stopping: bool = False
    last_cycle: PublishedCycle | None = None
    store: StoreState | None = None
    pid: int | None = None
    host: str | None = None
    updated_at: dt.datetime | None = None


# -- status ------------------------------------------------------------------------------------


class CycleCounts(BaseModel):
    """Stored cycles and rounds of the last 24 hours (dry runs left out)."""

    cycles: int = Field(
        description="Rows of monitoring_cycles: rounds and `collect --once` cycles."
    )
    succeeded: int
    stopped: int = Field(
        default=0,
        description="Cut short by a requested stop (a signal, Collector.stop()): neither "
        "succeeded nor failed.",
    )
    mean_duration_ms: int | None
    max_duration_ms: int | None
    overruns: int = Field(
        description="`collect --once` cycles (no collector id) longer than the interval; a round "
        "of a running collector lasts one interval by design, and its lateness says how it kept up."
    )
    success_rate: float | None = Field(
        description="succeeded / (cycles - stopped); null without such cycles."
    )


class Lateness(BaseModel):
    """How late the collectors on their schedule were: per round, how late its latest ping was
    against the site's due time (0: every site was probed when due)."""

    rounds: int = Field(description="Rounds of the default interval stored in the last 24 hours.")
    max_late_ms: int | None = Field(
        description="The latest ping of the last 24 hours; null without rounds."
    )
    last_round_late_ms: int | None = Field(description="The newest round's; null without rounds.")
    last_round_at: dt.datetime | None = Field(description="When the newest round finished.")
    last_round_collector_id: uuid.UUID | None = None


class FleetCollector(BaseModel):
    """One collector process of the ``collectors`` table, seen in the last day."""

    id: uuid.UUID
    host: str
    pid: int
    location: str
    region_code: str
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    stopped_at: dt.datetime | None
    heartbeat_age_s: float = Field(
        description="Seconds since its last heartbeat, by the database's clock."
    )
    sites_owned: int = Field(description="Sites it held at its last heartbeat.")
    late_ms: int = Field(description="How late its most overdue site was at its last heartbeat.")
    stale: bool = Field(
        description="Running (not stopped) but its heartbeat is older than COLLECTOR_LEASE_MS: "
        "dead or cut off; its sites are taken over by the others of its location."
    )


class SiteCounts(BaseModel):
    active: int
    total: int


class UnverifiedSite(BaseModel):
    """An active site whose certificate is not verified (``tls_verify`` false)."""

    id: uuid.UUID
    name: str
    url: str = Field(description="Redacted.")


class ExpiringCertificate(BaseModel):
    """An active site whose latest certificate expires in fewer than its ``cert_min_days``
    days (or has expired): a warning, not downtime."""

    id: uuid.UUID
    name: str
    url: str = Field(description="Redacted.")
    expires_at: dt.datetime
    days_left: float = Field(description="Days until it expires; negative once it has.")
    min_days: int = Field(description="The site's cert_min_days.")


class LastCycle(BaseModel):
    """The newest stored cycle or round, and the pings of its location in its time window by
    status and by error category (with several collectors in the location, theirs too)."""

    id: uuid.UUID
    started_at: dt.datetime
    finished_at: dt.datetime | None
    location: str
    sites_checked: int
    up: int
    down: int
    duration_ms: int | None
    error: str | None
    collector_id: uuid.UUID | None = Field(
        default=None, description="The collector whose round it is; null for `collect --once`."
    )
    late_ms: int | None = Field(default=None, description="A round's lateness (see Lateness).")
    pings_by_status: dict[str, int] = Field(default_factory=dict)
    pings_by_category: dict[str, int] = Field(default_factory=dict)


class UptimeSettingsState(BaseModel):
    """The uptime policy in force: what site_stats is kept under, recorded in the database."""

    policy: str = Field(description="UPTIME_POLICY in force: samples, confirmed or time.")
    exclude_maintenance: bool = Field(description="UPTIME_EXCLUDE_MAINTENANCE in force.")
    changed_at: dt.datetime | None = Field(
        default=None, description="When it was last changed (null: not since schema 18)."
    )
    changed_by: str | None = Field(
        default=None, description="What changed it: a collector at start, or a refresh."
    )
    disagreeing: list[str] = Field(
        default_factory=list,
        description="Running collectors started with other uptime settings, one line each.",
    )


class DatabaseStatus(BaseModel):
    """What the database says; only ``reachable`` and ``error`` when it cannot be reached."""

    reachable: bool
    error: str | None = None
    cycles_24h: CycleCounts | None = None
    lateness: Lateness | None = None
    collectors: list[FleetCollector] | None = None
    sites: SiteCounts | None = None
    last_cycle: LastCycle | None = None
    errors_24h_by_category: dict[str, int] | None = None
    failed_cycles_24h: int | None = None
    collector_faults_24h: int | None = Field(
        default=None,
        description="Sites that got no ping in the last 24 hours because our own client failed "
        "(a collector fault, logged with its traceback; not the sites' downtime).",
    )
    tls_unverified_sites: int | None = Field(
        default=None,
        description="Active sites whose certificate is not verified (tls_verify false): a weaker "
        "check.",
    )
    tls_unverified: list[UnverifiedSite] | None = Field(
        default=None, description="The first 100 of them, in the order they were added."
    )
    cert_expiring_sites: int | None = Field(
        default=None,
        description="Active sites whose certificate expires within their cert_min_days.",
    )
    cert_expiring: list[ExpiringCertificate] | None = Field(
        default=None, description="The first 100 of them, soonest first."
    )
    pings_table_bytes: int | None = None
    uptime: UptimeSettingsState | None = Field(
        default=None, description="The uptime policy in force (null: not known)."
    )


class ErrorReport(BaseModel):
    by_category: dict[str, int] = Field(description="Down pings by error category.")
    by_component: dict[str, int] = Field(description="Errors by component (writer, collector).")


class Status(BaseModel):
    """What ``uptimelab status --json`` prints and GET /monitoring/status answers."""

    config: dict[str, Any] = Field(
        description="The settings in force, secrets masked; the API leaves out local paths."
    )
    database: DatabaseStatus
    collector: CollectorState | None = Field(description="The published state; null if none.")
    breaker: BreakerState
    spool: SpoolBacklog
    errors_24h: ErrorReport


# -- health ------------------------------------------------------------------------------------


class Check(BaseModel):
    """One health check."""

    name: str
    status: HealthStatus
    detail: str
    seconds: float = Field(default=0.0, ge=0, description="How long the check took.")


class HealthReport(BaseModel):
    """What ``uptimelab health --json`` prints and GET /monitoring/health answers: the worst
    check's status, and every check."""

    checks: list[Check] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> HealthStatus:
        states = {c.status for c in self.checks}
        for worst in (UNHEALTHY, DEGRADED):
            if worst in states:
                return worst
        return HEALTHY

    @property
    def exit_code(self) -> int:
        """0 healthy, 1 degraded, 2 unhealthy."""
        return EXIT_CODES[self.status]

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (``status`` and ``checks``)."""
        return self.model_dump(mode="json")
