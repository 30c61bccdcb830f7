"""The collector in a notebook or a service: one cycle now (:func:`collect_once`), or a collector
on its schedule in a background thread (:func:`start_collector`)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import ssl
from typing import Any

import trio

from ..concurrency import run_in_trio_thread, trio_portal
from ..config import Settings
from ..storage.database import Database, default_db
from .collector import Collector
from .reporting import CycleSummary, Reporter

log = logging.getLogger("uptimelab.collector")


def collect_once(
    *,
    dry_run: bool = False,
    db: Database | None = None,
    verify: ssl.SSLContext | bool = True,
    reporter: Reporter | None = None,
    **settings: Any,
) -> CycleSummary:
    """Run one cycle now and return its summary (the seed's POST /monitoring/trigger).

    ``settings`` override the environment (``max_concurrent_pings=50``, ...). With ``dry_run`` the
    results are returned and nothing is stored. Raises ConfigError, StoreError,
    CycleInProgressError.
    """
    config = Settings.load(**settings)
    collector = Collector(default_db(db), config, verify=verify, reporter=reporter)

    async def one() -> CycleSummary:
        return await collector.cycle(dry_run=dry_run)

    return run_in_trio_thread(one)


class BackgroundCollector:
    """A collector running on its schedule in a background thread (for notebooks and services).

    Created by :func:`start_collector`; :meth:`status` shows what it is doing, :meth:`stop` stops
    it after the current ping and waits for the last write.
    """

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.error: BaseException | None = None
        self._portal_cm = trio_portal("uptimelab-collector")
        self._portal = self._portal_cm.__enter__()
        self._future = self._portal.start_task_soon(self._run)

    async def _run(self) -> None:
        try:
            await self.collector.run()
        except Exception as exc:  # kept for status() and stop(); the thread must not die silently
            self.error = exc
            log.exception("the background collector failed")

    @property
    def running(self) -> bool:
        return not self._future.done()

    def status(self) -> dict[str, Any]:
        """The collector's status, plus whether it runs and its error if it died."""
        status = self.collector.status()
        status["running"] = self.running
        status["error"] = None if self.error is None else repr(self.error)
        return status

    def stop(self, timeout: float | None = 60.0) -> None:
        """Stop probing, let the cycle write what it probed, and wait for the thread."""
        if self.running:
            with contextlib.suppress(trio.RunFinishedError, RuntimeError):
                self._portal.call(self.collector.stop)
        with contextlib.suppress(
            concurrent.futures.TimeoutError, concurrent.futures.CancelledError
        ):
            self._future.result(timeout)
        self._portal_cm.__exit__(None, None, None)


def start_collector(
    *,
    db: Database | None = None,
    verify: ssl.SSLContext | bool = True,
    reporter: Reporter | None = None,
    **settings: Any,
) -> BackgroundCollector:
    """Start a collector on its schedule in a background thread and return its handle.

    ``c = ul.start_collector(monitoring_interval_ms=60_000)``; ``c.status()``; ``c.stop()``.
    """
    config = Settings.load(**settings)
    return BackgroundCollector(Collector(default_db(db), config, verify=verify, reporter=reporter))
