"""The writer: cycles into PostgreSQL with COPY, behind retries and a circuit breaker, with a spool.

psycopg's async API runs only on asyncio, so the trio collector hands each whole cycle to a worker
thread: one hop per cycle, never per ping. Every database call goes through a circuit breaker and
is retried with exponential backoff (stamina) while the database is unavailable; each has a
bounded time (connect timeout, statement timeout, and a client-side deadline that aborts a
connection whose server stopped answering). What cannot be stored goes to the spool and is
replayed, in order and idempotently, once the database is back: no ping is lost, none is stored
twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import psycopg
import stamina
import stamina.instrumentation
import trio
from psycopg.rows import dict_row
from stamina.instrumentation import RetryDetails

from ..config import Settings
from ..domain.pings import PING_COLUMNS, PingResult
from ..domain.sites import ACTIVE_SITE_FIELDS, ActiveSite
from ..errors import StoreError
from .breaker import CircuitBreaker
from .database import Database, migrate
from .models import MonitoringCycle
from .spool import PingRow, Spool, SpoolFullError

log = logging.getLogger("uptimelab.store")
T = TypeVar("T")

CYCLE_COLUMNS = tuple(MonitoringCycle.model_fields)
_COPY_PINGS = f"COPY pings ({', '.join(PING_COLUMNS)}) FROM STDIN"
_INSERT_CYCLE = (
    f"INSERT INTO monitoring_cycles ({', '.join(CYCLE_COLUMNS)}) "
    f"VALUES ({', '.join(f'%({c})s' for c in CYCLE_COLUMNS)}) ON CONFLICT (id) DO NOTHING"
)
# A replayed cycle may already be stored (its commit may have happened just before the client
# lost the connection): stage it, then insert what is not there yet.
_STAGE = "CREATE TEMP TABLE IF NOT EXISTS uptimelab_staged_pings (LIKE pings) ON COMMIT DELETE ROWS"
_COPY_STAGED = f"COPY uptimelab_staged_pings ({', '.join(PING_COLUMNS)}) FROM STDIN"
_INSERT_STAGED = (
    f"INSERT INTO pings ({', '.join(PING_COLUMNS)}) "
    f"SELECT {', '.join(PING_COLUMNS)} FROM uptimelab_staged_pings ON CONFLICT DO NOTHING"
)

Outcome = Literal["stored", "spooled", "dropped"]


def _log_retry(details: RetryDetails) -> None:
    log.warning(
        "database call failed, retry %d in %.1f s: %s",
        details.retry_num,
        details.wait_for,
        details.caused_by,
        extra={"component": "store", "category": "retry"},
    )


# stamina's default hook logs a bare "stamina.retry_scheduled"; say what failed instead.
stamina.instrumentation.set_on_retry_hooks([_log_retry])


class StoreUnavailableError(StoreError):
    """The database could not be reached or stopped answering (retried, counted by the breaker)."""


def ping_row(p: PingResult) -> PingRow:
    """A ping as a row in PING_COLUMNS order."""
    return (
        p.site_id,
        p.checked_at,
        p.status,
        p.status_code,
        p.response_time_ms,
        p.error_category,
        p.error_message,
        p.location,
        p.region_code,
    )


def days_of(rows: Iterable[PingRow]) -> set[dt.date]:
    """The UTC days the rows fall on (each needs its daily partition)."""
    return {r[1].astimezone(dt.UTC).date() for r in rows}


class Writer:
    """The store of one collector: writes, reads it needs, the breaker and the spool.

    Blocking work runs in worker threads under one CapacityLimiter; ``async`` methods are for the
    trio side. Status readers may call :meth:`snapshot` from any thread.
    """

    def __init__(self, db: Database, settings: Settings | None = None) -> None:
        self.db = db
        self.settings = settings or Settings.load(database_url=db.url)
        s = self.settings
        self.breaker = CircuitBreaker(
            failures=s.breaker_failures,
            recovery_s=s.breaker_recovery_ms / 1000,
            successes=s.breaker_successes,
        )
        self.spool = Spool(s.data_dir / "spool", max_bytes=s.spool_max_bytes)
        self.timeout_s = s.db_timeout_ms / 1000
        self.last_write_s = 0.0
        self.last_refresh_s = 0.0
        self.errors: list[dict[str, str]] = []
        self._conn: psycopg.Connection[Any] | None = None
        self._partitions: set[dt.date] = set()
        self._limiter = trio.CapacityLimiter(1)
        self._files = trio.CapacityLimiter(1)
        self._lock = threading.Lock()
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
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self.close, limiter=self._limiter)

    async def open(self) -> None:
        """Connect now (an unreachable database is reported before any probe is sent), and
        replay what an earlier run left in the spool. With the database down, a collector that
        knows its sites from an earlier run goes on (spooling); one that does not fails here.
        """
        self.spool.clean_partials()
        try:
            await self._run(self._ping_database)
        except StoreError:
            if self._cached_sites() is None:
                raise
            log.warning(
                "the database is unreachable; probing the %d cached sites and spooling",
                len(self._cached_sites() or []),
                extra={"component": "store", "category": "unavailable"},
            )
            return
        await self.replay()

    def close(self) -> None:
        """Close the connection (blocking)."""
        if self._lock.acquire(timeout=self.timeout_s):
            try:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
            finally:
                self._lock.release()

    # -- the cycle path ----------------------------------------------------------------------

    async def store_cycle(self, cycle: MonitoringCycle, pings: Sequence[PingResult]) -> Outcome:
        """Store a cycle (pings and cycle row in one transaction), or spool it.

        Shielded: a cancelled collector still finishes the write it started. A backlog in the
        spool is replayed first, so that cycles reach the database in order. Returns where the
        cycle went; ``dropped`` only when the spool is full (a loud error is logged).
        """
        rows = [ping_row(p) for p in pings]
        with trio.CancelScope(shield=True):
            outcome = await self._store_or_spool(cycle, rows)
        return outcome

    async def _store_or_spool(self, cycle: MonitoringCycle, rows: list[PingRow]) -> Outcome:
        if not self.spool.segments():
            try:
                await self._run(lambda: self._write(cycle, rows, replay=False))
            except StoreError as exc:
                self._note("store", "write", exc)
                return await self._to_spool(cycle, rows)
            await self._refresh_stats(list({r[0] for r in rows}))
            return "stored"
        outcome = await self._to_spool(cycle, rows)
        await self.replay()
        return "stored" if not self.spool.segments() and outcome == "spooled" else outcome

    async def replay(self) -> int:
        """Store spooled cycles, oldest first, each deleted after its commit. Stops at the first
        failure (the rest waits for the next try). Returns the cycles replayed."""
        done = 0
        sites: set[uuid.UUID] = set()
        with trio.CancelScope(shield=True):
            for segment in self.spool.segments():
                try:
                    cycle, rows = await trio.to_thread.run_sync(
                        self.spool.read, segment, limiter=self._files
                    )
                except StoreError as exc:
                    self._note("spool", "damaged", exc)
                    self.spool.quarantine(segment)
                    continue
                try:
                    await self._run(functools.partial(self._write, cycle, rows, replay=True))
                except StoreError as exc:
                    self._note("store", "replay", exc)
                    break
                self.spool.remove(segment)
                sites.update(r[0] for r in rows)
                done += 1
            if done:
                log.info(
                    "replayed %d spooled cycle(s)",
                    done,
                    extra={"component": "spool", "category": "replay"},
                )
                await self._refresh_stats(list(sites))
        return done

    async def _to_spool(self, cycle: MonitoringCycle, rows: list[PingRow]) -> Outcome:
        try:
            await trio.to_thread.run_sync(self.spool.append, cycle, rows, limiter=self._files)
        except SpoolFullError as exc:
            self._note("spool", "full", exc)
            return "dropped"
        return "spooled"

    async def _refresh_stats(self, site_ids: list[uuid.UUID]) -> None:
        """Upsert site_stats for these sites. The pings are committed already: a failure is
        logged, never raised, so that it cannot stop the collector."""
        if not site_ids:
            return
        started = time.perf_counter()
        try:
            await self._run(
                lambda: self._in_transaction(
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
        (kept on disk too, so that a restarted collector can go on). Raises StoreError when there
        is none."""
        try:
            sites = await self._run(lambda: self._in_transaction(query))
        except StoreError as exc:
            cached = self._cached_sites()
            if cached is None:
                raise
            self._note("store", "sites", exc)
            return cached
        await trio.to_thread.run_sync(self._cache_sites, sites, limiter=self._files)
        return sites

    def _cache_path(self) -> Path:
        return self.settings.data_dir / "sites-cache.json"

    def _cache_sites(self, sites: list[ActiveSite]) -> None:
        if self._sites_cache == sites:
            return
        self._sites_cache = sites
        path = self._cache_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".part")
        temporary.write_text(json.dumps([dataclasses.asdict(s) for s in sites], default=str))
        os.replace(temporary, path)

    def _cached_sites(self) -> list[ActiveSite] | None:
        if self._sites_cache is None:
            try:
                raw = json.loads(self._cache_path().read_text())
                self._sites_cache = [
                    ActiveSite(
                        **{k: r[k] for k in ACTIVE_SITE_FIELDS if k in r}
                        | {"id": uuid.UUID(r["id"])}
                    )
                    for r in raw
                ]
            except (OSError, ValueError, TypeError, KeyError):
                return None
        return self._sites_cache

    # -- the blocking half -------------------------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        """Run a blocking database operation in a thread: through the breaker, retried with
        backoff, and abandoned (its connection aborted) past the deadline."""
        s = self.settings
        attempts = s.db_retry_attempts
        delays = sum(s.db_retry_delay_ms / 1000 * 2**k for k in range(attempts - 1))
        deadline = self.timeout_s * attempts + delays + 1

        def attempt_all() -> T:
            for attempt in stamina.retry_context(
                on=StoreUnavailableError,
                attempts=attempts,
                timeout=deadline,
                wait_initial=s.db_retry_delay_ms / 1000,
                wait_max=max(s.db_retry_delay_ms / 1000 * 2 ** (attempts - 1), 0.001),
                wait_jitter=0,
                wait_exp_base=2,
            ):
                with attempt:
                    return self.breaker.call(lambda: self._locked(fn))
            raise AssertionError("unreachable: stamina re-raises the last error")

        result: list[T] = []
        with trio.move_on_after(deadline) as scope:
            result.append(
                await trio.to_thread.run_sync(
                    attempt_all, limiter=self._limiter, abandon_on_cancel=True
                )
            )
        if scope.cancelled_caught:
            self._abort_connection()
            self.breaker.record_failure("no answer before the deadline")
            raise StoreUnavailableError(f"the database did not answer within {deadline:.1f} s")
        return result[0]

    def _locked(self, fn: Callable[[], T]) -> T:
        if not self._lock.acquire(timeout=self.timeout_s):
            raise StoreUnavailableError("an earlier database call is still stuck")
        try:
            return fn()
        except psycopg.OperationalError as exc:
            self._drop_connection()
            raise StoreUnavailableError(f"database unavailable: {_one_line(exc)}") from exc
        except psycopg.Error as exc:
            self._drop_connection()
            raise StoreError(f"database error: {_one_line(exc)}") from exc
        finally:
            self._lock.release()

    def _ping_database(self) -> None:
        """Reach the database and bring its schema up to date (a collector started while the
        database was down migrates here, once it is back)."""
        migrate(self._connection())

    def _in_transaction(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        conn = self._connection()
        with conn.transaction():
            return fn(conn)

    def _write(self, cycle: MonitoringCycle, rows: Sequence[PingRow], *, replay: bool) -> None:
        """One transaction: COPY the pings (staged and deduplicated for a replay) and the cycle
        row. Partitions are made first, in short transactions of their own."""
        started = time.perf_counter()
        conn = self._connection()
        self._ensure_partitions(conn, days_of(rows) | _today_and_tomorrow())
        with conn.transaction(), conn.cursor() as cur:
            if replay:
                cur.execute(_STAGE)
                _copy_rows(cur, _COPY_STAGED, rows)
                cur.execute(_INSERT_STAGED)
            else:
                _copy_rows(cur, _COPY_PINGS, rows)
            cur.execute(_INSERT_CYCLE, cycle.model_dump())
        self.last_write_s = time.perf_counter() - started

    def write_cycle(self, cycle: MonitoringCycle, pings: Sequence[PingResult]) -> None:
        """Blocking, no breaker or spool: store one cycle now (history writers, benchmarks)."""
        self._locked(lambda: self._write(cycle, [ping_row(p) for p in pings], replay=False))

    def write_rows(self, rows: Sequence[PingRow], days: set[dt.date]) -> None:
        """Blocking, no breaker or spool: store ping rows (tuples in PING_COLUMNS order, e.g. a
        history import) in one transaction, through the same COPY as a cycle."""

        def write() -> None:
            conn = self._connection()
            self._ensure_partitions(conn, days)
            with conn.transaction(), conn.cursor() as cur:
                _copy_rows(cur, _COPY_PINGS, rows)

        self._locked(write)

    def _ensure_partitions(self, conn: psycopg.Connection[Any], days: set[dt.date]) -> None:
        for day in sorted(days - self._partitions):
            with conn.transaction():
                conn.execute("SELECT uptimelab_ensure_pings_partition(%s)", (day,))
            self._partitions.add(day)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            timeout_ms = self.settings.db_timeout_ms
            self._conn = psycopg.connect(
                self.db.url,
                autocommit=True,  # transactions are explicit: conn.transaction()
                connect_timeout=max(1, round(timeout_ms / 1000)),
                options=f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}",
                keepalives=1,
                keepalives_idle=30,
                row_factory=dict_row,
            )
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def _abort_connection(self) -> None:
        """Shut down the socket of a connection whose server stopped answering, so that the
        thread blocked on it wakes up with an error (psycopg cannot be interrupted otherwise)."""
        conn = self._conn
        if conn is None or conn.closed:
            return
        try:
            with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except (OSError, psycopg.Error):
            pass

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
        """Breaker, spool backlog and recent errors, for status and health."""
        return {
            "last_write_s": round(self.last_write_s, 4),
            "last_refresh_s": round(self.last_refresh_s, 4),
            "breaker": self.breaker.snapshot(),
            "spool": self.spool.backlog(),
            "errors": list(self.errors),
        }


def _copy_rows(cur: psycopg.Cursor[Any], statement: str, rows: Iterable[PingRow]) -> None:
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _today_and_tomorrow() -> set[dt.date]:
    today = dt.datetime.now(dt.UTC).date()
    return {today, today + dt.timedelta(days=1)}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
