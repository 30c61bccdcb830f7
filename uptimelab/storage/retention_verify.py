"""What a prune checks with a day's partition locked, in the transaction that drops it (see
:mod:`uptimelab.storage.retention`): the partition against its archive file (count and key
checksum) or against nothing (an empty day), and what the drop then records of the day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ..errors import OutputError, StoreError
from .archive import DayFile, read_day_file

Step = Callable[[str, dt.date], None]
"""Called after each step of a day ("deduped" and "deduped again" for a day pruned before,
"written", "verified", "dropped"; "deduped again", "verified", and "written" but for a first
part's first, inside the drop's locked transaction): a test kills the run there, or replays."""


@dataclass(frozen=True)
class DayPlan:
    """One daily partition old enough to prune: its UTC day, table and number of pings."""

    day: dt.date
    partition: str
    pings: int


@dataclass(frozen=True)
class Dropped:
    """What the drop's transaction records of a day's part: its pings and archive file."""

    pings: int
    path: Path | None = None
    archive_file: str | None = None
    key_checksum: int | None = None


Locked = Callable[[], Dropped]
"""Run in the drop's transaction, the partition locked against writes: what is dropped.
Raises Mismatch when the partition does not hold it."""


def count_pings(conn: psycopg.Connection[Any], plan: DayPlan) -> int:
    """The pings in the day's partition now."""
    table = sql.Identifier(plan.partition)
    row = conn.execute(sql.SQL("SELECT count(*) AS n FROM {}").format(table)).fetchone()
    return int(row["n"]) if row else 0


def expect_empty(conn: psycopg.Connection[Any], plan: DayPlan) -> Dropped:
    """An empty day, dropped without a file. Raises Mismatch when pings came into it."""
    pings = count_pings(conn, plan)
    if pings:
        raise Mismatch(f"{plan.day}: {pings} pings came into an empty day")
    return Dropped(0)


def verify_file(
    conn: psycopg.Connection[Any], plan: DayPlan, file: DayFile, archive: Path, step: Step | None
) -> Dropped:
    """The day's part dropped with ``file`` (under the ``archive`` directory). Raises Mismatch
    when the partition's count or key checksum differs from the file's."""
    pings, checksum = partition_keys(conn, sql.Identifier(plan.partition))
    if (pings, checksum) != (file.pings, file.key_checksum):
        raise Mismatch(
            f"{plan.day}: {file.path} holds {file.pings} pings (key checksum "
            f"{file.key_checksum}), the partition {pings} ({checksum})"
        )
    if step is not None:
        step("verified", plan.day)
    return Dropped(pings, file.path, str(file.path.relative_to(archive)), checksum)


def existing_file(path: Path) -> DayFile | None:
    """The archive file at ``path`` as read back, or None when there is none or it is not
    Parquet."""
    if not path.exists():
        return None
    try:
        return read_day_file(path)
    except OutputError:  # not Parquet (a disk that lied about a write): written again
        return None


class Mismatch(StoreError):
    """The archive file does not hold what the partition holds."""


def partition_keys(conn: psycopg.Connection[Any], table: sql.Identifier) -> tuple[int, int]:
    """The pings of ``table`` and their key checksum (``uptimelab_ping_key_hash`` summed)."""
    row = conn.execute(
        sql.SQL(
            "SELECT count(*) AS n,"
            " coalesce(sum(uptimelab_ping_key_hash(site_id, checked_at, location)), 0) AS sum"
            " FROM {}"
        ).format(table)
    ).fetchone()
    return (int(row["n"]), int(row["sum"])) if row else (0, 0)
