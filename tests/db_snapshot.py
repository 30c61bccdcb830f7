"""The database between tests: emptied touching only the tables that hold rows, or kept in
memory and put back, so that a history written once per module starts each test of the module
as ``write_history`` left it, without writing it again.

A TRUNCATE makes new files for every table, index and day partition it empties: with a hundred
day partitions on a busy machine, seconds per test. Emptying deletes the rows of the tables that
hold some, and resets the rollup as the TRUNCATE trigger on pings would.

Writing a history settles its rollup hour by hour (seconds for ten days); putting its rows back
with COPY takes a few milliseconds. Rows go away and come back with triggers off
(``session_replication_role = replica``): they are the rows the triggers already made, and the
rollup triggers would mark them dirty again. Every table of the schema is kept but the
migrations' record and the database's identity, so a table added by a later migration is kept
too; the pings' day partitions and the sequences are put back as they were. Without the right
to turn triggers off (not a superuser), tables are truncated and histories written each time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

# Never put back: which migrations ran, and which database this is (local state is keyed by it).
NOT_KEPT = ("schema_migrations", "uptimelab_identity")


@dataclass(frozen=True)
class Snapshot:
    """The rows of every table (binary COPY), the sequences, and the pings' day partitions."""

    rows: dict[str, bytes]
    sequences: dict[str, tuple[int, bool]]
    days: frozenset[dt.date]
    taken_at: dt.datetime


def _tables(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    """The schema's tables (a partitioned table as one), those without rows' owners first."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
        " AND NOT c.relispartition AND NOT (c.relname = ANY(%s)) ORDER BY c.relname",
        (list(NOT_KEPT),),
    ).fetchall()
    return [str(r[0]) for r in rows]


def replicating(conn: psycopg.Connection[Any]) -> bool:
    """Whether this connection may turn triggers off (a superuser's)."""
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute("SELECT current_setting('is_superuser') = 'on'").fetchone()
    return bool(row and row[0])


def _cascade(conn: psycopg.Connection[Any], tables: Sequence[str]) -> list[str]:
    """``tables`` and every table whose foreign keys reach them, as TRUNCATE CASCADE finds."""
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(
            "WITH RECURSIVE t (oid) AS ("
            " SELECT unnest(%s::regclass[])::oid"
            " UNION SELECT c.conrelid FROM pg_constraint AS c JOIN t ON c.confrelid = t.oid"
            " WHERE c.contype = 'f')"
            " SELECT r.relname FROM t JOIN pg_class AS r ON r.oid = t.oid"
            " WHERE NOT r.relispartition ORDER BY r.relname",
            (list(tables),),
        ).fetchall()
    return [str(r[0]) for r in rows]


def empty_tables(conn: psycopg.Connection[Any], tables: Sequence[str]) -> None:
    """Leave ``tables`` as ``TRUNCATE tables CASCADE`` would (those tables and the ones whose
    foreign keys reach them empty; the rollup started again from nothing when pings is one of
    them), deleting rows only where there are some. ``conn`` may be in a transaction: its
    triggers are on again afterwards."""
    if not replicating(conn):
        names = sql.SQL(", ").join(sql.Identifier(t) for t in tables)
        conn.execute(sql.SQL("TRUNCATE {} CASCADE").format(names))
        return
    every = _cascade(conn, tables)
    if "pings" in every:  # its TRUNCATE triggers empty the rollups
        every = sorted({*every, "ping_rollup_hourly", "ping_rollup_dirty", "ping_rollup_daily"})
    holding = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {} WHERE EXISTS (SELECT FROM {})").format(sql.Literal(t), sql.Identifier(t))
        for t in every
    )
    with conn.cursor(row_factory=tuple_row) as cur:
        full = [str(r[0]) for r in cur.execute(holding)]
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        for table in full:
            conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
        if "pings" in every:  # the TRUNCATE triggers on pings: the rollup from nothing
            conn.execute(
                "UPDATE ping_rollup_state SET watermark = '-infinity'"
                " WHERE watermark <> '-infinity'"
            )
        conn.execute("SET LOCAL session_replication_role = origin")


def _days(conn: psycopg.Connection[tuple[object, ...]]) -> frozenset[dt.date]:
    rows = conn.execute("SELECT day FROM uptimelab_pings_partitions()").fetchall()
    return frozenset(r[0] for r in rows)  # type: ignore[misc]


def take(url: str) -> Snapshot:
    """Every row of the database at ``url`` (nothing may write meanwhile)."""
    with psycopg.connect(url) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        rows = {}
        for table in _tables(conn):
            query = sql.SQL("COPY (SELECT * FROM {}) TO STDOUT (FORMAT binary)").format(
                sql.Identifier(table)
            )
            with conn.cursor().copy(query) as copy:
                rows[table] = b"".join(bytes(block) for block in copy)
        sequences = {}
        for (name,) in conn.execute(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"
        ).fetchall():
            state = conn.execute(
                sql.SQL("SELECT last_value, is_called FROM {}").format(sql.Identifier(str(name)))
            ).fetchone()
            assert state is not None
            sequences[str(name)] = (int(str(state[0])), bool(state[1]))
        days = _days(conn)
    return Snapshot(rows, sequences, days, dt.datetime.now(dt.UTC))


def restore(url: str, snapshot: Snapshot) -> None:
    """Put the database at ``url`` back as ``snapshot`` found it, in one transaction: the same
    rows in every table, the same day partitions (others dropped), the same sequences."""
    with psycopg.connect(url) as conn:
        empty_tables(conn, list(snapshot.rows))
        conn.execute("SET LOCAL session_replication_role = replica")
        present = _days(conn)
        for day in sorted(present - snapshot.days):
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(f"pings_{day:%Y%m%d}")))
        for day in sorted(snapshot.days - present):
            conn.execute("SELECT uptimelab_ensure_pings_partition(%s)", (day,))
        for table, data in snapshot.rows.items():
            query = sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(sql.Identifier(table))
            with conn.cursor().copy(query) as copy:
                copy.write(data)
        for name, (value, called) in snapshot.sequences.items():
            conn.execute("SELECT setval(%s, %s, %s)", (name, value, called))


def written_once(
    kept: dict[str, Snapshot],
    url: str,
    write: Callable[[], object],
    *,
    max_age: dt.timedelta | None = None,
) -> None:
    """Run ``write`` on the database at ``url`` the first time (keeping what it left in
    ``kept``, a module's dictionary), and put that back every later time instead. A history
    written relative to the current time is written again when older than ``max_age`` or
    written on another UTC day."""
    now = dt.datetime.now(dt.UTC)
    known = kept.get(url)
    with psycopg.connect(url) as conn:
        if not replicating(conn):
            write()
            return
    if known is not None and (
        max_age is None or (now - known.taken_at < max_age and known.taken_at.date() == now.date())
    ):
        restore(url, known)
        return
    write()
    kept[url] = take(url)
