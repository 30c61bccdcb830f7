"""Cycles, scheduling, concurrency and shutdown.

The shape of a running collector::

    run_until_signal          (signal watcher task + Collector.run)
    └── Collector.run         Writer opened first; then a cycle every interval, fixed cadence
        └── Collector.cycle   read active sites (slowest first) -> probe -> write, one transaction
            └── probing scope: N worker tasks pull sites from one iterator (a sliding window of
                at most max_concurrent_pings pings in flight; never one task per site)

A signal cancels the probing scope: the cycle keeps what was probed, writes it (shielded), and the
collector exits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import ssl
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from ..concurrency import stop_on_signals
from ..config import Settings
from ..domain.pings import PingResult
from ..domain.redaction import redact
from ..domain.sites import ActiveSite, Probeable
from ..errors import CycleInProgressError, UptimelabError
from ..probe import Prober
from ..storage.database import Database
from ..storage.models import MonitoringCycle
from ..storage.sites import active_sites_slowest_first
from ..storage.writer import Writer
from .notifying import notifier_for
from .reporting import CycleSummary, QuietReporter, Reporter, cycle_error
from .state import write_collector_state

if TYPE_CHECKING:
    from ..notify.notifier import Notifier

log = logging.getLogger("uptimelab.collector")

# In one process a cycle never overlaps another (the seed's in-memory lock). A threading lock,
# because a notebook may run a background collector and call collect_once() from another thread.
_CYCLE_LOCK = threading.Lock()
_T = TypeVar("_T")


class Collector:
    """Runs monitoring cycles against one database with one configuration.

    ``verify`` goes to httpx (an ``ssl.SSLContext`` trusts a private CA). Use :meth:`run` for the
    schedule, :meth:`cycle` for one cycle, :meth:`stop` (from trio) to stop after the current ping.
    """

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        verify: ssl.SSLContext | bool = True,
        reporter: Reporter | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.verify = verify
        self.reporter: Reporter = reporter or QuietReporter()
        self.cycles_run = 0
        self.cycles_failed = 0
        self.skipped_starts = 0
        self.last_summary: CycleSummary | None = None
        self.running_since: dt.datetime | None = None
        self.current_cycle_id: uuid.UUID | None = None
        self._stopping = False
        self._probing: trio.CancelScope | None = None
        self._waiting: trio.CancelScope | None = None
        # The schedule's probing scope: separate from a cycle's, since a trigger may run a cycle
        # while the schedule runs (serve --collect), and stop() must reach both.
        self._streaming: trio.CancelScope | None = None
        self._writer: Writer | None = None
        self.notifier: Notifier | None = None  # made by session(), run by the schedule

    # -- control -------------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping

    def stop(self) -> None:
        """Stop probing now; the current cycle writes what it probed. Call from the trio thread."""
        self._stopping = True
        for scope in (self._probing, self._waiting, self._streaming):
            if scope is not None:
                scope.cancel()

    def status(self) -> dict[str, Any]:
        """A JSON-ready snapshot: cycles run, the running cycle, the last summary, and the
        writer's breaker, spool and recent errors."""
        last = self.last_summary
        s = self.settings
        return {
            "location": s.monitoring_location,
            "region_code": s.monitoring_region_code,
            "interval_ms": s.monitoring_interval_ms,
            "cycles_run": self.cycles_run,
            "cycles_failed": self.cycles_failed,
            "skipped_starts": self.skipped_starts,
            "running_since": None if self.running_since is None else self.running_since.isoformat(),
            "current_cycle_id": None
            if self.current_cycle_id is None
            else str(self.current_cycle_id),
            "stopping": self._stopping,
            "last_cycle": None if last is None else last.published(),
            "store": None if self._writer is None else self._writer.snapshot(),
        }

    # -- the schedule --------------------------------------------------------------------------

    async def run(self, *, cycles: int | None = None, dry_run: bool = False) -> None:
        """Run on the schedule until :meth:`stop`: each site at its own cadence, pings stored in
        micro-batches as they come, the fleet shared with the other collectors of this location
        (see :mod:`uptimelab.collector.streaming`).

        With ``cycles`` (or ``dry_run``), run that many rounds of every active site instead, one
        after the other on the default interval's cadence (``collect --once``). The writer
        connects before the first probe is sent.
        """
        if cycles is None and not dry_run:
            async with self.session() as writer:
                if self._stopping:
                    return
                from .streaming import Streaming

                self._streaming = trio.CancelScope()  # stop() cancels it
                self.running_since = dt.datetime.now(dt.UTC)
                try:
                    await Streaming(self, writer).run(self._streaming)
                finally:
                    self._streaming = None
            return
        await self._run_cycles(cycles=cycles, dry_run=dry_run)

    async def _run_cycles(self, *, cycles: int | None, dry_run: bool) -> None:
        """Cycles of every active site on a fixed cadence: cycle k starts at start + k x
        interval; a cycle that overruns skips the starts it missed rather than stacking them. A
        cycle that fails unexpectedly is logged with its traceback, recorded, and the next runs.
        """
        interval = self.settings.monitoring_interval_ms / 1000
        async with contextlib.AsyncExitStack() as stack:
            if not dry_run:
                await stack.enter_async_context(self.session())
            first = trio.current_time()
            slot = 0
            while not self._stopping:
                try:
                    await self.cycle(dry_run=dry_run)
                except CycleInProgressError as exc:
                    self.reporter.note(str(exc))
                except UptimelabError as exc:
                    if cycles is not None:  # a one-off round: our error is the command's error
                        raise
                    await self._cycle_failed(exc)
                except Exception as exc:  # noqa: BLE001 - the boundary of one cycle
                    await self._cycle_failed(exc)
                if cycles is not None and self.cycles_run >= cycles:
                    break
                slot, missed = next_slot(first, trio.current_time(), interval, slot)
                if missed:
                    self.skipped_starts += missed
                    self.reporter.note(
                        f"the cycle overran the {interval:g} s interval; skipped {missed} start(s)"
                    )
                with trio.CancelScope() as self._waiting:
                    if not self._stopping:
                        await trio.sleep_until(first + slot * interval)

    async def probe(self, prober: Prober, site: Probeable) -> PingResult | None:
        """One ping of ``site``; None when our own client failed (a collector fault, not the
        site's downtime): logged with its traceback, counted by the caller, and the rest of the
        cycle goes on."""
        try:
            ping: PingResult | None = await prober.ping(site)
        except Exception as exc:  # noqa: BLE001 - one site never costs the cycle
            log.error(
                "collector fault probing %s: %s",
                redact(site.url),
                exc,
                exc_info=exc,
                extra={"component": "collector", "category": "fault", "site": site.url},
            )
            return None
        return ping

    def round_finished(self, summary: CycleSummary) -> None:
        """A round of the schedule ended (see :mod:`uptimelab.collector.streaming`)."""
        self.cycles_run += 1
        self.last_summary = summary
        self.reporter.cycle_finished(summary)
        self.write_state()

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Writer]:
        """Open the writer (connecting first, replaying any spool) for a series of cycles;
        :meth:`run` uses it, and so can code that calls :meth:`cycle` on its own cadence."""
        writer = Writer(self.db, self.settings)
        # The schedule runs the notifier in its nursery; what is left when the session ends is
        # recorded and sent here.
        notifier = self.notifier = notifier_for(writer, self.settings)
        async with writer:
            self._writer = writer
            try:
                yield writer
            finally:
                await notifier.flush()
                self.write_state()
                self._writer = None

    async def _cycle_failed(self, exc: Exception) -> None:
        """Log a failed cycle with its traceback and record it, so that the next one can run."""
        log.error(
            "cycle failed: %s",
            exc,
            # Our own errors say what happened in one line; anything else is a bug to trace.
            exc_info=None if isinstance(exc, UptimelabError) else exc,
            extra={"component": "collector", "category": type(exc).__name__},
        )
        self.cycles_run += 1
        self.cycles_failed += 1
        now = dt.datetime.now(dt.UTC)
        s = self.settings
        record = MonitoringCycle(
            id=uuid.uuid4(),
            started_at=self.running_since or now,
            finished_at=now,
            location=s.monitoring_location,
            region_code=s.monitoring_region_code,
            error=f"{type(exc).__name__}: {exc}"[:1000],
        )
        self.running_since = None
        if self._writer is not None:
            await self._writer.store_cycle(record, [])
        self.reporter.note(f"cycle failed: {exc}")

    # -- one cycle -----------------------------------------------------------------------------

    async def cycle(
        self, *, dry_run: bool = False, sites: Sequence[Probeable] | None = None
    ) -> CycleSummary:
        """Probe every active site (or the given ``sites``) once and store the pings (unless
        ``dry_run``). With the database unavailable the pings go to the spool.

        Raises CycleInProgressError when another cycle runs in this process, StoreError when the
        sites cannot be read and none are known from before.
        """
        if not _CYCLE_LOCK.acquire(blocking=False):
            raise CycleInProgressError("a monitoring cycle is already running; nothing was done")
        try:
            if dry_run or self._writer is not None:
                return await self._cycle(dry_run, sites)
            # A single cycle outside a session: a writer for just this cycle.
            async with self.session():
                return await self._cycle(dry_run, sites)
        finally:
            _CYCLE_LOCK.release()

    async def _cycle(self, dry_run: bool, given: Sequence[Probeable] | None) -> CycleSummary:
        s = self.settings
        started_at = dt.datetime.now(dt.UTC)
        cycle_id = self.current_cycle_id = uuid.uuid4()
        self.running_since = started_at
        t0 = trio.current_time()
        sites = given if given is not None else await self._load_sites()
        number = self.cycles_run + 1
        self.reporter.cycle_started(number, len(sites))
        pings: list[PingResult] = []
        faults: list[Probeable] = []
        with trio.CancelScope() as self._probing:
            if self._stopping:
                self._probing.cancel()
            async with (
                Prober(
                    location=s.monitoring_location,
                    region_code=s.monitoring_region_code,
                    timeout_ms=s.ping_timeout_ms,
                    verify=self.verify,
                    engine=s.probe_engine,
                    ca_bundle=s.ca_bundle,
                ) as prober,
                trio.open_nursery() as nursery,
            ):
                queue = iter(sites)
                for _ in range(min(s.max_concurrent_pings, len(sites))):
                    nursery.start_soon(self._probe_worker, prober, queue, pings, faults)
        interrupted = self._probing.cancelled_caught
        self._probing = None
        finished_at = dt.datetime.now(dt.UTC)
        up = sum(p.status == "up" for p in pings)
        summary = CycleSummary(
            id=cycle_id,
            started_at=started_at,
            finished_at=finished_at,
            location=s.monitoring_location,
            region_code=s.monitoring_region_code,
            sites_checked=len(pings),
            up=up,
            down=len(pings) - up,
            duration_ms=round((trio.current_time() - t0) * 1000),
            dry_run=dry_run,
            interrupted=interrupted,
            error=cycle_error(interrupted, len(pings), len(sites), len(faults)),
            faults=len(faults),
            by_category=dict(Counter(p.error_category for p in pings if p.error_category)),
            pings=pings,
        )
        if not dry_run and self._writer is not None:
            result = await self._writer.store_cycle(summary.record(), pings)
            summary.stored = result.outcome
            summary.orphans = result.orphans
            summary.spool_waiting = result.waiting
        self.cycles_run += 1
        self.last_summary = summary
        self.running_since = None
        self.current_cycle_id = None
        self.reporter.cycle_finished(summary)
        if not dry_run:
            self.write_state()
        return summary

    async def _probe_worker(
        self,
        prober: Prober,
        queue: Iterator[Probeable],
        pings: list[PingResult],
        faults: list[Probeable],
    ) -> None:
        # Workers share one iterator: trio runs one task at a time, so next() needs no lock.
        for site in queue:
            ping = await self.probe(prober, site)
            if ping is None:
                faults.append(site)
                continue
            pings.append(ping)
            self.reporter.ping_done(site, ping)

    async def _load_sites(self) -> Sequence[ActiveSite]:
        s = self.settings

        def query(conn: Any) -> list[ActiveSite]:
            return active_sites_slowest_first(
                conn,
                timeout_ms=s.ping_timeout_ms,
                lookback_s=2 * s.monitoring_interval_ms // 1000 + 3600,
            )

        if self._writer is not None:
            return await self._writer.load_sites(query)

        def direct() -> list[ActiveSite]:
            with self.db.connect() as conn:
                return query(conn)

        return await trio.to_thread.run_sync(direct)

    def write_state(self) -> None:
        """Publish this collector's state (breaker, spool, last cycle) for status and health,
        which may run in other processes."""
        local = None if self._writer is None else self._writer.local
        if local is not None:  # the state belongs to one database, like the spool
            write_collector_state(local.directory, self.status())


def next_slot(first: float, now: float, interval: float, slot: int) -> tuple[int, int]:
    """The next start slot after ``slot`` on the cadence ``first + k * interval`` (seconds), and
    how many starts were missed because ``now`` is already past them."""
    due = max(slot + 1, math.ceil((now - first) / interval))
    return due, due - slot - 1


async def run_until_signal(collector: Collector, **run_kwargs: Any) -> None:
    """Run ``collector`` until SIGINT or SIGTERM; the first signal stops it gracefully (the cycle
    writes what it probed), a second one cancels at once. Main thread only."""

    def on_first(name: str) -> None:
        collector.reporter.note(f"{name}: stopping after writing what was probed")
        collector.stop()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(stop_on_signals, on_first, nursery.cancel_scope)
        await collector.run(**run_kwargs)
        nursery.cancel_scope.cancel()
