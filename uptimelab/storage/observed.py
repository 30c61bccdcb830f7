"""What the database observed over a span of time: each site's first ping in it (raw, or from the
hourly rollup where the raw pings are pruned), for the month SLA's observed span."""

from __future__ import annotations

import datetime as dt

import psycopg

from ..errors import StoreError
from ..text import one_line
from .database import Database, default_db


def first_pings(
    start: dt.datetime, end: dt.datetime, *, db: Database | None = None
) -> dict[str, dt.datetime]:
    """Each site's (id as text) first ping in [start, end): its raw ping, or on a pruned day (its
    raw pings are gone, its rollups stay) the start of its first hour in the hourly rollup.
    Raises StoreError when the database fails."""
    try:
        with default_db(db).connect() as conn:
            rows = conn.execute(
                """SELECT site_id::text AS site_id, min(first) AS first FROM (
                       SELECT site_id, min(checked_at) AS first FROM pings
                        WHERE checked_at >= %(start)s AND checked_at < %(end)s GROUP BY site_id
                       UNION ALL
                       SELECT h.site_id, greatest(min(h.hour), %(start)s) FROM ping_rollup_hourly h
                        WHERE h.hour > %(start)s - interval '1 hour' AND h.hour < %(end)s
                          AND h.pings > 0
                          AND (h.hour AT TIME ZONE 'UTC')::date
                              IN (SELECT day FROM pings_pruned_days)
                        GROUP BY h.site_id
                   ) AS found GROUP BY site_id""",
                {"start": start, "end": end},
            ).fetchall()
    except psycopg.Error as exc:  # pragma: no cover - the database's own faults
        raise StoreError(f"reading first pings failed: {one_line(exc)}") from exc
    return {r["site_id"]: r["first"] for r in rows}
