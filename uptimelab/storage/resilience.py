"""Calls to a database that may be away: one connection, a circuit breaker, retries with backoff
(stamina), and deadlines that hold even when the server stops answering mid-call.

psycopg's async API runs only on asyncio, so the trio side hands each blocking operation to a
worker thread: :meth:`Resilient.run` is one hop per operation (a whole batch), never per row.
Faults are sorted once, here:

    StoreUnavailableError  connection refused or lost, timeouts: retried, counted by the breaker
    StoreDataError         the database answered and refused the data (a foreign key to a
                           deleted site, a check): never retried, and not a failure of the database
    StoreError             anything else the database refused: permanent, not retried
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import stamina
import stamina.instrumentation
import trio
from psycopg.rows import dict_row
from stamina.instrumentation import RetryDetails

from ..config import Settings
from ..domain.redaction import scrub
from ..errors import StoreError
from ..text import one_line
from .breaker import CircuitBreaker

log = logging.getLogger("uptimelab.store")
T = TypeVar("T")


class StoreUnavailableError(StoreError):
    """The database could not be reached or stopped answering (retried, counted by the breaker)."""


class StoreDataError(StoreError):
    """The database refused the data itself (integrity or data error): permanent."""


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


class Resilient:
    """One database connection used from worker threads, behind a breaker and retries."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.settings = settings
        s = settings
        self.breaker = CircuitBreaker(
            failures=s.breaker_failures,
            recovery_s=s.breaker_recovery_ms / 1000,
            successes=s.breaker_successes,
        )
        self.timeout_s = s.db_timeout_ms / 1000
        self._conn: psycopg.Connection[Any] | None = None
        self._limiter = trio.CapacityLimiter(1)
        self._lock = threading.Lock()

    async def run(self, fn: Callable[[], T]) -> T:
        """Run a blocking database operation in a thread: through the breaker, retried with
        backoff, and abandoned (its connection aborted) past the deadline. Raises StoreError."""
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
                    return self.breaker.call(lambda: self.locked(fn), answered=(StoreDataError,))
            raise AssertionError("unreachable: stamina re-raises the last error")

        result: list[T] = []
        with trio.move_on_after(deadline) as scope:
            result.append(
                await trio.to_thread.run_sync(
                    attempt_all, limiter=self._limiter, abandon_on_cancel=True
                )
            )
        if scope.cancelled_caught:
            self.abort()
            self.breaker.record_failure("no answer before the deadline")
            raise StoreUnavailableError(f"the database did not answer within {deadline:.1f} s")
        return result[0]

    def locked(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (blocking) holding the connection, psycopg's errors sorted into ours."""
        if not self._lock.acquire(timeout=self.timeout_s):
            raise StoreUnavailableError("an earlier database call is still stuck")
        try:
            return fn()
        except psycopg.OperationalError as exc:
            self.drop()
            raise StoreUnavailableError(f"database unavailable: {self._said(exc)}") from exc
        except (psycopg.IntegrityError, psycopg.DataError) as exc:
            self.drop()
            raise StoreDataError(f"database refused the data: {self._said(exc)}") from exc
        except psycopg.Error as exc:
            self.drop()
            raise StoreError(f"database error: {self._said(exc)}") from exc
        finally:
            self._lock.release()

    def _said(self, exc: BaseException) -> str:
        """What the database said, in one line, without a password of our URL."""
        return scrub(one_line(exc, 300) or type(exc).__name__, self.url)

    def in_transaction(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        conn = self.connection()
        with conn.transaction():
            return fn(conn)

    def connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            timeout_ms = self.settings.db_timeout_ms
            self._conn = psycopg.connect(
                self.url,
                autocommit=True,  # transactions are explicit: conn.transaction()
                connect_timeout=max(1, round(timeout_ms / 1000)),
                options=f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}",
                keepalives=1,
                keepalives_idle=30,
                row_factory=dict_row,
            )
        return self._conn

    def drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def abort(self) -> None:
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

    def close(self) -> None:
        """Close the connection (blocking)."""
        if self._lock.acquire(timeout=self.timeout_s):
            try:
                self.drop()
            finally:
                self._lock.release()

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self.close, limiter=self._limiter)
