"""Replaying the spool: the batches a database outage left on local disk, stored oldest first once
the database is back, each segment deleted only after its transaction committed.

A transient fault stops a replay (the rest waits for the next try); a segment the database
refuses for its data, or one that is damaged, is quarantined and the next one goes on. One
collector of a database replays at a time (the spool's lock between processes). The
:class:`~uptimelab.storage.writer.Writer` replays on opening and before each write while its
spool holds a backlog.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

from ..domain.incidents import Transition
from ..errors import StoreError
from .breaker import BreakerOpenError
from .models import MonitoringCycle
from .resilience import StoreUnavailableError
from .spool import PingRow, Segment, Spool

TRANSIENT = (StoreUnavailableError, BreakerOpenError)
"""The faults that pass: what meets one waits in the spool for the next try."""

StoreBatch = Callable[
    [MonitoringCycle | None, list[PingRow]], Awaitable[tuple[int, list[Transition]]]
]
"""Stores one spooled batch in one transaction; returns its orphaned pings and the transitions
it made. Raises StoreError (one of TRANSIENT for a fault that passes)."""
Note = Callable[[str, str, BaseException], None]


@dataclass
class Replay:
    """What one replay did: the segments stored, their orphaned pings, and whether another
    collector of this database held the replay."""

    stored: list[str] = field(default_factory=list)
    orphans: int = 0
    busy: bool = False
    transitions: list[Transition] = field(default_factory=list)


async def replay_spool(
    spool: Spool, store: StoreBatch, *, note: Note, files: trio.CapacityLimiter
) -> tuple[Replay, set[uuid.UUID]]:
    """Store the spooled batches through ``store``, oldest first, each segment deleted after its
    commit; returns what was done and the sites of the pings stored. Shielded from
    cancellation. Faults are told to ``note`` (component, category, error); segment files are
    read in a worker thread under ``files``. Another collector of the same database replaying
    meanwhile makes this a no-op (``busy``)."""
    done = Replay()
    sites: set[uuid.UUID] = set()
    with trio.CancelScope(shield=True), spool.replay_lock() as mine:
        if not mine:
            done.busy = True
            return done, sites
        for segment in spool.segments():
            if not await _replay_segment(spool, segment, store, note, files, done, sites):
                break
    return done, sites


async def _replay_segment(
    spool: Spool,
    segment: Segment,
    store: StoreBatch,
    note: Note,
    files: trio.CapacityLimiter,
    done: Replay,
    sites: set[uuid.UUID],
) -> bool:
    """Replay one segment; False when a transient fault says to stop for now."""
    try:
        read = await trio.to_thread.run_sync(spool.read, segment, limiter=files)
    except StoreError as exc:
        note("spool", "damaged", exc)
        spool.quarantine(segment, str(exc))
        return True
    if read is None:  # another collector stored it meanwhile
        return True
    cycle, rows = read
    try:
        orphans, transitions = await store(cycle, rows)
    except TRANSIENT as exc:
        note("store", "replay", exc)
        return False
    except StoreError as exc:
        note("store", "refused", exc)
        spool.quarantine(segment, str(exc))
        return True
    done.transitions += transitions
    spool.remove(segment)
    sites.update(r[0] for r in rows)
    done.stored.append(segment.path.name)
    done.orphans += orphans
    return True
