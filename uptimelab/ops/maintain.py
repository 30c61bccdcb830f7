"""``maintain``: the database's regular tasks, once or every so often (see
:mod:`uptimelab.storage.maintenance` for the tasks and :mod:`uptimelab.storage.retention` for
the prune)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from ..config import Settings
from ..errors import UptimelabError
from ..storage.database import Database, default_db
from ..storage.maintenance import MaintenanceReport, RetentionPolicy, maintain_once

log = logging.getLogger("uptimelab.maintain")


def retention_policy(settings: Settings) -> RetentionPolicy:
    """The retention policy the settings ask for: RETENTION_DAYS, ARCHIVE_DIR,
    RETENTION_DROP_UNARCHIVED and NOTIFICATIONS_RETENTION_DAYS."""
    return RetentionPolicy(
        settings.retention_days,
        settings.archive_dir,
        settings.retention_drop_unarchived,
        notifications_days=settings.notifications_retention_days,
    )


def maintain(
    *,
    db: Database | None = None,
    settings: Settings | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> MaintenanceReport:
    """Run the regular tasks once: partitions ahead, prune by RETENTION_DAYS, delete old
    notifications (RETENTION_DAYS, else NOTIFICATIONS_RETENTION_DAYS), refresh stats.

    Returns the report (one line per task). Raises ConfigError for bad settings, StoreError
    when the database fails, OutputError when the archive cannot be written.
    """
    config = settings or Settings.load()
    return maintain_once(
        retention_policy(config),
        db=default_db(db),
        progress=progress,
        lock_timeout_ms=config.db_timeout_ms,
    )


def maintain_every(
    every: dt.timedelta,
    *,
    db: Database | None = None,
    settings: Settings | None = None,
    on_report: Callable[[MaintenanceReport], None],
    on_error: Callable[[UptimelabError], None],
    stop: threading.Event | None = None,
) -> None:
    """Run :func:`maintain` now and every ``every`` until ``stop`` is set (or the process is
    interrupted). A run that fails with our error is handed to ``on_error`` and the next comes
    on time; ``on_report`` gets each report."""
    stopping = stop or threading.Event()
    while not stopping.is_set():
        try:
            on_report(maintain(db=db, settings=settings))
        except UptimelabError as exc:
            on_error(exc)
        stopping.wait(every.total_seconds())
