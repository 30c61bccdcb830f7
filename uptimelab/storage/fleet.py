"""Many collectors, one database: heartbeats, leases on buckets of sites, and what the scheduler
reads (the sites of its buckets, the probes made elsewhere).

A location's sites are cut into :data:`BUCKETS` buckets by a hash of their id
(``uptimelab_site_bucket``); each collector of the location leases a fair share of the buckets
(``uptimelab_heartbeat``, in ``sql/005_scheduler.sql``) and probes the sites in them. A collector
that stops gives its buckets back; one that dies loses them when its leases expire. No broker:
PostgreSQL's row locks (``FOR UPDATE SKIP LOCKED``) are the whole protocol.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row, tuple_row

from ..domain.sites import ACTIVE_SITE_FIELDS, ActiveSite

BUCKETS = 256


def bucket_of(site_id: uuid.UUID, buckets: int = BUCKETS) -> int:
    """The bucket of a site, as ``uptimelab_site_bucket`` computes it in SQL."""
    return int(str(site_id)[:8], 16) % buckets


def heartbeat(
    conn: psycopg.Connection[Any],
    collector_id: uuid.UUID,
    *,
    location: str,
    region_code: str,
    lease_ms: int,
    sites_owned: int,
    late_ms: int,
    grace_ms: int,
    buckets: int = BUCKETS,
) -> frozenset[int]:
    """Say this collector lives, renew its leases, rebalance; the buckets it holds now. A bucket
    it gives back waits ``grace_ms`` before another collector may take it (its probes in flight
    end and are stored meanwhile)."""
    row = conn.execute(
        "SELECT uptimelab_heartbeat(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) AS held",
        (
            collector_id,
            location,
            region_code,
            socket.gethostname(),
            os.getpid(),
            lease_ms,
            buckets,
            sites_owned,
            min(late_ms, 2**31 - 1),
            grace_ms,
        ),
    ).fetchone()
    held = _first(row)
    return frozenset(held or ())


def stopped(conn: psycopg.Connection[Any], collector_id: uuid.UUID) -> None:
    """Give this collector's buckets back now and mark it stopped."""
    conn.execute("SELECT uptimelab_collector_stopped(%s)", (collector_id,))


@dataclass(frozen=True, slots=True)
class LastPing:
    """When a site was last probed from this location, and whether it was down."""

    at: dt.datetime
    down: bool


def sites_version(conn: psycopg.Connection[Any]) -> int:
    """A number that moves with every change of the sites table (sql/022), committed with it."""
    row = conn.execute("SELECT version FROM sites_version").fetchone()
    return int(_first(row) or 0)


def sites_in_buckets(
    conn: psycopg.Connection[Any], held: frozenset[int], *, buckets: int = BUCKETS
) -> list[ActiveSite]:
    """The active sites in the buckets this collector holds."""
    if not held:
        return []
    # Rows are made one at a time (not fetchall: 130 B a site at once), and the method and
    # expected statuses, which nearly all sites share, are interned (about 100 B a site less).
    method, expected = (
        ACTIVE_SITE_FIELDS.index("method"),
        ACTIVE_SITE_FIELDS.index("expected_status"),
    )
    out = []
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            f"SELECT {', '.join(ACTIVE_SITE_FIELDS)} FROM sites "
            "WHERE is_active AND uptimelab_site_bucket(id, %s) = ANY(%s)",
            (buckets, sorted(held)),
        )
        for row in cur:
            values = list(row)
            values[method] = sys.intern(values[method])
            values[expected] = sys.intern(values[expected])
            out.append(ActiveSite(*values))
    return out


def last_pings(
    conn: psycopg.Connection[Any],
    location: str,
    *,
    since: dt.datetime,
    sites: list[uuid.UUID] | None = None,
) -> dict[uuid.UUID, LastPing]:
    """The latest ping since ``since`` from ``location`` of each site (of ``sites``, or all):
    what a collector reads to learn of probes made elsewhere, and where a cadence resumes."""
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(
            """SELECT DISTINCT ON (site_id) site_id, checked_at, status = 'down'
                 FROM pings
                WHERE location = %s AND checked_at >= %s
                  AND (%s::uuid[] IS NULL OR site_id = ANY(%s::uuid[]))
                ORDER BY site_id, checked_at DESC""",
            (location, since, sites, sites),
        ).fetchall()
    return {site_id: LastPing(at, down) for site_id, at, down in rows}


def collectors(conn: psycopg.Connection[Any], *, lease_ms: int) -> list[dict[str, Any]]:
    """Every collector seen in the last day: id, host, pid, location, started, last heartbeat,
    sites owned, how late, and whether its heartbeat is stale (older than the lease time)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT id, host, pid, location, region_code, started_at, heartbeat_at,
                      stopped_at, sites_owned, late_ms,
                      stopped_at IS NULL
                      AND heartbeat_at < now() - make_interval(secs => %s / 1000.0) AS stale
                 FROM collectors
                WHERE coalesce(stopped_at, heartbeat_at) > now() - interval '1 day'
                ORDER BY location, started_at""",
            (lease_ms,),
        ).fetchall()


def _first(row: Any) -> Any:
    if row is None:
        return None
    return row[0] if isinstance(row, tuple) else next(iter(row.values()))
