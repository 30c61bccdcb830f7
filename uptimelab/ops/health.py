"""Status and health: what the collector is doing, read by other processes too.

A running collector publishes its state (last cycle, breaker, spool, recent errors) to a small
JSON file in the data directory after every cycle; ``uptimelab status`` and ``uptimelab health``
combine it with what the database says. Both work, reduced, when the database is down. Their
shapes are the models of :mod:`uptimelab.domain.state`.
"""

from __future__ import annotations

import datetime as dt
import time

from ..collector.state import read_collector_state
from ..config import Settings
from ..domain.redaction import mask_url
from ..domain.state import (
    DEGRADED,
    HEALTHY,
    UNHEALTHY,
    BreakerState,
    Check,
    CollectorState,
    DatabaseStatus,
    ErrorReport,
    ExpiringCertificate,
    FleetCollector,
    HealthReport,
    SpoolBacklog,
    Status,
    StoreState,
    UptimeSettingsState,
)
from ..errors import ConfigError, LocalStateError, StoreError, UptimelabError
from ..notify.channels import Channel
from ..storage import notifications
from ..storage.database import Database, connect
from ..storage.local_state import find_local_state
from ..storage.queries import health_facts, status_facts
from ..storage.spool import Spool
from ..storage.windows import Disagreement, UptimeSettings, uptime_settings_report
from ..text import one_line

__all__ = ["HealthReport", "Status", "health", "local_state", "spool_backlog", "status"]


def _database(settings: Settings, db: Database | None) -> Database:
    """``db``, or the settings' database (the embedded one started or joined), not migrated."""
    return db or connect(settings.database_url, settings=settings, migrate=False)


def local_state(settings: Settings, db: Database | None) -> tuple[CollectorState | None, Spool]:
    """The state a collector of this database published on this box, and its spool.

    They live in the database's folder of the data directory; a state file left at the top of
    the data directory (where collectors before per-database folders wrote it) is read when
    the folder has none."""
    folder = settings.data_dir
    if db is not None:
        try:
            local = find_local_state(settings.data_dir, db.url, timeout_ms=settings.db_timeout_ms)
        except LocalStateError:  # a data dir that cannot be made holds no state to read
            local = None
        if local is not None:
            folder = local.directory
    published = read_collector_state(folder) or read_collector_state(settings.data_dir)
    return published, Spool(folder / "spool", max_bytes=settings.spool_max_bytes)


def spool_backlog(spool: Spool, store: StoreState | None) -> SpoolBacklog:
    """The spool's backlog on disk, with whether it is full and the pings it dropped as the
    collector last published them."""
    backlog = SpoolBacklog.model_validate(spool.backlog())
    published = store.spool if store is not None else None
    if published is None:
        return backlog
    return backlog.model_copy(
        update={"full": published.full, "dropped_pings": published.dropped_pings}
    )


def status(settings: Settings | None = None, *, db: Database | None = None) -> Status:
    """Everything ``uptimelab status`` shows (GET /monitoring/status).

    The configuration in force (secrets masked, the API token left out); cycles in the last 24 h
    and how late the rounds of running collectors were; the collectors seen in the last day;
    sites; the last cycle's pings by status and category; the breaker; the spool backlog; the
    pings table's size; an error report by category and component over the last 24 h. An
    unreachable database is reported, not raised; a database URL that cannot be read raises
    ConfigError.
    """
    settings = settings or Settings.load()
    config = settings.model_dump(mode="json", exclude={"api_token"})
    # Notification URLs carry tokens: shown as the table and the logs show them.
    config["notify_urls"] = [Channel(u.get_secret_value()).shown for u in settings.notify_urls]
    if config.get("database_url"):  # masked even when the database is never reached
        config["database_url"] = mask_url(config["database_url"])
    database = None
    try:
        database = _database(settings, db)
        config["database_url"] = database.masked_url
        facts = status_facts(
            database,
            interval_ms=settings.monitoring_interval_ms,
            lease_ms=settings.collector_lease_ms,
            timeout_ms=settings.db_timeout_ms,
        )
    except ConfigError:
        raise  # a database URL that cannot be read is bad input, not an unreachable database
    except UptimelabError as exc:
        facts = DatabaseStatus(reachable=False, error=one_line(exc, 300))
    if database is not None and facts.reachable:
        facts.uptime = _uptime_state(database, settings)
    collector, spool = local_state(settings, database)
    store = collector.store if collector is not None else None
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=24)
    by_component: dict[str, int] = {}
    for event in store.errors if store is not None else []:
        if event.at > since:
            by_component[event.component] = by_component.get(event.component, 0) + 1
    if facts.failed_cycles_24h:
        by_component["collector"] = by_component.get("collector", 0) + facts.failed_cycles_24h
    breaker = store.breaker if store is not None else None
    return Status(
        config=config,
        database=facts,
        collector=collector,
        breaker=breaker or BreakerState(state="unknown (no collector state)"),
        spool=spool_backlog(spool, store),
        errors_24h=ErrorReport(
            by_category=facts.errors_24h_by_category or {}, by_component=by_component
        ),
    )


def _last_cycle_check(
    last_finished: dt.datetime | None,
    faults: int,
    collectors: list[FleetCollector] | None,
    interval: dt.timedelta,
) -> Check:
    """The last cycle or round finished within two intervals of now, or of the start of the
    newest running collector (heartbeat fresh) when that came later: a collector (re)started
    has its first round to finish before the previous run's old round may count against it."""
    running = [c.started_at for c in collectors or [] if c.stopped_at is None and not c.stale]
    started = max(running, default=None)
    now, limit = dt.datetime.now(dt.UTC), 2 * interval
    if started is not None and (last_finished is None or started > last_finished):
        age = now - started
        detail = f"collector started {age.total_seconds():.0f} s ago, no round since"
        if last_finished is not None:
            detail += f" (the last finished {(now - last_finished).total_seconds():.0f} s ago)"
        detail += f" (limit {limit.total_seconds():.0f} s from the start)"
        return Check(
            name="last cycle", status=HEALTHY if age <= limit else UNHEALTHY, detail=detail
        )
    if last_finished is None:
        return Check(name="last cycle", status=UNHEALTHY, detail="no cycle has finished yet")
    age = now - last_finished
    detail = f"finished {age.total_seconds():.0f} s ago (limit {limit.total_seconds():.0f} s)"
    if faults:
        # A fault of our own client is not the sites' downtime, but it is ours to fix.
        detail += f"; {faults} collector fault(s): those sites got no ping (see the log)"
    status = UNHEALTHY if age > limit else DEGRADED if faults else HEALTHY
    return Check(name="last cycle", status=status, detail=detail)


def health(settings: Settings | None = None, *, db: Database | None = None) -> HealthReport:
    """The health checks (GET /monitoring/health): the database reachable within
    ``db_timeout_ms``; the last cycle or round finished within two intervals (a running collector
    stores a round every interval) of now or of the newest running collector's start, degraded
    when it had collector faults; every collector seen
    in the last day stopped or with a heartbeat younger than ``collector_lease_ms``; no active
    site's certificate expiring within its ``cert_min_days`` (degraded); the breaker closed; the
    spool empty.
    ``exit_code`` is 0 healthy, 1 degraded, 2 unhealthy."""
    settings = settings or Settings.load()
    checks: list[Check] = []
    interval = dt.timedelta(milliseconds=settings.monitoring_interval_ms)
    started = time.perf_counter()
    last_finished: dt.datetime | None = None
    last_faults = 0
    collectors: list[FleetCollector] | None = None
    expiring: list[ExpiringCertificate] | None = None
    database = None
    try:
        database = _database(settings, db)
        last_finished, last_faults, collectors, expiring = health_facts(
            database, lease_ms=settings.collector_lease_ms, timeout_ms=settings.db_timeout_ms
        )
        detail = f"reachable ({database.masked_url})"
        checks.append(Check(name="database", status=HEALTHY, detail=detail))
    except ConfigError:
        raise  # as status: bad input, one line
    except UptimelabError as exc:
        detail = "unreachable: " + one_line(exc, 200)
        checks.append(Check(name="database", status=UNHEALTHY, detail=detail))
    checks[-1].seconds = time.perf_counter() - started
    published, local_spool = local_state(settings, database)
    collector = published or CollectorState()
    store = collector.store or StoreState()

    published_cycle = collector.last_cycle
    reported = published_cycle.finished_at if published_cycle else None
    if reported is not None and (last_finished is None or reported >= last_finished):
        last_finished = reported
        last_faults = (published_cycle.faults if published_cycle else None) or 0
    checks.append(_last_cycle_check(last_finished, last_faults, collectors, interval))
    checks.append(_collectors_check(collectors, settings.collector_lease_ms))
    checks.append(_certificates_check(expiring))
    checks.append(_notifications_check(database, settings.db_timeout_ms))
    checks.append(_uptime_check(database, settings))

    breaker = store.breaker
    if breaker is None:
        checks.append(
            Check(name="breaker", status=HEALTHY, detail="no collector state published here")
        )
    else:
        since = "None" if breaker.since is None else breaker.since.isoformat()
        checks.append(
            Check(
                name="breaker",
                status=HEALTHY if breaker.state == "closed" else DEGRADED,
                detail=f"{breaker.state} since {since}",
            )
        )

    spool = spool_backlog(local_spool, store)
    if spool.full:
        checks.append(Check(name="spool", status=UNHEALTHY, detail="FULL: pings are being dropped"))
    elif spool.segments:
        detail = f"{spool.segments} cycle(s), {spool.bytes} bytes waiting"
        checks.append(Check(name="spool", status=DEGRADED, detail=detail))
    else:
        checks.append(Check(name="spool", status=HEALTHY, detail="empty"))
    return HealthReport(checks=checks)


def _notifications_check(database: Database | None, timeout_ms: int) -> Check:
    """Degraded when a notifier lost transitions in the last day (offered past its full queue:
    never recorded, so never told), when a channel fails to take its messages (a dead receiver:
    they wait, retried) or a message of the last day was never delivered; channels are named
    redacted. Read from the database: the notifier may run in another process."""
    try:
        if database is None:
            raise StoreError("the database is unreachable")
        report = notifications.delivery_report(database, timeout_ms=timeout_ms)
    except UptimelabError as exc:
        return Check(name="notifications", status=DEGRADED, detail="not known: " + one_line(exc))
    channels = report.channels
    problems: list[str] = []
    if report.losses:
        lost = sum(n.lost for n in report.losses)
        latest = report.losses[0]
        at = latest.last_lost_at.astimezone(dt.UTC).strftime("%H:%M:%S UTC")
        others = len(report.losses) - 1
        problems.append(
            f"{lost} transition(s) of the last day lost, never recorded nor told: the queue "
            f"was full in the notifier on {latest.host} pid {latest.pid} ({latest.location}), "
            f"last at {at}" + (f", and {others} other notifier(s)" if others else "")
        )
    failing = [c for c in channels if c["failing"]]
    if failing:
        worst = failing[0]
        since = worst["failing_since"].astimezone(dt.UTC).strftime("%H:%M:%S UTC")
        problems.append(
            f"{len(failing)} of {len(channels)} channel(s) failing; {worst['last_error']} "
            f"({worst['waiting']} waiting since {since})"
        )
    undelivered = sum(c["undelivered"] for c in channels)
    if undelivered and not failing:
        problems.append(
            f"{undelivered} message(s) of the last day never delivered (see notifications)"
        )
    if problems:
        return Check(
            name="notifications", status=DEGRADED, detail=one_line("; ".join(problems), 400)
        )
    waiting = sum(c["waiting"] for c in channels)
    detail = f"{len(channels)} channel(s) used in the last day, none failing"
    return Check(
        name="notifications",
        status=HEALTHY,
        detail=detail + (f"; {waiting} waiting" if waiting else ""),
    )


def _disagreement(d: Disagreement, recorded: UptimeSettings) -> str:
    return (
        f"collector {str(d.collector_id)[:8]} on {d.host} pid {d.pid} ({d.location}) was "
        f"started with {d.describe()}, but site_stats is kept under {recorded.describe()}"
        + (f" (set by {recorded.changed_by})" if recorded.changed_by else "")
    )


def _uptime_state(database: Database, settings: Settings) -> UptimeSettingsState | None:
    """The uptime policy in force for status; None when it cannot be read (a database of an
    older schema: status is shown without it)."""
    try:
        recorded, disagreeing = uptime_settings_report(
            database, lease_ms=settings.collector_lease_ms, timeout_ms=settings.db_timeout_ms
        )
    except UptimelabError:
        return None
    return UptimeSettingsState(
        policy=recorded.policy,
        exclude_maintenance=recorded.exclude_maintenance,
        changed_at=recorded.changed_at,
        changed_by=recorded.changed_by,
        disagreeing=[_disagreement(d, recorded) for d in disagreeing],
    )


def _uptime_check(database: Database | None, settings: Settings) -> Check:
    """The uptime policy in force (the one recorded in the database: site_stats is kept under
    it); degraded when a running collector was started with other uptime settings explicitly
    (another process recorded its own since: that collector's per-batch refresh follows the
    recorded ones, not its own)."""
    try:
        if database is None:
            raise StoreError("the database is unreachable")
        recorded, disagreeing = uptime_settings_report(
            database, lease_ms=settings.collector_lease_ms, timeout_ms=settings.db_timeout_ms
        )
    except UptimelabError as exc:
        return Check(name="uptime", status=DEGRADED, detail="not known: " + one_line(exc))
    if disagreeing:
        more = f" (and {len(disagreeing) - 1} more)" if len(disagreeing) > 1 else ""
        detail = _disagreement(disagreeing[0], recorded) + more
        return Check(name="uptime", status=DEGRADED, detail=one_line(detail, 400))
    return Check(
        name="uptime",
        status=HEALTHY,
        detail=f"in force: {recorded.describe()}; no running collector was started with others",
    )


def _certificates_check(expiring: list[ExpiringCertificate] | None) -> Check:
    """Degraded when an active site's certificate expires within its cert_min_days: the site
    is up, but will not be for long."""
    if expiring is None:
        return Check(
            name="certificates", status=DEGRADED, detail="not known: the database is unreachable"
        )
    if not expiring:
        return Check(name="certificates", status=HEALTHY, detail="none expiring soon")
    named = "; ".join(
        f"{c.name or c.url}: {c.days_left:g} days left (min {c.min_days})" for c in expiring[:5]
    )
    more = f" and {len(expiring) - 5} more" if len(expiring) > 5 else ""
    return Check(
        name="certificates",
        status=DEGRADED,
        detail=f"{len(expiring)} expiring soon: {named}{more}",
    )


def _collectors_check(collectors: list[FleetCollector] | None, lease_ms: int) -> Check:
    """Degraded when a collector seen in the last day is neither stopped nor heartbeating: it
    died or is cut off from the database (its sites go to the others of its location when its
    leases expire)."""
    if collectors is None:
        return Check(
            name="collectors", status=DEGRADED, detail="not known: the database is unreachable"
        )
    stale = [c for c in collectors if c.stale]
    if stale:
        named = "; ".join(
            f"{str(c.id)[:8]} on {c.host} pid {c.pid} ({c.location}): no heartbeat for "
            f"{c.heartbeat_age_s:.0f} s"
            for c in stale
        )
        detail = f"{len(stale)} of {len(collectors)} stale (lease {lease_ms / 1000:g} s): {named}"
        return Check(name="collectors", status=DEGRADED, detail=detail)
    running = sum(c.stopped_at is None for c in collectors)
    if not collectors:
        detail = "none seen in the last day"
    else:
        detail = f"{running} running with a fresh heartbeat, {len(collectors) - running} stopped"
    return Check(name="collectors", status=HEALTHY, detail=detail)
