"""A collector's uptime settings at start: the ones it was given are the ones in force.

The collector's per-batch refresh of ``site_stats`` reads the policy recorded in the database
(the ``uptime_settings`` row), not its own settings. So a collector started with UPTIME_POLICY or
UPTIME_EXCLUDE_MAINTENANCE given explicitly (environment or option) records them there when they
differ, and refreshes ``site_stats`` in full under them (one log line). Given nothing, it follows
the recorded ones. Health reports a running collector whose explicit settings another process has
since recorded over (see :func:`uptimelab.storage.windows.uptime_settings_report`).
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from typing import TYPE_CHECKING

import trio

from ..errors import StoreError
from ..storage.site_stats import refresh_stats
from ..storage.windows import note_collector_uptime_settings

if TYPE_CHECKING:
    from ..storage.writer import Writer
    from .collector import Collector

log = logging.getLogger("uptimelab.collector")


async def adopt_uptime_settings(
    collector: Collector, writer: Writer, collector_id: uuid.UUID
) -> None:
    """Note the collector's explicit uptime settings and, where they differ from the recorded
    ones, record them and refresh ``site_stats`` in full (in a worker thread, beside the
    probing). A failure is logged and noted: it never stops the collector."""
    settings = collector.settings
    try:
        change = await writer.transact(
            lambda conn: note_collector_uptime_settings(conn, collector_id, settings)
        )
        if change is None:
            return
        before, after = change
        started = time.perf_counter()
        sites = await trio.to_thread.run_sync(
            functools.partial(refresh_stats, db=collector.db, settings=settings),
            abandon_on_cancel=True,
        )
    except Exception as exc:  # noqa: BLE001 - it never stops the collector
        log.warning(
            "uptime settings not recorded: %s",
            exc,
            # Our own errors say what happened in one line; anything else is a bug to trace.
            exc_info=None if isinstance(exc, StoreError) else exc,
            extra={"component": "collector", "category": "uptime_settings"},
        )
        collector.reporter.note(f"uptime settings not recorded: {exc}")
        return
    log.info(
        "recorded %s (was %s): site_stats of %d site(s) refreshed under it in %.1f s",
        after.describe(),
        before.describe(),
        sites,
        time.perf_counter() - started,
        extra={"component": "collector", "category": "uptime_settings"},
    )
