"""The COPY of pings: rows in column order, the direct COPY of a fresh batch, and the staged
insert of a replayed one (duplicates and pings of deleted sites left out), with the daily
partitions a batch needs made first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from ..domain.incidents import Transition
from ..domain.pings import PING_COLUMNS, PingResult
from .incidents import IncidentRules, track_incidents
from .models import MonitoringCycle
from .spool import PingRow

CYCLE_COLUMNS = tuple(MonitoringCycle.model_fields)
_WIDTH = len(PING_COLUMNS)
_NULLS = (None,) * _WIDTH
_COPY_PINGS = f"COPY pings ({', '.join(PING_COLUMNS)}) FROM STDIN"
_INSERT_CYCLE = (
    f"INSERT INTO monitoring_cycles ({', '.join(CYCLE_COLUMNS)}) "
    f"VALUES ({', '.join(f'%({c})s' for c in CYCLE_COLUMNS)}) ON CONFLICT (id) DO NOTHING"
)
# A replayed cycle may already be stored (its commit may have happened just before the client
# lost the connection), and its sites may have been deleted since: stage it, then insert what is
# not there yet, for the sites that still exist.
_STAGE = "CREATE TEMP TABLE IF NOT EXISTS uptimelab_staged_pings (LIKE pings) ON COMMIT DELETE ROWS"
_COPY_STAGED = f"COPY uptimelab_staged_pings ({', '.join(PING_COLUMNS)}) FROM STDIN"
_COUNT_ORPHANS = (
    "SELECT count(*) AS n FROM uptimelab_staged_pings s "
    "WHERE NOT EXISTS (SELECT 1 FROM sites WHERE sites.id = s.site_id)"
)
_INSERT_STAGED = (
    f"INSERT INTO pings ({', '.join(PING_COLUMNS)}) "
    f"SELECT {', '.join(PING_COLUMNS)} FROM uptimelab_staged_pings s "
    "WHERE EXISTS (SELECT 1 FROM sites WHERE sites.id = s.site_id) ON CONFLICT DO NOTHING"
)


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
        p.dns_ms,
        p.connect_ms,
        p.tls_ms,
        p.ttfb_ms,
        p.transfer_ms,
        p.cert_expires_at,
    )


def days_of(rows: Iterable[PingRow]) -> set[dt.date]:
    """The UTC days the rows fall on (each needs its daily partition)."""
    return {r[1].astimezone(dt.UTC).date() for r in rows}


class PingCopier:
    """Writes pings (and a cycle row) in one transaction on a connection it is given; knows
    which daily partitions it made already. With ``rules``, the same transaction brings the
    incidents of the pings' series up to date (sql/011_incidents.sql), and ``transitions``
    holds what the last write changed in the sites' own states."""

    def __init__(self, rules: IncidentRules | None = None) -> None:
        self._partitions: set[dt.date] = set()
        self.rules = rules
        self.transitions: list[Transition] = []

    def write(
        self,
        conn: psycopg.Connection[Any],
        cycle: MonitoringCycle | None,
        rows: Sequence[PingRow],
        *,
        replay: bool,
    ) -> int:
        """One transaction: COPY the pings (staged, deduplicated and without orphans for a
        replay) and the cycle row. Returns the orphaned pings (of sites that no longer exist)
        that were left out."""
        self.ensure_partitions(conn, days_of(rows) | _today_and_tomorrow())
        orphans = 0
        self.transitions = []
        with conn.transaction(), conn.cursor() as cur:
            if replay:
                cur.execute(_STAGE)
                _copy_rows(cur, _COPY_STAGED, rows)
                found = cur.execute(_COUNT_ORPHANS).fetchone()
                orphans = int(found["n"] if isinstance(found, dict) else found[0]) if found else 0
                cur.execute(_INSERT_STAGED)
            else:
                _copy_rows(cur, _COPY_PINGS, rows)
            if cycle is not None:
                cur.execute(_INSERT_CYCLE, cycle.model_dump())
            transitions = [] if self.rules is None else track_incidents(conn, rows, self.rules)
        self.transitions = transitions
        return orphans

    def write_rows(
        self, conn: psycopg.Connection[Any], rows: Sequence[PingRow], days: set[dt.date]
    ) -> None:
        """Ping rows (a history import) in one transaction, through the same COPY."""
        self.ensure_partitions(conn, days)
        with conn.transaction(), conn.cursor() as cur:
            _copy_rows(cur, _COPY_PINGS, rows)
            if self.rules is not None:
                track_incidents(conn, rows, self.rules)

    def ensure_partitions(self, conn: psycopg.Connection[Any], days: set[dt.date]) -> None:
        """Make the daily partitions of ``days`` (each in a short transaction of its own)."""
        for day in sorted(days - self._partitions):
            with conn.transaction():
                conn.execute("SELECT uptimelab_ensure_pings_partition(%s)", (day,))
            self._partitions.add(day)


def _copy_rows(cur: psycopg.Cursor[Any], statement: str, rows: Iterable[PingRow]) -> None:
    with cur.copy(statement) as copy:
        for row in rows:
            if len(row) < _WIDTH:  # a row made before pings grew (a history's): NULLs for the rest
                row = (*row, *_NULLS[len(row) :])
            copy.write_row(row)


def _today_and_tomorrow() -> set[dt.date]:
    today = dt.datetime.now(dt.UTC).date()
    return {today, today + dt.timedelta(days=1)}
