"""A day pruned before and written again since (a replayed spool, an import): its pings that an
earlier archive part of the day holds are second copies, deleted before the day's next part is
written, in the drop's locked transaction (see :mod:`uptimelab.storage.retention`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import psycopg
import psycopg.rows
import pyarrow as pa
from psycopg import sql

from ..errors import OutputError
from .archive import batch_keys, keys_in_file, write_day
from .retention_verify import DayPlan, Dropped, Step, verify_file


def write_locked(
    conn: psycopg.Connection[Any], plan: DayPlan, part: int, archive: Path, step: Step | None
) -> Dropped:
    """Dedupe (for a ``part`` after the first), write and verify the day's part, in the drop's
    transaction with the partition locked: no ping can come in between. Raises OutputError
    when a file cannot be written or an earlier one read, Mismatch should the file not match."""
    if part:
        left = remove_archived_copies(conn, plan, archive)
        if step is not None:
            step("deduped again", plan.day)
        if not left:  # every ping of the day was archived before: no file for this part
            return Dropped(0)
    found = write_day(conn, plan.partition, archive, plan.day, part)
    if step is not None:
        step("written", plan.day)
    return verify_file(conn, plan, found, archive, step)


def remove_archived_copies(conn: psycopg.Connection[Any], plan: DayPlan, archive: Path) -> int:
    """Delete from the day's partition the pings whose keys the day's earlier archive files hold
    (second copies, see the module's docstring); returns the pings left in it. Raises
    OutputError when an earlier file is missing or unreadable (a copy could not be told from a
    new ping)."""
    table = sql.Identifier(plan.partition)
    earlier = [
        archive / r["archive_file"]
        for r in conn.execute(
            "SELECT archive_file FROM pings_pruned_days"
            " WHERE day = %s AND archive_file IS NOT NULL ORDER BY part",
            (plan.day,),
        ).fetchall()
    ]
    with conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
        rows = cur.execute(
            sql.SQL("SELECT site_id::text, checked_at, location FROM {}").format(table)
        ).fetchall()
    if not earlier or not rows:
        return len(rows)
    keys = batch_keys(
        pa.table(
            {
                "site_id": pa.array([r[0] for r in rows], pa.string()),
                "checked_at": pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC")),
                "location": pa.array([r[2] for r in rows], pa.string()),
            }
        )
    )
    copies: set[str] = set()
    for path in earlier:
        if not path.is_file():
            raise OutputError(
                f"{plan.day}: the archive file {path} of an earlier prune of the day is missing:"
                " its pings cannot be told from the day's new ones"
            )
        copies.update(keys_in_file(path, keys))
    if not copies:
        return len(rows)
    sites, micros, locations = zip(*(k.split("|", 2) for k in sorted(copies)), strict=True)
    lo = dt.datetime.combine(plan.day, dt.time(), dt.UTC)
    with conn.transaction():
        # Through pings, not the partition: the rollup's statement triggers are on pings.
        conn.execute(
            "DELETE FROM pings AS p"
            " USING unnest(%s::uuid[], %s::bigint[], %s::text[]) AS k (site_id, us, location)"
            " WHERE p.checked_at >= %s AND p.checked_at < %s AND p.site_id = k.site_id"
            " AND p.checked_at = 'epoch'::timestamptz + k.us * interval '1 microsecond'"
            " AND p.location = k.location",
            (list(sites), [int(m) for m in micros], list(locations), lo, lo + dt.timedelta(1)),
        )
    return len(rows) - len(copies)
