"""The collector on its schedule: each site at its own cadence, pings stored as they come.

The shape of a running collector::

    Streaming.run                 Prober, and one nursery
    ├── fleet                     heartbeat every lease/3: lease a fair share of the location's
    │                             sites, reload them, learn of probes made elsewhere
    ├── writer                    micro-batches: one COPY about every second (or 2 000 pings);
    │                             a round row per default interval; spool when the database is away
    ├── maintenance               with RETENTION_DAYS: partitions ahead, prune, stats, every
    │                             MAINTAIN_INTERVAL_MS in a thread (collector/maintenance.py)
    └── probing scope             (a signal cancels it; the writer then stores what was probed)
        ├── dispatcher            sends each site when it is due, most overdue first
        └── N workers             probe, tell the schedule, hand the ping to the writer

Every channel is bounded: the dispatcher waits for a free worker (at most max_concurrent_pings
pings in flight), the workers for the writer.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

import trio

from ..domain.pings import PingResult
from ..domain.sites import ActiveSite
from ..errors import StoreError
from ..probe import Prober
from ..storage import fleet
from ..storage.writer import Writer
from .maintenance import maintain_on_schedule
from .reporting import CycleSummary, Round, cycle_error
from .schedule import Schedule
from .uptime_policy import adopt_uptime_settings

if TYPE_CHECKING:
    from .collector import Collector

log = logging.getLogger("uptimelab.collector")

BATCH_PINGS = 2000
BATCH_SECONDS = 1.0
SETTLE_S = 2.0  # how long a collector's first load waits for the peers started with it
LEARN_EVERY_S = 2.0  # how soon probes made elsewhere (a trigger, a hand-over) are seen


class Streaming:
    """Runs one collector on its schedule until its probing scope is cancelled."""

    def __init__(self, collector: Collector, writer: Writer) -> None:
        self.collector = collector
        self.writer = writer
        self.settings = collector.settings
        self.id = uuid.uuid4()
        self.schedule = Schedule(self.settings.monitoring_interval_ms / 1000)
        self.held: frozenset[int] | None = None
        self.round = self._new_round()
        self.rounds = 0
        self._changed = trio.Event()
        self._learnt_since = dt.datetime.now(dt.UTC)
        # The sites_version (sql/022) the sites held were read at; None: reload at the next beat.
        self._sites_version: int | None = None
        self.interrupted = False
        self.store_lag_s = 0.0
        self._published: tuple[object, ...] = ("closed", "stored", 0)

    # -- the run -------------------------------------------------------------------------------

    async def run(self, probing: trio.CancelScope) -> None:
        s = self.settings
        sites_send, sites_receive = trio.open_memory_channel[tuple[ActiveSite, float]](0)
        pings_send, pings_receive = trio.open_memory_channel[tuple[PingResult, float]](
            s.max_concurrent_pings
        )
        written = trio.Event()
        try:
            async with (
                Prober(
                    location=s.monitoring_location,
                    region_code=s.monitoring_region_code,
                    timeout_ms=s.ping_timeout_ms,
                    verify=self.collector.verify,
                    engine=s.probe_engine,
                    ca_bundle=s.ca_bundle,
                ) as prober,
                trio.open_nursery() as nursery,
            ):
                await nursery.start(self._fleet)
                nursery.start_soon(adopt_uptime_settings, self.collector, self.writer, self.id)
                nursery.start_soon(self._learning)
                if self.collector.notifier is not None:
                    nursery.start_soon(self.collector.notifier.run)
                if s.retention_days is not None:
                    nursery.start_soon(maintain_on_schedule, self.collector)
                nursery.start_soon(self._writer, pings_receive, written)
                self.collector.reporter.cycle_started(1, self._held())
                with probing:
                    async with trio.open_nursery() as workers, pings_send, sites_receive:
                        workers.start_soon(self._dispatch, sites_send)
                        for _ in range(s.max_concurrent_pings):
                            workers.start_soon(
                                self._worker, prober, sites_receive.clone(), pings_send.clone()
                            )
                self.interrupted = probing.cancelled_caught
                # The writer drains what was probed, closes the round and returns; then the fleet.
                with trio.CancelScope(shield=True):
                    await written.wait()
                nursery.cancel_scope.cancel()
        finally:
            # Also when a second signal cancels at once: the sites go back now, not at lease end.
            await self._stopped()

    async def _stopped(self) -> None:
        with trio.CancelScope(shield=True):
            try:
                await self.writer.transact(lambda conn: fleet.stopped(conn, self.id))
            except StoreError as exc:
                self.collector.reporter.note(f"could not give the sites back: {exc}")

    # -- probing -------------------------------------------------------------------------------

    async def _dispatch(self, sites: trio.MemorySendChannel[tuple[ActiveSite, float]]) -> None:
        async with sites:
            while True:
                now = time.time()
                due = self.schedule.pop_due(now)
                if due is not None:
                    await sites.send(due)
                    continue
                self._changed = trio.Event()
                next_at = self.schedule.next_due_at()
                # A worker wakes it when a probe ends with its site due sooner (due_sooner).
                self.schedule.wake_at = float("inf") if next_at is None else next_at
                with trio.move_on_after(60 if next_at is None else max(0.0, next_at - now)):
                    await self._changed.wait()

    async def _worker(
        self,
        prober: Prober,
        sites: trio.MemoryReceiveChannel[tuple[ActiveSite, float]],
        pings: trio.MemorySendChannel[tuple[PingResult, float]],
    ) -> None:
        async with sites, pings:
            async for site, due in sites:
                late_s = max(0.0, time.time() - due)
                ping = await self.collector.probe(prober, site)
                if ping is None:
                    self.round.faults += 1
                    self.schedule.lost(site.id, time.time())
                    if self.schedule.due_sooner():
                        self._changed.set()
                    continue
                at = ping.checked_at.timestamp()
                self.schedule.probed(site.id, at, down=ping.status == "down")
                if self.schedule.due_sooner():  # the dispatcher sleeps until a later time
                    self._changed.set()
                self.collector.reporter.ping_done(site, ping)
                with trio.CancelScope(shield=True):  # a probed ping always reaches the writer
                    await pings.send((ping, late_s))

    # -- storing -------------------------------------------------------------------------------

    async def _writer(
        self, pings: trio.MemoryReceiveChannel[tuple[PingResult, float]], written: trio.Event
    ) -> None:
        """Store pings in micro-batches, one COPY each; close a round every default interval.
        Sets ``written`` once the channel is closed and everything in it is stored."""
        batch: list[PingResult] = []
        deadline = trio.current_time() + BATCH_SECONDS
        async with pings:
            while True:
                done = False
                with trio.move_on_at(deadline):
                    while len(batch) < BATCH_PINGS:
                        try:
                            ping, late_s = await pings.receive()
                        except trio.EndOfChannel:
                            done = True
                            break
                        batch.append(ping)
                        self.round.add(ping, late_s)
                with trio.CancelScope(shield=True):
                    await self._flush(batch)
                    batch = []
                    if done:
                        await self._end_round(final=True)
                        written.set()
                        return
                    if self._round_over():
                        await self._end_round(final=False)
                deadline = trio.current_time() + BATCH_SECONDS

    async def _flush(self, batch: list[PingResult]) -> None:
        if not batch:
            return
        result = await self.writer.store_cycle(None, batch)
        self.round.stored(result.outcome, result.orphans, result.waiting)
        if result.outcome == "stored":
            self.round.stored_pings += len(batch) - result.orphans
        # How long the oldest ping of the batch took to be stored: a bucket handed over waits
        # at least this long, so that the next holder sees the pings of this one.
        lag = time.time() - min(p.checked_at for p in batch).timestamp()
        self.store_lag_s = max(lag, 0.9 * self.store_lag_s)
        # Status and health read the breaker and spool this collector publishes: at a round's
        # end (minutes apart), and when a batch finds them changed.
        seen = (self.writer.breaker.state, result.outcome, result.waiting)
        if seen != self._published:
            self._published = seen
            self.collector.write_state()
        log.info(
            "batch of %d pings %s",
            len(batch),
            result.outcome,
            extra={"component": "collector", "category": "batch"},
        )

    def _round_over(self) -> bool:
        length = dt.timedelta(milliseconds=self.settings.monitoring_interval_ms)
        return dt.datetime.now(dt.UTC) >= self.round.started_at + length

    async def _end_round(self, *, final: bool) -> None:
        done, self.round = self.round, self._new_round()
        s = self.settings
        finished = dt.datetime.now(dt.UTC)
        interrupted = final and self.interrupted
        checked = len(done.sites)
        summary = CycleSummary(
            id=done.id,
            started_at=done.started_at,
            finished_at=finished,
            location=s.monitoring_location,
            region_code=s.monitoring_region_code,
            sites_checked=checked,
            up=done.up,
            down=done.down,
            duration_ms=round((finished - done.started_at).total_seconds() * 1000),
            dry_run=False,
            interrupted=interrupted,
            error=cycle_error(interrupted, checked, len(self.schedule), done.faults),
            by_category=dict(done.by_category),
            faults=done.faults,
        )
        record = summary.record()
        record.collector_id = self.id
        record.late_ms = round(done.late_s * 1000)
        result = await self.writer.store_cycle(record, [])
        done.stored(result.outcome, result.orphans, result.waiting)
        summary.stored = done.outcome
        summary.orphans = done.orphans
        summary.spool_waiting = done.waiting
        if done.outcome != "stored" and done.stored_pings:
            summary.stored_pings = done.stored_pings
        self.rounds += 1
        self.collector.round_finished(summary)
        if not final:
            self.collector.reporter.cycle_started(self.rounds + 1, self._held())

    def _held(self) -> int | None:
        """The sites this collector holds now; None while it holds none (with other collectors
        of its location it may take some over during the round: 0 would be a wrong promise)."""
        return len(self.schedule) or None

    def _new_round(self) -> Round:
        return Round(uuid.uuid4(), dt.datetime.now(dt.UTC))

    # -- the fleet -----------------------------------------------------------------------------

    async def _fleet(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Heartbeat every lease/3: hold a fair share of the sites, learn of probes elsewhere."""
        every = max(0.2, self.settings.collector_lease_ms / 3000)
        # The first beat only says this collector lives: collectors started together would
        # otherwise each load the whole fleet (the first to beat holds every bucket for a beat)
        # and keep that memory. The second beat, SETTLE_S later, sees its peers and loads a share.
        await self._beat(load=False)
        await trio.sleep(min(every, SETTLE_S))
        while True:
            await self._beat()
            task_status.started()  # the first round starts with the sites loaded
            task_status = trio.TASK_STATUS_IGNORED
            await trio.sleep(every)

    async def _beat(self, *, load: bool = True) -> None:
        s = self.settings
        now = time.time()
        # A probe in flight ends within its timeout; its batch is stored after the lag seen
        # lately (a loaded database makes it seconds), with a margin. Before its first load a
        # collector has probed nothing: what it gives back is free.
        grace_ms = (
            0
            if self.held is None
            else s.ping_timeout_ms + round((2 * BATCH_SECONDS + 2 * self.store_lag_s) * 1000)
        )

        def beat(conn: Any) -> tuple[frozenset[int], int]:
            held = fleet.heartbeat(
                conn,
                self.id,
                location=s.monitoring_location,
                region_code=s.monitoring_region_code,
                lease_ms=s.collector_lease_ms,
                sites_owned=len(self.schedule),
                late_ms=round(self.schedule.late_s(now) * 1000),
                grace_ms=grace_ms,
            )
            return held, fleet.sites_version(conn)

        try:
            held, version = await self.writer.transact(beat)
        except StoreError as exc:
            if self.held is None:  # never reached: probe the sites known from the last run
                await self._load(None)
            self.collector.reporter.note(f"heartbeat failed (probing the sites held): {exc}")
            return
        if not load:
            return
        # The sites are read again when the buckets held or the sites table changed, and only
        # then: reading 100 000 unchanged sites every 30 s cost a full second copy of the list.
        if held != self.held or version != self._sites_version:
            await self._load(held)
            if held != self.held:
                log.info(
                    "holding %d of %d buckets of %s: %d sites",
                    len(held),
                    fleet.BUCKETS,
                    s.monitoring_location,
                    len(self.schedule),
                    extra={"component": "collector", "category": "lease"},
                )
        self.held = held

    async def _learning(self) -> None:
        while True:
            await trio.sleep(LEARN_EVERY_S)
            await self._learn()

    async def _load(self, held: frozenset[int] | None) -> None:
        """(Re)load the sites of the buckets held, and where each one's cadence stands."""
        s = self.settings

        read_at: list[int] = []

        def query(conn: Any) -> list[ActiveSite]:
            # The number first: a change committed between the two reads makes the next beat
            # read the sites once more, never miss it.
            version = fleet.sites_version(conn)
            out = fleet.sites_in_buckets(conn, held if held is not None else frozenset())
            read_at.append(version)
            return out

        sites, cached = await self.writer.load_sites_or_cached(query)
        self._sites_version = None if cached or not read_at else read_at[-1]
        longest = max([self.schedule.interval_s(x) for x in sites] or [1.0])
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2 * longest)
        # Where a cadence resumes matters for the sites new here only (a reload of 100 000 held
        # sites read as many latest pings every 30 s for nothing).
        new = [x.id for x in sites if x.id not in self.schedule]
        try:
            last = (
                await self.writer.transact(
                    lambda conn: fleet.last_pings(
                        conn,
                        s.monitoring_location,
                        since=since,
                        sites=None if len(new) == len(sites) else new,
                    )
                )
                if new
                else {}
            )
        except StoreError:
            last = {}
        self.schedule.hold(
            sites, {k: (v.at.timestamp(), v.down) for k, v in last.items()}, time.time()
        )
        self._learnt_since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
        self._changed.set()

    async def _learn(self) -> None:
        """Probes made since the last look by anyone of this location (a trigger, `collect
        --once`, a collector before a hand-over) count as the sites' probes."""
        since = self._learnt_since
        self._learnt_since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
        try:
            last = await self.writer.transact(
                lambda conn: fleet.last_pings(conn, self.settings.monitoring_location, since=since)
            )
        except StoreError:
            return
        for site_id, seen in last.items():
            self.schedule.probed(site_id, seen.at.timestamp(), down=seen.down, elsewhere=True)
        self._changed.set()
