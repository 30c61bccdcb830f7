"""Read-only queries for status, health and metrics: cycles and rounds, collectors, sites, errors,
the latest pings.

Each function opens one connection (``Database.connect``, the one connection policy), with
``timeout_ms`` bounding connecting and each statement, and raises StoreError when the database
cannot be reached or does not answer.

On a distributed PostgreSQL (Citus, pings distributed by ``site_id``; see the README): the
queries of cycles, rounds and collectors never read pings; ``_SITE_METRICS`` joins pings by
``site_id`` (co-located, one shard per site); ``_PINGS_OF_CYCLE``, ``_ERRORS_24H`` fan out to
every shard (aggregates pushed down), and ``_PINGS_TABLE_BYTES`` reads the coordinator's
partitions only (Citus has ``citus_total_relation_size`` for that).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import psycopg

from ..domain.redaction import redact
from ..domain.state import (
    CycleCounts,
    DatabaseStatus,
    ExpiringCertificate,
    FleetCollector,
    LastCycle,
    Lateness,
    SiteCounts,
    UnverifiedSite,
)
from ..errors import StoreError
from ..text import one_line
from . import fleet
from .database import Database

# A round of a running collector (collector_id set) lasts one interval by design: only a
# `collect --once` cycle can overrun; a round says how it kept up by its lateness.
# A cycle cut short by a requested stop says "stopped after ..." ("interrupted after ..." before
# 0.x): neither a success nor a failure.
_STOPPED = "(error ~ '^(stopped|interrupted) after ')"
_CYCLES_24H = f"""
SELECT count(*) AS cycles,
       count(*) FILTER (WHERE error IS NULL) AS succeeded,
       count(*) FILTER (WHERE {_STOPPED}) AS stopped,
       round(avg(duration_ms)) AS mean_duration_ms,
       max(duration_ms) AS max_duration_ms,
       count(*) FILTER (WHERE duration_ms > %s AND collector_id IS NULL) AS overruns
  FROM monitoring_cycles
 WHERE started_at > now() - interval '24 hours' AND NOT dry_run
"""
_LATENESS_24H = """
SELECT count(*) AS rounds, max(late_ms) AS max_late_ms
  FROM monitoring_cycles
 WHERE started_at > now() - interval '24 hours' AND NOT dry_run AND collector_id IS NOT NULL
"""
_LAST_ROUND = """
SELECT late_ms, finished_at, collector_id
  FROM monitoring_cycles WHERE NOT dry_run AND collector_id IS NOT NULL
 ORDER BY started_at DESC LIMIT 1
"""
_NOW = "SELECT now() AS now"
_SITES = "SELECT count(*) FILTER (WHERE is_active) AS active, count(*) AS total FROM sites"
_LAST_CYCLE = """
SELECT id, started_at, finished_at, location, sites_checked, up, down, duration_ms, error,
       collector_id, late_ms
  FROM monitoring_cycles WHERE NOT dry_run ORDER BY started_at DESC LIMIT 1
"""
_PINGS_OF_CYCLE = """
SELECT status, coalesce(error_category, 'none') AS category, count(*) AS n
  FROM pings WHERE location = %s AND checked_at >= %s AND checked_at <= %s
 GROUP BY 1, 2
"""
_ERRORS_24H = """
SELECT error_category, count(*) AS n FROM pings
 WHERE checked_at > now() - interval '24 hours' AND error_category IS NOT NULL
 GROUP BY 1 ORDER BY 2 DESC
"""
_FAILED_CYCLES_24H = f"""
SELECT count(*) AS n FROM monitoring_cycles
 WHERE started_at > now() - interval '24 hours' AND error IS NOT NULL AND NOT {_STOPPED}
"""
_PINGS_TABLE_BYTES = """
SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) AS bytes
  FROM pg_inherits WHERE inhparent = 'pings'::regclass
"""
# A cycle's error names its collector faults as "N collector fault(s): ..."
# (collector.reporting.cycle_error); read back here rather than kept in a column of their own.
_FAULTS = r"coalesce((regexp_match(error, '(\d+) collector fault'))[1]::int, 0)"
_LAST_FINISHED = f"""
SELECT finished_at AS at, {_FAULTS} AS faults FROM monitoring_cycles
 WHERE NOT dry_run AND finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1
"""
_FAULTS_24H = f"""
SELECT coalesce(sum({_FAULTS}), 0) AS n FROM monitoring_cycles
 WHERE started_at > now() - interval '24 hours' AND error LIKE '%collector fault%'
"""
TLS_UNVERIFIED_SHOWN = 100
_TLS_UNVERIFIED = """
SELECT id, coalesce(name, '') AS name, url, count(*) OVER () AS total FROM sites
 WHERE is_active AND NOT tls_verify ORDER BY created_at, url LIMIT %s
"""
CERT_EXPIRING_SHOWN = 100
# Active sites whose latest certificate expires within their cert_min_days (or has expired).
_CERT_EXPIRING = """
SELECT s.id, coalesce(s.name, '') AS name, s.url, ss.cert_expires_at AS expires_at,
       s.cert_min_days AS min_days,
       extract(epoch FROM ss.cert_expires_at - now()) / 86400 AS days_left,
       count(*) OVER () AS total
  FROM site_stats AS ss JOIN sites AS s ON s.id = ss.site_id
 WHERE s.is_active AND ss.cert_expires_at < now() + make_interval(days => s.cert_min_days)
 ORDER BY ss.cert_expires_at, s.id LIMIT %s
"""
_SITE_METRICS = """
SELECT s.id AS site_id, coalesce(s.name, '') AS name, s.url,
       ss.current_status, ss.last_checked,
       ss.uptime_1h, ss.uptime_24h, ss.uptime_7d, ss.pings_1h, ss.pings_24h, ss.pings_7d,
       latest.response_time_ms, latest.dns_ms, latest.connect_ms, latest.tls_ms,
       latest.ttfb_ms, latest.transfer_ms, ss.cert_expires_at
  FROM site_stats AS ss
  JOIN sites AS s ON s.id = ss.site_id
  LEFT JOIN LATERAL (
        SELECT p.response_time_ms, p.dns_ms, p.connect_ms, p.tls_ms, p.ttfb_ms, p.transfer_ms
          FROM pings AS p
         WHERE p.site_id = ss.site_id AND p.checked_at = ss.last_checked
         ORDER BY p.location COLLATE "C" DESC
         LIMIT 1) AS latest ON true
 WHERE s.is_active
 ORDER BY s.id
"""
# The latest ping is the one site_stats names (refreshed after every stored cycle): a primary
# key lookup per site, where "the newest ping of each site" would scan a window of pings.


@contextmanager
def _reading(db: Database, timeout_ms: int | None) -> Iterator[psycopg.Connection[Any]]:
    try:
        with db.connect(timeout_ms=timeout_ms) as conn:
            yield conn
    except psycopg.Error as exc:
        text = one_line(exc, 300) or type(exc).__name__
        raise StoreError(f"the database did not answer: {text}") from exc


def status_facts(
    db: Database, *, interval_ms: int, lease_ms: int, timeout_ms: int | None = None
) -> DatabaseStatus:
    """What ``uptimelab status`` reads from the database: cycles of the last 24 hours (a
    ``collect --once`` cycle longer than ``interval_ms`` is an overrun), the rounds' lateness,
    the collectors seen in the last day (stale: no heartbeat for ``lease_ms``), sites, the last
    cycle and its pings, errors by category, failed cycles, and the size of the pings table."""
    with _reading(db, timeout_ms) as conn:
        counts = conn.execute(_CYCLES_24H, (interval_ms,)).fetchone() or {}
        lateness = _lateness(conn)
        collectors = _collectors(conn, lease_ms)
        cycles = int(counts.get("cycles") or 0)
        succeeded = int(counts.get("succeeded") or 0)
        stopped = int(counts.get("stopped") or 0)
        judged = cycles - stopped
        mean = counts.get("mean_duration_ms")
        sites = conn.execute(_SITES).fetchone() or {"active": 0, "total": 0}
        last = conn.execute(_LAST_CYCLE).fetchone()
        if last is not None and last["finished_at"] is not None:
            rows = conn.execute(
                _PINGS_OF_CYCLE, (last["location"], last["started_at"], last["finished_at"])
            ).fetchall()
            by_status: dict[str, int] = {}
            for r in rows:
                by_status[r["status"]] = by_status.get(r["status"], 0) + int(r["n"])
            last["pings_by_status"] = by_status
            last["pings_by_category"] = {
                r["category"]: int(r["n"]) for r in rows if r["category"] != "none"
            }
        errors = {r["error_category"]: int(r["n"]) for r in conn.execute(_ERRORS_24H)}
        failed = conn.execute(_FAILED_CYCLES_24H).fetchone()
        faults = conn.execute(_FAULTS_24H).fetchone()
        unverified = conn.execute(_TLS_UNVERIFIED, (TLS_UNVERIFIED_SHOWN,)).fetchall()
        expiring = conn.execute(_CERT_EXPIRING, (CERT_EXPIRING_SHOWN,)).fetchall()
        size = conn.execute(_PINGS_TABLE_BYTES).fetchone()
    return DatabaseStatus(
        reachable=True,
        cycles_24h=CycleCounts(
            cycles=cycles,
            succeeded=succeeded,
            stopped=stopped,
            mean_duration_ms=None if mean is None else int(mean),
            max_duration_ms=counts.get("max_duration_ms"),
            overruns=int(counts.get("overruns") or 0),
            success_rate=round(succeeded / judged, 4) if judged else None,
        ),
        lateness=lateness,
        collectors=collectors,
        sites=SiteCounts.model_validate(sites),
        last_cycle=None if last is None else LastCycle.model_validate(last),
        errors_24h_by_category=errors,
        failed_cycles_24h=int(failed["n"]) if failed else 0,
        collector_faults_24h=int(faults["n"]) if faults else 0,
        tls_unverified_sites=int(unverified[0]["total"]) if unverified else 0,
        tls_unverified=[
            UnverifiedSite(id=r["id"], name=r["name"], url=redact(r["url"])) for r in unverified
        ],
        cert_expiring_sites=int(expiring[0]["total"]) if expiring else 0,
        cert_expiring=[_expiring(r) for r in expiring],
        pings_table_bytes=int(size["bytes"]) if size else 0,
    )


def _expiring(row: dict[str, Any]) -> ExpiringCertificate:
    return ExpiringCertificate(
        id=row["id"],
        name=row["name"],
        url=redact(row["url"]),
        expires_at=row["expires_at"],
        days_left=round(float(row["days_left"]), 1),
        min_days=row["min_days"],
    )


class HealthFacts(NamedTuple):
    """What ``uptimelab health`` reads from the database."""

    last_finished: dt.datetime | None  # the newest stored cycle or round; None before the first
    last_faults: int  # its collector faults (sites that got no ping because our client failed)
    collectors: list[FleetCollector]
    cert_expiring: list[ExpiringCertificate]  # the first CERT_EXPIRING_SHOWN, soonest first


def health_facts(db: Database, *, lease_ms: int, timeout_ms: int | None = None) -> HealthFacts:
    """What ``uptimelab health`` reads from the database, in one connection: when the newest
    stored (not dry-run) cycle or round finished and its collector faults, and the collectors
    seen in the last day (stale: no heartbeat for ``lease_ms``), and the active sites whose
    certificate expires within their ``cert_min_days``."""
    with _reading(db, timeout_ms) as conn:
        row = conn.execute(_LAST_FINISHED).fetchone()
        collectors = _collectors(conn, lease_ms)
        expiring = [_expiring(r) for r in conn.execute(_CERT_EXPIRING, (CERT_EXPIRING_SHOWN,))]
    if row is None:
        return HealthFacts(None, 0, collectors, expiring)
    return HealthFacts(row["at"], int(row["faults"]), collectors, expiring)


def _lateness(conn: psycopg.Connection[Any]) -> Lateness:
    counts = conn.execute(_LATENESS_24H).fetchone() or {}
    last = conn.execute(_LAST_ROUND).fetchone() or {}
    return Lateness(
        rounds=int(counts.get("rounds") or 0),
        max_late_ms=counts.get("max_late_ms"),
        last_round_late_ms=last.get("late_ms"),
        last_round_at=last.get("finished_at"),
        last_round_collector_id=last.get("collector_id"),
    )


def _collectors(conn: psycopg.Connection[Any], lease_ms: int) -> list[FleetCollector]:
    """The collectors seen in the last day; ages by the database's clock, not this box's."""
    row = conn.execute(_NOW).fetchone()
    now: dt.datetime = row["now"] if row else dt.datetime.now(dt.UTC)
    return [
        FleetCollector.model_validate(
            {**c, "heartbeat_age_s": max(0.0, (now - c["heartbeat_at"]).total_seconds())}
        )
        for c in fleet.collectors(conn, lease_ms=lease_ms)
    ]


def site_metrics(db: Database, *, timeout_ms: int | None = None) -> list[dict[str, Any]]:
    """Per active site with stats: id, name, URL (as stored: redact before showing it), current
    status, last check, uptime and ping count per window, the latest response time and its
    phases (``<phase>_ms``, milliseconds), and the latest certificate expiry."""
    with _reading(db, timeout_ms) as conn:
        return conn.execute(_SITE_METRICS).fetchall()
