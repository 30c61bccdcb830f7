"""The writer: each cycle's pings and its cycle row in one transaction, with COPY, in a thread.

psycopg's async API runs only on asyncio, so the trio collector hands each whole cycle to a worker
thread: one hop per cycle, never per ping. The writer keeps one connection for its life.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

import psycopg
import trio

from .db import Database
from .errors import StoreError
from .models import MonitoringCycle, Ping

log = logging.getLogger("uptimelab.store")

PING_COLUMNS = (
    "site_id",
    "checked_at",
    "status",
    "status_code",
    "response_time_ms",
    "error_category",
    "error_message",
    "location",
    "region_code",
)
CYCLE_COLUMNS = tuple(MonitoringCycle.model_fields)
STATEMENT_TIMEOUT_MS = 120_000
_COPY_PINGS = f"COPY pings ({', '.join(PING_COLUMNS)}) FROM STDIN"
_INSERT_CYCLE = (
    f"INSERT INTO monitoring_cycles ({', '.join(CYCLE_COLUMNS)}) "
    f"VALUES ({', '.join(f'%({c})s' for c in CYCLE_COLUMNS)})"
)


def days_of(pings: Iterable[Ping]) -> set[dt.date]:
    """The UTC days the pings fall on (each needs its daily partition)."""
    return {p.checked_at.astimezone(dt.UTC).date() for p in pings}


class Writer:
    """Writes cycles to one database; the blocking half runs in threads under one limiter."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: psycopg.Connection[Any] | None = None
        self._partitions: set[dt.date] = set()
        self._limiter = trio.CapacityLimiter(1)
        self._lock = threading.Lock()
        self.last_write_s = 0.0
        self.last_refresh_s = 0.0

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
        """Connect now, so that an unreachable database fails before any probe is sent."""
        await trio.to_thread.run_sync(self._connection, limiter=self._limiter)

    async def write(self, cycle: MonitoringCycle, pings: Sequence[Ping]) -> None:
        """Store ``pings`` and ``cycle`` in one transaction. Shielded: a cancelled collector still
        finishes the write it started. Raises StoreError."""
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self.write_cycle, cycle, pings, limiter=self._limiter)

    def write_cycle(self, cycle: MonitoringCycle, pings: Sequence[Ping]) -> None:
        """Blocking: one transaction with COPY of the pings and the cycle row, then the stats
        refresh for the cycle's sites in a transaction of its own."""
        with self._lock:
            started = time.perf_counter()
            conn = self._connection()
            try:
                self._ensure_partitions(conn, days_of(pings) | _today_and_tomorrow())
                with conn.transaction(), conn.cursor() as cur:
                    _copy_rows(cur, map(ping_row, pings))
                    cur.execute(_INSERT_CYCLE, cycle.model_dump())
            except psycopg.Error as exc:
                self._drop_broken(conn)
                raise StoreError(f"cannot store the cycle's {len(pings)} pings: {exc}") from exc
            self.last_write_s = time.perf_counter() - started
            self._refresh_stats(conn, list({p.site_id for p in pings}))

    def write_rows(self, rows: Sequence[PingRow], days: set[dt.date]) -> None:
        """Blocking: store ping rows (tuples in PING_COLUMNS order, e.g. a history import) in one
        transaction, through the same COPY as a cycle. ``days`` are the UTC days they cover."""
        with self._lock:
            conn = self._connection()
            try:
                self._ensure_partitions(conn, days)
                with conn.transaction(), conn.cursor() as cur:
                    _copy_rows(cur, rows)
            except psycopg.Error as exc:
                self._drop_broken(conn)
                raise StoreError(f"cannot store {len(rows)} pings: {exc}") from exc

    def _refresh_stats(self, conn: psycopg.Connection[Any], site_ids: list[uuid.UUID]) -> None:
        """Upsert site_stats for the cycle's sites (the seed's real-time updates).

        The pings are already committed: a failing refresh is logged, never raised, so that it
        cannot stop the collector.
        """
        if not site_ids:
            return
        started = time.perf_counter()
        try:
            with conn.transaction():
                conn.execute("SELECT uptimelab_refresh_site_stats(now(), %s)", (site_ids,))
        except psycopg.Error as exc:
            self._drop_broken(conn)
            log.warning("stats refresh failed (the cycle's pings are stored): %s", exc)
            return
        self.last_refresh_s = time.perf_counter() - started

    def _ensure_partitions(self, conn: psycopg.Connection[Any], days: set[dt.date]) -> None:
        """Create missing daily partitions in their own short transactions, before the write."""
        for day in sorted(days - self._partitions):
            with conn.transaction():
                conn.execute("SELECT uptimelab_ensure_pings_partition(%s)", (day,))
            self._partitions.add(day)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(
                    self.db.url,
                    autocommit=True,  # transactions are explicit: conn.transaction()
                    connect_timeout=10,
                    options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                )
            except psycopg.OperationalError as exc:
                raise StoreError(
                    f"cannot connect to {self.db.masked_url}: {str(exc).strip().splitlines()[0]}"
                ) from exc
        return self._conn

    def _drop_broken(self, conn: psycopg.Connection[Any]) -> None:
        if conn.broken or conn.closed:
            self._conn = None

    def close(self) -> None:
        """Close the connection (blocking)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


PingRow = tuple[Any, ...]


def ping_row(p: Ping) -> PingRow:
    """A Ping as a row in PING_COLUMNS order."""
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


def _copy_rows(cur: psycopg.Cursor[Any], rows: Iterable[PingRow]) -> None:
    with cur.copy(_COPY_PINGS) as copy:
        for row in rows:
            copy.write_row(row)


def _today_and_tomorrow() -> set[dt.date]:
    today = dt.datetime.now(dt.UTC).date()
    return {today, today + dt.timedelta(days=1)}
