"""Retention: daily partitions made ahead, and old ones pruned whole into the Parquet archive.

A day is pruned in three steps, each of which a run may be killed after::

    write    the partition's rows -> ARCHIVE_DIR/pings/date=D/part-N.parquet (temp file, renamed)
    verify   in one transaction: lock the partition against writes, compare its row count and
             key checksum with the file's,
    drop     record the day in pings_pruned_days, DETACH PARTITION, DROP TABLE; commit.

A rerun finds the day still in pings (the transaction never committed) and the file in place:
it checks that file, writing it again only when it does not match, then drops. So no day is lost,
none is archived twice (the file has the same name), and none is dropped before its file matched.
Rows are never DELETEd: the hourly rollup, which a DROP does not touch, keeps counting them.

A day pruned before can come back: pings of it written again (a replayed spool, an import) land
in the default partition, and the next prune moves them into a day partition of their own and
archives them as the day's next part. Before that part is written, the pings of it that an
earlier part already holds (the same key) are deleted from the table through ``pings``
(retention_replay.py) -- the one DELETE of retention: those rows are second copies, and sql/003's
trigger takes them back out of the rollup, which counted them a second time when they came. So
every key is stored once, in the table or in one file, and the new pings of the day are archived
with it. For such a day the dedupe is done again and the part written inside the verify's
transaction, the partition locked: a copy replayed after the first dedupe would otherwise be
written into the new part and verified with it, archived twice. A first part whose file did not
match is written again in the same way, so that no ping can come between that write and its
verify. Writers of the day wait meanwhile; a day's first write, the long one, and the first
dedupe, which removes the bulk of the copies, run before the lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from ..errors import ConfigError, StoreError
from .archive import part_path, write_day
from .database import Database, default_db
from .retention_replay import remove_archived_copies, write_locked
from .retention_verify import (
    DayPlan,
    Dropped,
    Locked,
    Mismatch,
    Step,
    count_pings,
    existing_file,
    expect_empty,
    verify_file,
)

MIN_KEEP = dt.timedelta(days=8)
"""The shortest retention: the 7-day stats window, and the day that straddles its far edge."""

PARTITIONS_AHEAD_DAYS = 7
MAINTENANCE_LOCK = 0x75_70_72_6E  # "uprn": one prune or maintenance run at a time per database
_DROP_ATTEMPTS = 5
DETACH_WAIT_MS = 2000

__all__ = [  # DayPlan and Step live in retention_verify; they are part of this module's API
    "DETACH_WAIT_MS",
    "MAINTENANCE_LOCK",
    "MIN_KEEP",
    "PARTITIONS_AHEAD_DAYS",
    "DayPlan",
    "PruneResult",
    "PrunedDay",
    "Step",
    "check_keep",
    "empty_default_partition",
    "ensure_partitions_ahead",
    "maintenance_lock",
    "planned_days",
    "prune",
    "prune_locked",
    "pruned_days",
    "store_errors",
]


@dataclass(frozen=True)
class PrunedDay:
    """A day gone from the database: its pings and the archive file holding them (None when
    dropped unarchived)."""

    day: dt.date
    pings: int
    archive_file: Path | None


@dataclass
class PruneResult:
    """What a prune did (or, with ``dry_run``, would do)."""

    cutoff: dt.datetime
    planned: list[DayPlan]
    pruned: list[PrunedDay] = field(default_factory=list)
    default_days_moved: int = 0
    dry_run: bool = False
    stopped: bool = False

    @property
    def pings(self) -> int:
        return sum(d.pings for d in self.pruned)


def check_keep(keep: dt.timedelta) -> None:
    """Raise ConfigError when ``keep`` would prune inside the 7-day stats window."""
    if keep < MIN_KEEP:
        raise ConfigError(
            f"keep={_days(keep)}: must be at least {MIN_KEEP.days} days "
            "(the 7-day stats window reads raw pings)"
        )


def _days(span: dt.timedelta) -> str:
    return f"{span.total_seconds() / 86_400:g}d"


@contextlib.contextmanager
def maintenance_lock(db: Database) -> Iterator[bool]:
    """Try to take the database's maintenance lock (a session advisory lock, so it goes with a
    killed process); yields whether it was taken. One prune or maintenance runs at a time."""
    with db.connect(autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_try_advisory_lock(%s) AS held", (MAINTENANCE_LOCK,)
        ).fetchone()
        held = bool(row and row["held"])
        try:
            yield held
        finally:
            if held:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MAINTENANCE_LOCK,))


def prune(
    keep: dt.timedelta,
    *,
    archive: Path | None = None,
    dry_run: bool = False,
    db: Database | None = None,
    now: dt.datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    step: Step | None = None,
    stop: threading.Event | None = None,
    lock_timeout_ms: int = 15_000,
) -> PruneResult:
    """Prune every whole UTC day of pings older than ``now - keep``: written to the Parquet
    archive under ``archive`` and verified first, or, with ``archive`` None, dropped unarchived
    (the caller asks first). Pings in the default partition are moved into day partitions first.

    ``progress(done, total)`` is called as days are done; ``stop`` (set from another thread)
    ends the run after the current day. Raises ConfigError when ``keep`` is under 8 days,
    StoreError when another prune or maintenance holds the lock or the database fails,
    OutputError when the archive cannot be written (or, for a day pruned before and written
    again since, an earlier file of the day is missing or unreadable).
    """
    check_keep(keep)
    database = default_db(db)
    with maintenance_lock(database) as held:
        if not held:
            raise StoreError("another prune or maintenance is running on this database")
        return prune_locked(
            database,
            keep,
            archive=archive,
            dry_run=dry_run,
            now=now,
            progress=progress,
            step=step,
            stop=stop,
            lock_timeout_ms=lock_timeout_ms,
        )


def prune_locked(
    db: Database,
    keep: dt.timedelta,
    *,
    archive: Path | None,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    step: Step | None = None,
    stop: threading.Event | None = None,
    lock_timeout_ms: int = 15_000,
) -> PruneResult:
    """:func:`prune`, for a caller that holds :func:`maintenance_lock` already."""
    check_keep(keep)
    cutoff = (now or dt.datetime.now(dt.UTC)) - keep
    with db.connect(autocommit=True) as conn, store_errors("prune"):
        moved = 0 if dry_run else empty_default_partition(conn)
        planned = planned_days(conn, cutoff)
        result = PruneResult(cutoff, planned, default_days_moved=moved, dry_run=dry_run)
        if dry_run or not planned:
            return result
        _roll_up_before(conn, planned[-1].day + dt.timedelta(days=1))
        for done, plan in enumerate(planned):
            if stop is not None and stop.is_set():
                result.stopped = True
                break
            result.pruned.append(_prune_day(conn, plan, archive, step, lock_timeout_ms))
            if progress is not None:
                progress(done + 1, len(planned))
    return result


@contextlib.contextmanager
def store_errors(task: str) -> Iterator[None]:
    """psycopg's errors inside, as one StoreError line naming ``task``."""
    try:
        yield
    except psycopg.Error as exc:
        raise StoreError(f"{task} failed: {str(exc).strip().splitlines()[0]}") from exc


def empty_default_partition(conn: psycopg.Connection[Any]) -> int:
    """Move the rows of pings_default into their day partitions (made for them); returns the
    number of days moved. Each day moves in a transaction of its own."""
    days = [
        r["day"]
        for r in conn.execute(
            "SELECT DISTINCT (checked_at AT TIME ZONE 'UTC')::date AS day FROM pings_default"
        )
    ]
    for day in days:
        conn.execute("SELECT uptimelab_ensure_pings_partition(%s)", (day,))
    return len(days)


def planned_days(conn: psycopg.Connection[Any], cutoff: dt.datetime) -> list[DayPlan]:
    """The daily partitions whose whole day ends at or before ``cutoff``, oldest first."""
    last_day = (cutoff.astimezone(dt.UTC) - dt.timedelta(days=1)).date()
    plans = []
    for row in conn.execute(
        "SELECT day, partition_name FROM uptimelab_pings_partitions() WHERE day <= %s", (last_day,)
    ).fetchall():
        count = conn.execute(
            sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(row["partition_name"]))
        ).fetchone()
        plans.append(DayPlan(row["day"], row["partition_name"], int(count["n"]) if count else 0))
    return plans


def _roll_up_before(conn: psycopg.Connection[Any], day: dt.date) -> None:
    # The rollups must hold every ping of the days about to go: the watermark passes them. It is
    # brought to the present hour, as a refresh would, so that the values that depend on later
    # pings (the policies' runs and spans, sql/013) are settled from raw pings while they exist.
    edge = dt.datetime.combine(day, dt.time(), dt.UTC)
    row = conn.execute("SELECT uptimelab_advance_rollup() AS mark").fetchone()
    if row is None or row["mark"] < edge:
        raise StoreError(f"the hourly rollup could not be brought to {edge.isoformat()}")


def _prune_day(
    conn: psycopg.Connection[Any],
    plan: DayPlan,
    archive: Path | None,
    step: Step | None,
    lock_timeout_ms: int,
) -> PrunedDay:
    row = conn.execute(
        "SELECT coalesce(max(part) + 1, 0) AS part FROM pings_pruned_days WHERE day = %s",
        (plan.day,),
    ).fetchone()
    part = int(row["part"]) if row else 0

    def drop(locked: Locked) -> PrunedDay:
        dropped = _drop(conn, plan, part, locked, step, lock_timeout_ms)
        return PrunedDay(plan.day, dropped.pings, dropped.path)

    if archive is None:
        return drop(lambda: Dropped(count_pings(conn, plan)))
    if plan.pings == 0:
        # An empty day leaves no file. Checked again under the lock: rows that came since the
        # count are archived below.
        with contextlib.suppress(Mismatch):
            return drop(lambda: expect_empty(conn, plan))
    if not part:
        # A day's first part is written before the lock (a day of pings takes a while, and the
        # day's writers would wait), then verified under it; a file that does not match there
        # (a killed run's, or rows came since) is written again below.
        found = existing_file(part_path(archive, plan.day, part))
        if found is None:
            found = write_day(conn, plan.partition, archive, plan.day, part)
            if step is not None:
                step("written", plan.day)
        with contextlib.suppress(Mismatch):
            return drop(lambda: verify_file(conn, plan, found, archive, step))
    # A day pruned before, or a first part that did not match: deduped, written and verified
    # with the partition locked, so no ping can come in between (a copy replayed after the
    # dedupe would be archived a second time; a ping after the write would not match again).
    # The copies are removed once before the lock too: the bulk of them (a whole day replayed:
    # 4 s for 260 000) then costs the day's writers no wait, only what came since does.
    if part:
        remove_archived_copies(conn, plan, archive)
        if step is not None:
            step("deduped", plan.day)
    return drop(lambda: write_locked(conn, plan, part, archive, step))


def _drop(
    conn: psycopg.Connection[Any],
    plan: DayPlan,
    part: int,
    locked: Locked,
    step: Step | None,
    lock_timeout_ms: int,
) -> Dropped:
    """Lock the partition, run ``locked`` (which verifies it), record the day and drop the
    partition, in one transaction; returns what was dropped. Raises Mismatch from ``locked``."""
    table = sql.Identifier(plan.partition)
    for attempt in range(_DROP_ATTEMPTS):
        try:
            with conn.transaction():
                conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(lock_timeout_ms))
                # Writers wait from here on: what is verified is what is dropped.
                conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table))
                dropped = locked()
                conn.execute(
                    "INSERT INTO pings_pruned_days (day, part, archive_file, pings, key_checksum)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (plan.day, part, dropped.archive_file, dropped.pings, dropped.key_checksum),
                )
                # DETACH takes pings itself exclusively, and while it waits every writer queues
                # behind it: wait briefly, and try the day again rather than stall the collectors.
                conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(DETACH_WAIT_MS))
                conn.execute(sql.SQL("ALTER TABLE pings DETACH PARTITION {}").format(table))
                conn.execute(sql.SQL("DROP TABLE {}").format(table))
        except (pg_errors.LockNotAvailable, pg_errors.DeadlockDetected) as exc:
            if attempt + 1 == _DROP_ATTEMPTS:
                raise StoreError(
                    f"{plan.day}: could not lock {plan.partition} to drop it ({exc})"
                ) from exc
            continue
        except psycopg.Error as exc:
            raise StoreError(f"{plan.day}: pruning {plan.partition} failed: {exc}") from exc
        if step is not None:
            step("dropped", plan.day)
        return dropped
    raise AssertionError("unreachable")  # pragma: no cover


def ensure_partitions_ahead(
    db: Database | None = None, *, days: int = PARTITIONS_AHEAD_DAYS, today: dt.date | None = None
) -> int:
    """Make the daily partitions of today and the ``days`` after it that are missing; returns
    how many were made."""
    start = today or dt.datetime.now(dt.UTC).date()
    made = 0
    with default_db(db).connect(autocommit=True) as conn, store_errors("making partitions"):
        for offset in range(days + 1):
            row = conn.execute(
                "SELECT uptimelab_ensure_pings_partition(%s) AS made",
                (start + dt.timedelta(days=offset),),
            ).fetchone()
            made += bool(row and row["made"])
    return made


def pruned_days(db: Database | None = None) -> list[PrunedDay]:
    """Every day pruned so far (one entry per part), oldest first, with its archive file
    (relative to the archive directory) or None."""
    with default_db(db).connect() as conn:
        rows = conn.execute(
            "SELECT day, pings, archive_file FROM pings_pruned_days ORDER BY day, part"
        ).fetchall()
    return [
        PrunedDay(
            r["day"],
            int(r["pings"]),
            None if r["archive_file"] is None else Path(r["archive_file"]),
        )
        for r in rows
    ]
