"""The database's regular tasks, run by ``uptimelab maintain`` and on the collector's schedule.

One run, under the database's maintenance lock (so with many collectors one of them does it)::

    partitions   make the daily partitions of today and the next 7 days
    prune        by RETENTION_DAYS: into ARCHIVE_DIR, or dropped when RETENTION_DROP_UNARCHIVED
    notifications  delete the rows older than RETENTION_DAYS (unset: NOTIFICATIONS_RETENTION_DAYS)
                 that are not pending, nor of an incident still open
    stats        refresh site_stats, and the planner's statistics of today's and yesterday's
                 partitions (the ones whose contents change)

Each task reports one line. A run that finds the lock taken does nothing and says so.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from psycopg import sql

from . import notifications
from .database import Database, default_db
from .retention import (
    PARTITIONS_AHEAD_DAYS,
    PruneResult,
    ensure_partitions_ahead,
    maintenance_lock,
    prune_locked,
    store_errors,
)
from .site_stats import refresh_stats


@dataclass(frozen=True)
class RetentionPolicy:
    """What the prune task does: keep ``retention_days`` of raw pings (None: everything), and
    archive older days into ``archive_dir``, or drop them unarchived when ``drop_unarchived``.
    Notifications are kept ``retention_days`` too, or ``notifications_days`` without it."""

    retention_days: int | None = None
    archive_dir: Path | None = None
    drop_unarchived: bool = False
    notifications_days: int = 90

    @property
    def notifications_kept_days(self) -> int:
        """Days of notifications kept: RETENTION_DAYS, else NOTIFICATIONS_RETENTION_DAYS."""
        return self.retention_days if self.retention_days is not None else self.notifications_days


@dataclass
class MaintenanceReport:
    """What one run did: one line per task, and the prune's result when it pruned."""

    lines: list[str] = field(default_factory=list)
    prune: PruneResult | None = None
    skipped: bool = False
    notifications_pruned: int = 0


def maintain_once(
    policy: RetentionPolicy,
    *,
    db: Database | None = None,
    now: dt.datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
    lock_timeout_ms: int = 15_000,
) -> MaintenanceReport:
    """Run the regular tasks once (see the module's docstring). Returns the report; with the
    lock held elsewhere, a report saying so and nothing done. Raises StoreError when the
    database fails, OutputError when the archive cannot be written, ConfigError for a
    retention under 8 days."""
    database = default_db(db)
    at = now or dt.datetime.now(dt.UTC)
    report = MaintenanceReport()
    with store_errors("maintenance"), maintenance_lock(database) as held:
        if not held:
            report.skipped = True
            report.lines.append("skipped: another process is maintaining this database")
            return report
        made = ensure_partitions_ahead(database, today=at.astimezone(dt.UTC).date())
        report.lines.append(
            f"partitions: {made} made (today and {PARTITIONS_AHEAD_DAYS} days ahead exist)"
        )
        report.lines.append(
            _prune_line(policy, database, at, report, progress, stop, lock_timeout_ms)
        )
        days = policy.notifications_kept_days
        report.notifications_pruned = notifications.prune(database, at - dt.timedelta(days=days))
        report.lines.append(
            f"notifications: {report.notifications_pruned} row(s) older than {days} days "
            "deleted (pending ones and those of open incidents kept)"
        )
        sites = refresh_stats(db=database)
        analysed = _analyse_recent(database, at.astimezone(dt.UTC).date())
        report.lines.append(
            f"stats: site_stats of {sites} site(s) refreshed, {analysed} partition(s) analysed"
        )
    return report


def _prune_line(
    policy: RetentionPolicy,
    db: Database,
    at: dt.datetime,
    report: MaintenanceReport,
    progress: Callable[[int, int], None] | None,
    stop: threading.Event | None,
    lock_timeout_ms: int,
) -> str:
    if policy.retention_days is None:
        return "prune: nothing pruned (RETENTION_DAYS unset: every ping is kept)"
    if policy.archive_dir is None and not policy.drop_unarchived:
        return (
            "prune: nothing pruned (RETENTION_DAYS is set but ARCHIVE_DIR is not; set it, or "
            "RETENTION_DROP_UNARCHIVED=true to drop old pings for good)"
        )
    result = prune_locked(
        db,
        dt.timedelta(days=policy.retention_days),
        archive=policy.archive_dir,
        now=at,
        progress=progress,
        stop=stop,
        lock_timeout_ms=lock_timeout_ms,
    )
    report.prune = result
    where = f"archived to {policy.archive_dir}" if policy.archive_dir else "dropped unarchived"
    stopped = (
        f", stopped after {len(result.pruned)} of {len(result.planned)}" if result.stopped else ""
    )
    return (
        f"prune: {len(result.pruned)} day(s) before {result.cutoff:%Y-%m-%d %H:%M} UTC, "
        f"{result.pings} ping(s) {where}{stopped}"
    )


def _analyse_recent(db: Database, today: dt.date) -> int:
    analysed = 0
    with db.connect(autocommit=True) as conn:
        for day in (today - dt.timedelta(days=1), today):
            name = f"pings_{day:%Y%m%d}"
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL AS found", (name,)).fetchone()
            if row and row["found"]:
                conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(name)))
                analysed += 1
    return analysed
