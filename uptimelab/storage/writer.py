"""The writer: cycles into PostgreSQL with COPY, behind retries and a circuit breaker, with a spool.

Every database call goes through :class:`~uptimelab.storage.resilience.Resilient` (breaker,
retries, deadlines). What cannot be stored because the database is away goes to the spool of
this database's local state and is replayed (:mod:`.replay`), in order and idempotently, once it
is back: no ping is lost, none is stored twice. What the database refuses for its data is never
retried forever: pings of sites deleted meanwhile are dropped and counted, anything else is
quarantined. The outcome of each write says which of these happened.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Literal, TypeVar

import psycopg
import trio

from ..config import Settings
from ..domain.incidents import Transition
from ..domain.pings import PingResult
from ..domain.sites import ActiveSite
from ..errors import LocalStateError, StoreError
from .copying import PingCopier, ping_row
from .database import Database, migrate
from .incidents import IncidentRules
from .local_state import (
    LocalState,
    load_sites,
    read_identity,
    remember,
    remembered,
    save_sites,
)
from .models import MonitoringCycle
from .replay import TRANSIENT, Replay, replay_spool
from .resilience import Resilient, StoreDataError
from .spool import PingRow, Spool, SpoolFullError

log = logging.getLogger("uptimelab.store")

Outcome = Literal["stored", "spooled", "dropped", "quarantined"]
T = TypeVar("T")


@dataclass
class StoreResult:
    """What became of one cycle's pings.

    ``outcome``: ``stored`` (in the database), ``spooled`` (on disk, to be replayed),
    ``dropped`` (the spool was full: lost, loudly) or ``quarantined`` (refused by the database
    for its data, kept on disk for a human). ``orphans``: pings not stored because their site
    was deleted meanwhile. ``waiting``: segments still in the spool afterwards.
    ``transitions``: what storing them changed in the sites' own states (incidents confirmed
    and resolved, flapping), in time order; empty unless ``stored``.
    """

    outcome: Outcome
    orphans: int = 0
    waiting: int = 0
    transitions: list[Transition] = field(default_factory=list)
    segment: str | None = field(default=None, repr=False)  # the spool segment, when spooled


class Writer:
    """The store of one collector: writes, the reads it needs, the breaker and the spool.

    Blocking work runs in worker threads (one hop per cycle); ``async`` methods are for the
    trio side. Status readers may call :meth:`snapshot` from any thread. Local state (spool,
    site cache) is known once :meth:`open` has learnt which database this is.

    Incidents are kept in the transaction that stores each batch. ``on_transitions``, when set,
    is called on the trio side with the transitions of each batch stored (directly or replayed
    from the spool), after its commit; it must not block (hand them to a queue).
    """

    def __init__(self, db: Database, settings: Settings | None = None) -> None:
        self.db = db
        self.settings = settings or Settings.load(database_url=db.url)
        self.store = Resilient(db.url, self.settings)
        self.breaker = self.store.breaker
        self.local: LocalState | None = None
        self.spool: Spool | None = None
        self.last_write_s = 0.0
        self.last_refresh_s = 0.0
        self.orphaned_pings = 0
        self.errors: list[dict[str, str]] = []
        self._copier = PingCopier(IncidentRules.from_settings(self.settings))
        self.on_transitions: Callable[[list[Transition]], None] | None = None
        self._files = trio.CapacityLimiter(1)
        self._sites_cache: list[ActiveSite] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Writer:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.store.aclose()

    async def open(self) -> None:
        """Connect now (an unreachable database is reported before any probe is sent), learn
        which database this is, and replay what an earlier run left in its spool. With the
        database down, a collector that knows its sites from an earlier run against the same
        database goes on (spooling); one that does not fails here with StoreError.
        """
        data_dir = self.settings.data_dir
        try:
            identity = await self.store.run(self._connect)
        except StoreError:
            known = remembered(data_dir, self.db.url)
            if known is not None:
                self._attach(known)
            if self._cached_sites() is None:
                raise
            log.warning(
                "the database is unreachable; probing the %d cached sites and spooling",
                len(self._cached_sites() or []),
                extra={"component": "store", "category": "unavailable"},
            )
            return
        self._attach(remember(data_dir, self.db.url, identity))
        if replayed := len((await self.replay()).stored):  # said: a summary's "stored" is not all
            log.warning("stored %d spooled cycle(s) an earlier run left", replayed)

    def _attach(self, local: LocalState) -> None:
        self.local = local
        self.spool = Spool(local.spool_dir, max_bytes=self.settings.spool_max_bytes)
        self.spool.clean_partials()

    def _connect(self) -> str:
        """Reach the database, bring its schema up to date (a collector started while the
        database was down migrates here, once it is back) and read its identity."""
        conn = self.store.connection()
        migrate(conn)
        return read_identity(conn)

    def close(self) -> None:
        """Close the connection (blocking)."""
        self.store.close()

    # -- the cycle path ----------------------------------------------------------------------

    async def transact(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run ``fn`` in one transaction through the breaker and retries. Raises StoreError."""
        return await self.store.run(lambda: self.store.in_transaction(fn))

    async def store_cycle(
        self, cycle: MonitoringCycle | None, pings: Sequence[PingResult]
    ) -> StoreResult:
        """Store a cycle (pings and cycle row in one transaction) or a batch of pings (no
        cycle row), or spool it.

        Shielded: a cancelled collector still finishes the write it started. A backlog in the
        spool is replayed first, so that cycles reach the database in order.
        """
        rows = [ping_row(p) for p in pings]
        with trio.CancelScope(shield=True):
            result = await self._store_or_spool(cycle, rows)
        result.waiting = 0 if self.spool is None else len(self.spool.segments())
        return result

    async def _store_or_spool(
        self, cycle: MonitoringCycle | None, rows: list[PingRow]
    ) -> StoreResult:
        spool = self._spool()
        if not spool.segments():
            try:
                orphans = await self._write_now(cycle, rows)
            except TRANSIENT as exc:
                self._note("store", "write", exc)
                return await self._to_spool(cycle, rows)
            except StoreError as exc:
                self._note("store", "refused", exc)
                segment = await trio.to_thread.run_sync(
                    spool.append, cycle, rows, limiter=self._files
                )
                spool.quarantine(segment, str(exc))
                return StoreResult("quarantined")
            # Stored as soon as the batch was complete: not a replay, however long the batch
            # took (a --once cycle's pings wait for its end).
            now = dt.datetime.now(dt.UTC)
            fresh = [replace(t, stored_at=now) for t in self._copier.transitions]
            transitions = self._publish(fresh)
            await self._refresh_stats(list({r[0] for r in rows}))
            return StoreResult("stored", orphans=orphans, transitions=transitions)
        spooled = await self._to_spool(cycle, rows)
        replay = await self.replay()
        if spooled.outcome == "spooled" and spooled.segment in replay.stored:
            return StoreResult("stored", orphans=replay.orphans, transitions=replay.transitions)
        return spooled

    async def _write_now(self, cycle: MonitoringCycle | None, rows: list[PingRow]) -> int:
        """COPY straight into pings; when the database refuses the data (a site deleted while
        the cycle ran), once more through the staged path, which drops and counts orphans."""
        try:
            await self.store.run(lambda: self._write(cycle, rows, replay=False))
        except StoreDataError:
            return await self.store.run(lambda: self._write(cycle, rows, replay=True))
        return 0

    async def replay(self) -> Replay:
        """Store spooled cycles, oldest first, each deleted after its commit. A transient fault
        stops it (the rest waits for the next try); a segment the database refuses, or one that
        is damaged, is quarantined and the next one goes on. Another collector of the same
        database replaying meanwhile makes this a no-op."""
        if self.spool is None:
            return Replay()
        done, sites = await replay_spool(
            self.spool, self._store_replayed, note=self._note, files=self._files
        )
        if done.stored:
            log.info(
                "replayed %d spooled cycle(s)",
                len(done.stored),
                extra={"component": "spool", "category": "replay"},
            )
            await self._refresh_stats(list(sites))
        return done

    async def _store_replayed(
        self, cycle: MonitoringCycle | None, rows: list[PingRow]
    ) -> tuple[int, list[Transition]]:
        """Store one spooled batch (staged: orphans dropped and counted) and hand its
        transitions on; returns the orphans and the transitions."""
        orphans = await self.store.run(functools.partial(self._write, cycle, rows, replay=True))
        return orphans, self._publish(self._copier.transitions)

    async def _to_spool(self, cycle: MonitoringCycle | None, rows: list[PingRow]) -> StoreResult:
        try:
            segment = await trio.to_thread.run_sync(
                self._spool().append, cycle, rows, limiter=self._files
            )
        except SpoolFullError as exc:
            self._note("spool", "full", exc)
            return StoreResult("dropped")
        except (OSError, LocalStateError) as exc:  # a full disk, a data dir made read-only
            log.error(
                "cannot spool %d pings, they are NOT stored: %s",
                len(rows),
                exc,
                extra={"component": "spool", "category": "unwritable"},
            )
            self._note("spool", "unwritable", exc)
            return StoreResult("dropped")
        return StoreResult("spooled", segment=segment.path.name)

    def _publish(self, transitions: list[Transition]) -> list[Transition]:
        """Hand a committed batch's transitions to ``on_transitions``; returns them."""
        if transitions and self.on_transitions is not None:
            self.on_transitions(list(transitions))
        return list(transitions)

    def _spool(self) -> Spool:
        if self.spool is None:
            raise StoreError("the writer is not open: no database was reached yet")
        return self.spool

    async def _refresh_stats(self, site_ids: list[uuid.UUID]) -> None:
        """Upsert site_stats for these sites. The pings are committed already: a failure is
        logged, never raised, so that it cannot stop the collector."""
        # Per batch, not per minute (measured 2026-11-30): a fleet on a cadence of a minute or
        # more touches each site at most once a minute, so a minute's refresh has as many sites
        # to do as its 60 batches together, and the cost is per site: 60 batches of 1 000 sites
        # took 3.79 s against 3.59 s for one call of all 60 000 (1.05x, two hours of rolled-up
        # history, benchmarks/stats_refresh_cadence.py). With pings in the current hour it is
        # per site x pings of the hour (only_sites is an array filter on every raw ping: 300
        # sites over 53 000 pings took 1.9 s), so one call a minute would stall the writer for
        # the whole minute's sum. README "Many collectors" has the figures.
        if not site_ids:
            return
        started = time.perf_counter()
        try:
            await self.store.run(
                lambda: self.store.in_transaction(
                    lambda conn: conn.execute(
                        "SELECT uptimelab_refresh_site_stats(now(), %s)", (site_ids,)
                    )
                )
            )
        except StoreError as exc:
            self._note("stats", "refresh", exc)
            return
        self.last_refresh_s = time.perf_counter() - started

    # -- reads the collector needs -----------------------------------------------------------

    async def load_sites(
        self, query: Callable[[psycopg.Connection[Any]], list[ActiveSite]]
    ) -> list[ActiveSite]:
        """Run ``query`` for the active sites; with the database unavailable, the last known list
        of this database (kept on disk too, so that a restarted collector can go on). Raises
        StoreError when there is none."""
        return (await self.load_sites_or_cached(query))[0]

    async def load_sites_or_cached(
        self, query: Callable[[psycopg.Connection[Any]], list[ActiveSite]]
    ) -> tuple[list[ActiveSite], bool]:
        """:meth:`load_sites`, and whether the list is the last known one (the database away)."""
        try:
            sites = await self.store.run(lambda: self.store.in_transaction(query))
        except StoreError as exc:
            cached = self._cached_sites()
            if cached is None:
                raise
            self._note("store", "sites", exc)
            return cached, True
        await trio.to_thread.run_sync(self._cache_sites, sites, limiter=self._files)
        return sites, False

    def _cache_sites(self, sites: list[ActiveSite]) -> None:
        if self._sites_cache != sites and self.local is not None:
            # The sites that did not change stay the objects kept before, which the schedule
            # keeps too: otherwise each change of the list made a second copy of every site.
            kept = {s.id: s for s in self._sites_cache or ()}
            self._sites_cache = [kept.get(s.id, s) if kept.get(s.id) == s else s for s in sites]
            try:
                save_sites(self.local, self._sites_cache)
            except (OSError, LocalStateError) as exc:  # the cache is a convenience
                self._note("store", "site cache", exc)

    def _cached_sites(self) -> list[ActiveSite] | None:
        if self._sites_cache is None and self.local is not None:
            self._sites_cache = load_sites(self.local)
        return self._sites_cache

    # -- the blocking half -------------------------------------------------------------------

    def _write(
        self, cycle: MonitoringCycle | None, rows: Sequence[PingRow], *, replay: bool
    ) -> int:
        """Store ``rows`` (and the cycle row) in one transaction; returns the orphaned pings
        left out (of sites deleted meanwhile: only a replay, staged, looks for them)."""
        started = time.perf_counter()
        orphans = self._copier.write(self.store.connection(), cycle, rows, replay=replay)
        self.last_write_s = time.perf_counter() - started
        if orphans:
            self.orphaned_pings += orphans
            log.warning(
                "dropped %d pings of %s: their sites were deleted",
                orphans,
                "a batch" if cycle is None else f"cycle {cycle.id}",
                extra={"component": "store", "category": "orphans"},
            )
        return orphans

    def write_cycle(self, cycle: MonitoringCycle, pings: Sequence[PingResult]) -> None:
        """Blocking, no breaker or spool: store one cycle now (history writers, benchmarks)."""
        self.store.locked(lambda: self._write(cycle, [ping_row(p) for p in pings], replay=False))

    def write_rows(self, rows: Sequence[PingRow], days: set[dt.date]) -> None:
        """Blocking, no breaker or spool: store ping rows (tuples in PING_COLUMNS order, e.g. a
        history import) in one transaction, through the same COPY as a cycle."""
        self.store.locked(lambda: self._copier.write_rows(self.store.connection(), rows, days))

    # -- status ------------------------------------------------------------------------------

    def _note(self, component: str, category: str, exc: BaseException) -> None:
        log.warning(
            "%s %s failed: %s",
            component,
            category,
            exc,
            extra={"component": component, "category": category},
        )
        self.errors = [
            *self.errors[-199:],
            {
                "at": dt.datetime.now(dt.UTC).isoformat(),
                "component": component,
                "category": category,
                "message": str(exc)[:300],
            },
        ]

    def snapshot(self) -> dict[str, Any]:
        """Breaker, spool backlog, orphaned pings and recent errors, for status and health."""
        return {
            "last_write_s": round(self.last_write_s, 4),
            "last_refresh_s": round(self.last_refresh_s, 4),
            "breaker": self.breaker.snapshot(),
            "spool": None if self.spool is None else self.spool.backlog(),
            "orphaned_pings": self.orphaned_pings,
            "errors": list(self.errors),
        }
