"""The collector's maintenance task: ``uptimelab maintain``'s run on the collector's schedule.

With RETENTION_DAYS set, ``collect`` and ``serve --collect`` run the regular tasks (partitions
ahead, prune, stats; see :mod:`uptimelab.storage.maintenance`) at start and then every
MAINTAIN_INTERVAL_MS, in a worker thread. With many collectors the database's maintenance lock
lets one of them do it at a time; the archive is written on the machine that runs it.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    # Imported when maintenance runs: the archive brings pyarrow (about 90 MB and a second of
    # start-up), which a collector without RETENTION_DAYS never needs.
    from ..storage.maintenance import MaintenanceReport, RetentionPolicy
    from .collector import Collector

log = logging.getLogger("uptimelab.collector")


def policy_of(collector: Collector) -> RetentionPolicy:
    """The retention policy of the collector's settings."""
    from ..storage.maintenance import RetentionPolicy

    s = collector.settings
    return RetentionPolicy(s.retention_days, s.archive_dir, s.retention_drop_unarchived)


async def maintain_on_schedule(collector: Collector) -> None:
    """Run the maintenance now and every MAINTAIN_INTERVAL_MS until cancelled. A failed run is
    logged and noted, and the next one comes on time: maintenance never stops the probing.

    Cancelled during a run, the worker thread is left to finish the day it is on (a prune stops
    between days; one killed half-way is resumed by the next run)."""
    from ..storage.maintenance import maintain_once

    policy = policy_of(collector)
    interval_s = collector.settings.maintain_interval_ms / 1000
    limiter = trio.CapacityLimiter(1)
    while True:
        stop = threading.Event()
        run = functools.partial(
            maintain_once,
            policy,
            db=collector.db,
            stop=stop,
            lock_timeout_ms=collector.settings.db_timeout_ms,
        )
        try:
            report: MaintenanceReport = await trio.to_thread.run_sync(
                run, limiter=limiter, abandon_on_cancel=True
            )
        except Exception as exc:  # noqa: BLE001 - the boundary of one maintenance run
            log.warning("maintenance failed: %s", exc, exc_info=exc)
            collector.reporter.note(f"maintenance failed: {exc}")
        else:
            for line in report.lines:
                log.info("maintenance %s", line)
        finally:
            stop.set()
        await trio.sleep(interval_s)
