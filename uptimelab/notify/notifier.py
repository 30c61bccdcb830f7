"""The notifier: transitions in, one message per transition per channel out, never in the way.

The shape, inside a running collector's nursery::

    Notifier.run
    ├── recording     transitions from a bounded channel (the writer hands them over without
    │                 waiting) -> one database hop per batch: a row per channel, ``pending``, or
    │                 recorded as not to be sent (too old, a maintenance window, flapping): the
    │                 rules are in :mod:`.recording`
    ├── delivering    claims the oldest pending row of each channel when due, sends them (worker
    │                 threads, at most SENDS_AT_ONCE), marks each sent or schedules its retry
    └── reminding     every PERIODIC_S: reminders of incidents still down (NOTIFY_RESEND_MS),
                      certificates expiring within the site's cert_min_days, the sites' channels;
                      what is due is found by :mod:`.reminders`

This module holds the queue and the tasks; what a transition is recorded as and what is due
again are decided in those two, which do not know the notifier.

The table is the queue: a row exists before its message is sent, so delivery is at least once
(a crash between sending and marking it sent repeats that one message) and (key, channel) is
unique, so that a transition reported twice (a replayed spool, another collector) is told once.
A full channel does not make the writer wait: the transitions wait in a bounded overflow that the
recorder empties first; past it they are counted as lost, loudly: logged, and added up in the
notification_losses table with the next batch recorded, where health (in any process) sees them.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import logging
import os
import socket
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
import trio

from ..config import Settings
from ..domain.incidents import Transition
from ..errors import StoreError
from ..storage import notifications as store
from ..text import one_line
from . import recording, reminders
from .channels import Channel
from .messages import Message, MessageType

log = logging.getLogger("uptimelab.notify")
T = TypeVar("T")
Transact = Callable[[Callable[[psycopg.Connection[Any]], T]], Awaitable[T]]

QUEUE_TRANSITIONS = 1000  # between the writer and the recorder
OVERFLOW_TRANSITIONS = 100_000  # waiting beyond a full queue, before any is lost
RECORD_BATCH = 10 * QUEUE_TRANSITIONS  # transitions recorded in one database hop at most
SENDS_AT_ONCE = 4  # worker threads sending at once
LEASE_S = 300.0  # a claimed row is left alone this long (a send is bounded by apprise's timeouts)
MAX_RETRY_S = 600.0
POLL_S = 30.0  # rows recorded by other collectors are seen at least this often
PERIODIC_S = 30.0
FAULT_PAUSE_S = 5.0
DRAIN_S = 10.0  # what a stopping collector gives the notifier to finish


@dataclass
class Outcome:
    """What happened to one claimed row."""

    row: store.Claimed
    error: str | None = None
    permanent: bool = False


@dataclass
class DeliveryState:
    """Counters and the failing channels, for status and tests."""

    recorded: int = 0
    sent: int = 0
    failed_attempts: int = 0
    lost: int = 0
    failing: dict[str, str] = field(default_factory=dict)


@dataclass
class _Lost:
    """Losses not yet added to the notification_losses table."""

    count: int = 0
    first_at: dt.datetime | None = None
    last_at: dt.datetime | None = None
    last_key: str | None = None


class Notifier:
    """Tells people of transitions through apprise. Hand it transitions with :meth:`offer`
    (never blocks); run :meth:`run` in the collector's nursery.

    ``transact`` runs a function in one database transaction in a worker thread (the writer's
    :meth:`~uptimelab.storage.writer.Writer.transact`, or :func:`transact_with` of a Database);
    it raises StoreError. ``queue`` and ``overflow`` bound the transitions waiting to be
    recorded (in the channel, then beyond it).
    """

    def __init__(
        self,
        transact: Transact[Any],
        settings: Settings,
        *,
        periodic_s: float = PERIODIC_S,
        poll_s: float = POLL_S,
        queue: int = QUEUE_TRANSITIONS,
        overflow: int = OVERFLOW_TRANSITIONS,
    ) -> None:
        self.transact = transact
        self.settings = settings
        self.periodic_s = periodic_s
        self.poll_s = poll_s
        self.id = uuid.uuid4()  # its row in notification_losses, should it ever lose one
        self.overflow = overflow
        self._lost = _Lost()
        self.global_channels = tuple(Channel(u.get_secret_value()) for u in settings.notify_urls)
        self.channels: dict[str, Channel] = {c.shown: c for c in self.global_channels}
        self.state = DeliveryState()
        self._send, self._receive = trio.open_memory_channel[Transition](queue)
        self._overflow: deque[Transition] = deque()
        self._unrecorded: deque[Transition] = deque()  # taken by the recorder, not yet recorded
        self._recorded = trio.Event()
        self._limiter = trio.CapacityLimiter(SENDS_AT_ONCE)
        self.reminded = trio.Event()
        self._idle = trio.Event()
        self.left_pending: int | None = None  # rows still pending after flush; None: not known
        self._offered = 0  # transitions queued (channel, overflow, in a hop) ...
        self._taken = 0  # ... and those recorded (or skipped: their site is gone)

    # -- the way in ----------------------------------------------------------------------------

    def offer(self, transitions: Iterable[Transition]) -> None:
        """Queue ``transitions`` to be recorded and told; never waits (call from trio)."""
        for transition in transitions:
            self._offered += 1
            if not self._overflow:
                try:
                    self._send.send_nowait(transition)
                    continue
                except trio.WouldBlock:
                    pass
            if len(self._overflow) + len(self._unrecorded) >= self.overflow:
                self.state.lost += 1
                self._taken += 1
                lost = self._lost
                lost.count += 1
                lost.last_at = dt.datetime.now(dt.UTC)
                lost.first_at = lost.first_at or lost.last_at
                lost.last_key = transition.key
                log.error(
                    "notification queue full: transition %s NOT recorded (%d lost)",
                    transition.key,
                    self.state.lost,
                    extra={"component": "notify", "category": "lost"},
                )
                continue
            self._overflow.append(transition)

    # -- the run -------------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Record, deliver and remind until cancelled. Rows left pending are sent by the next
        run (or another collector with the same channel)."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._loop, "recording", self._record_next)
            nursery.start_soon(self._loop, "delivering", self._deliver_due)
            nursery.start_soon(self._loop, "reminding", self._remind)
            task_status.started()

    async def drain(self, timeout_s: float = DRAIN_S) -> None:
        """Record what is queued and send what is due now, for at most ``timeout_s`` seconds
        (shielded: called as a collector stops). What is left waits in the table for the next
        run; a retry that is not due yet is not waited for."""
        with trio.CancelScope(shield=True), trio.move_on_after(timeout_s):
            self._idle = idle = trio.Event()
            self._recorded.set()  # the delivery loop looks again now
            await idle.wait()

    async def flush(self, timeout_s: float = DRAIN_S) -> None:
        """Where the notifier is not running (a one-off round, or after the schedule's nursery
        closed): run it long enough to :meth:`drain` what was offered and the retries due within
        ``timeout_s``; :attr:`left_pending` says how many rows of its channels still wait.
        Nothing offered, nothing done (a collector whose database is away stops at once)."""
        if self._taken == self._offered:
            return
        deadline = trio.current_time() + timeout_s
        with trio.CancelScope(shield=True), trio.move_on_after(timeout_s):
            async with trio.open_nursery() as nursery:
                await nursery.start(self.run)
                while True:
                    await self.drain(deadline - trio.current_time())
                    try:
                        ask = functools.partial(store.pending, channels=list(self.channels))
                        left, wait = await self.transact(ask)
                    except StoreError:  # not known; the rows wait for the next run all the same
                        break
                    self.left_pending = left
                    if not left or wait is None or trio.current_time() + wait >= deadline:
                        break
                    await trio.sleep(max(wait, 0.0))  # a retry's backoff, then drain again
                nursery.cancel_scope.cancel()

    async def _loop(self, name: str, step: Callable[[], Awaitable[None]]) -> None:
        # A notifier's fault never stops the collector: logged, and the step runs again.
        while True:
            try:
                await step()
            except StoreError as exc:
                log.warning(
                    "notifications: %s failed: %s",
                    name,
                    exc,
                    extra={"component": "notify", "category": name},
                )
                await trio.sleep(FAULT_PAUSE_S)
            except Exception as exc:  # noqa: BLE001 - the boundary of the notifier
                log.error(
                    "notifications: %s failed: %s",
                    name,
                    exc,
                    exc_info=exc,
                    extra={"component": "notify", "category": name},
                )
                await trio.sleep(FAULT_PAUSE_S)

    # -- recording -----------------------------------------------------------------------------

    async def _record_next(self) -> None:
        # Oldest first: what a failed hop left, then the channel, then the overflow (offer puts
        # a transition in the overflow only while it is not empty or the channel is full).
        if not self._unrecorded:
            self._unrecorded.append(await self._receive.receive())
        while True:
            try:
                self._unrecorded.append(self._receive.receive_nowait())
            except trio.WouldBlock:
                break
        while self._overflow and len(self._unrecorded) < RECORD_BATCH:
            self._unrecorded.append(self._overflow.popleft())
        batch = list(itertools.islice(self._unrecorded, RECORD_BATCH))
        now = dt.datetime.now(dt.UTC)
        losses = self._losses()
        # A failure leaves the batch where it is: recorded on the next try, not lost. The
        # losses so far go with it (in the same transaction), so that health sees them.
        new, channels = await self.transact(
            lambda conn: recording.record(
                conn, batch, now, self.settings, self.global_channels, losses
            )
        )
        if losses is not None:
            self._lost.count -= losses.lost  # more may have been lost during the hop
            if not self._lost.count:
                self._lost = _Lost()
        for _ in batch:
            self._unrecorded.popleft()
        self._taken += len(batch)
        for channel in channels:
            self.channels.setdefault(channel.shown, channel)
        self.state.recorded += new
        self._recorded.set()

    def _losses(self) -> store.Losses | None:
        lost = self._lost
        if not lost.count or lost.first_at is None or lost.last_at is None:
            return None
        return store.Losses(
            notifier_id=self.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            location=self.settings.monitoring_location,
            lost=lost.count,
            first_lost_at=lost.first_at,
            last_lost_at=lost.last_at,
            last_key=lost.last_key,
        )

    # -- delivering ----------------------------------------------------------------------------

    async def _deliver_due(self) -> None:
        self._recorded = wake = trio.Event()
        claimed, wait = await self.transact(
            lambda conn: store.claim(
                conn,
                list(self.channels),
                lease_s=LEASE_S,
                max_age_s=self.settings.notify_max_age_ms / 1000,
                why_expired=recording.too_old(self.settings),
            )
        )
        if claimed:
            outcomes = [Outcome(row) for row in claimed]
            async with trio.open_nursery() as nursery:
                for outcome in outcomes:
                    nursery.start_soon(self._send_one, outcome)
            await self.transact(lambda conn: self._settle(conn, outcomes))
            self._count(outcomes)
            return
        if self._taken == self._offered:
            self._idle.set()
        timeout = self.poll_s if wait is None else min(self.poll_s, wait.total_seconds())
        with trio.move_on_after(max(0.0, timeout)):
            await wake.wait()

    async def _send_one(self, outcome: Outcome) -> None:
        from .sender import DeliveryError, UnknownChannelError, deliver  # apprise: heavy

        row = outcome.row
        channel = self.channels[row.channel]
        message = Message(row.title, row.body, _message_type(row.message_type))
        try:
            await trio.to_thread.run_sync(
                deliver, channel, message, limiter=self._limiter, abandon_on_cancel=True
            )
        except DeliveryError as exc:
            outcome.error = str(exc)
            outcome.permanent = isinstance(exc, UnknownChannelError)

    def _settle(self, conn: psycopg.Connection[Any], outcomes: Sequence[Outcome]) -> None:
        """Mark each claimed row sent, failed for good, or due again after its backoff."""
        for outcome in outcomes:
            row = outcome.row
            if outcome.error is None:
                store.sent(conn, row.id)
            elif outcome.permanent:
                store.failed(conn, row.id, outcome.error)
            else:
                store.retry(conn, row.id, outcome.error, self.retry_delay_s(row.attempts))

    def _count(self, outcomes: Sequence[Outcome]) -> None:
        """After the settling hop, on the trio side: the counters and the log lines."""
        for outcome in outcomes:
            row = outcome.row
            if outcome.error is None:
                self.state.sent += 1
                self.state.failing.pop(row.channel, None)
                continue
            self.state.failed_attempts += 1
            self.state.failing[row.channel] = outcome.error
            delay = None if outcome.permanent else self.retry_delay_s(row.attempts)
            log.warning(
                "notification %s not delivered (attempt %d%s): %s",
                row.key,
                row.attempts,
                "; given up" if delay is None else f"; next in {delay:g} s",
                one_line(outcome.error, 300),
                extra={"component": "notify", "category": "delivery"},
            )

    def retry_delay_s(self, attempts: int) -> float:
        """Seconds before attempt ``attempts + 1``: NOTIFY_RETRY_DELAY_MS doubled per attempt,
        at most MAX_RETRY_S."""
        first = self.settings.notify_retry_delay_ms / 1000
        return float(min(MAX_RETRY_S, first * 2 ** min(attempts - 1, 30)))

    # -- reminding -----------------------------------------------------------------------------

    async def _remind(self) -> None:
        now = dt.datetime.now(dt.UTC)
        due, urls = await self.transact(
            lambda conn: reminders.due(conn, now, self.settings.notify_resend_ms)
        )
        for url in urls:
            channel = Channel(url)
            self.channels.setdefault(channel.shown, channel)
        self.offer(due)
        self.reminded.set()  # a round of reminders is done (tests and status wait on it)
        self.reminded = trio.Event()
        await trio.sleep(self.periodic_s)


def _message_type(text: str) -> MessageType:
    for known in ("info", "success", "warning", "failure"):
        if text == known:
            return known
    return "info"


def transact_with(db: Any, timeout_ms: int | None = None) -> Transact[Any]:
    """A ``transact`` for :class:`Notifier` over a :class:`~uptimelab.storage.database.Database`:
    a new connection per call, in a worker thread."""

    async def transact(fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        def call() -> T:
            with db.connect(timeout_ms=timeout_ms) as conn:
                return fn(conn)

        return await trio.to_thread.run_sync(call)

    return transact
