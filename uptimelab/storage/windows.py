"""Uptime policies and long windows in the database (``sql/013_uptime_policies.sql``).

* :func:`record_uptime_settings`: the policy ``site_stats`` stores and the defaults the SQL reads
  for sites without their own interval or timeout (the ``uptime_settings`` row).
* :func:`expand_maintenance`: recurring maintenance windows (cron) written out as occurrences,
  so that SQL can tell whether a ping fell in one; :func:`maintenance_windows` lists them all.
* :func:`window_stats_rows`: any window (T - W, T] for every site, under any policy: whole days
  from the daily rollup, whole hours from the hourly one, raw pings at the edges; where the far
  edge's raw pings are pruned, from whole hours on and flagged ``from_rollups``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, Final

import psycopg
from pydantic import BaseModel

from ..config import Settings
from ..errors import ConfigError, StoreError
from .database import Database, default_db

POLICIES: Final = ("samples", "confirmed", "time")
EXPAND_AHEAD: Final = dt.timedelta(days=35)
"""Recurring maintenance is written out this far past the time asked for, so that the
collector's per-batch refresh (SQL alone) finds the occurrences of the coming weeks."""
MAX_OCCURRENCES: Final = 100_000
"""At most this many occurrences of one recurring window are written in one go."""


class WindowStats(BaseModel):
    """One site's numbers over one window (see sql/013 for the definitions)."""

    site_id: uuid.UUID
    uptime: float
    avg_response_time: int
    pings: int
    coverage: float
    from_rollups: bool
    counted_from: dt.datetime


def check_policy(policy: str | None) -> None:
    """Raises ConfigError when ``policy`` is neither None nor one of :data:`POLICIES`."""
    if policy is not None and policy not in POLICIES:
        raise ConfigError(f"policy {policy!r} is not one of {', '.join(POLICIES)}")


def record_uptime_settings(settings: Settings | None = None, *, db: Database | None = None) -> None:
    """Write UPTIME_POLICY, UPTIME_EXCLUDE_MAINTENANCE, MONITORING_INTERVAL_MS and
    PING_TIMEOUT_MS (from ``settings``, default: the environment) to the database, where the
    stats refresh and the rollups read them. Raises StoreError when the database fails."""
    conf = settings or Settings.load()
    with default_db(db).connect() as conn:
        conn.execute(
            """UPDATE uptime_settings SET policy = %s, exclude_maintenance = %s,
                      default_interval_ms = %s, default_timeout_ms = %s
                WHERE policy IS DISTINCT FROM %s OR exclude_maintenance IS DISTINCT FROM %s
                   OR default_interval_ms IS DISTINCT FROM %s
                   OR default_timeout_ms IS DISTINCT FROM %s""",
            (
                conf.uptime_policy,
                conf.uptime_exclude_maintenance,
                conf.monitoring_interval_ms,
                conf.ping_timeout_ms,
            )
            * 2,
        )


def expand_maintenance(until: dt.datetime, *, db: Database | None = None) -> int:
    """Write the occurrences of every recurring maintenance window up to ``until`` +
    :data:`EXPAND_AHEAD` (idempotent: each window continues from where it was expanded to).
    Returns the occurrences written. Raises ConfigError for a cron expression croniter cannot
    read, StoreError when the database fails."""
    from croniter import croniter  # only where recurring windows are expanded

    horizon = until.astimezone(dt.UTC) + EXPAND_AHEAD
    written = 0
    with default_db(db).connect() as conn:
        windows = conn.execute(
            """SELECT m.id, m.cron, m.duration_ms, m.starts_at, m.ends_at, e.expanded_until
                 FROM maintenance AS m
                 LEFT JOIN maintenance_expanded AS e ON e.maintenance_id = m.id
                WHERE m.cron IS NOT NULL
                  AND (e.expanded_until IS NULL
                       OR (e.expanded_until < %s
                           AND (m.ends_at IS NULL OR e.expanded_until < m.ends_at)))
                FOR UPDATE OF m""",
            (horizon,),
        ).fetchall()
        for w in windows:
            start = w["expanded_until"] or w["starts_at"]
            stop = horizon if w["ends_at"] is None else min(horizon, w["ends_at"])
            duration = dt.timedelta(milliseconds=w["duration_ms"])
            try:
                # The first opening at or after ``start``: step from just before it.
                it = croniter(w["cron"], start.astimezone(dt.UTC) - dt.timedelta(microseconds=1))
            except (ValueError, KeyError) as exc:
                raise ConfigError(f"maintenance {w['id']}: cron {w['cron']!r}: {exc}") from exc
            rows: list[tuple[Any, dt.datetime, dt.datetime]] = []
            while len(rows) < MAX_OCCURRENCES:
                opens = it.get_next(dt.datetime)
                if opens >= stop:
                    break
                rows.append((w["id"], opens, opens + duration))
            if rows:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO maintenance_occurrences (maintenance_id, starts_at, ends_at) "
                        "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                        rows,
                    )
            reached = rows[-1][1] + dt.timedelta(microseconds=1) if rows else stop
            reached = max(reached, stop) if len(rows) < MAX_OCCURRENCES else reached
            conn.execute(
                """INSERT INTO maintenance_expanded (maintenance_id, expanded_until)
                   VALUES (%s, %s) ON CONFLICT (maintenance_id)
                   DO UPDATE SET expanded_until = EXCLUDED.expanded_until""",
                (w["id"], reached),
            )
            written += len(rows)
    return written


def maintenance_windows(
    since: dt.datetime, until: dt.datetime, *, db: Database | None = None
) -> list[dict[str, Any]]:
    """Every maintenance window (one-off, or an occurrence of a recurring one) overlapping
    [since, until), as ``site_id`` (None: every site), ``starts_at``, ``ends_at``: the frame
    ``ul.stats.window_stats(maintenance=...)`` reads. Expands recurring windows first."""
    database = default_db(db)
    expand_maintenance(until, db=database)
    with database.connect() as conn:
        rows = conn.execute(
            "SELECT site_id, starts_at, ends_at FROM uptimelab_maintenance_windows(%s, %s) "
            "ORDER BY starts_at, site_id NULLS FIRST",
            (since, until),
        ).fetchall()
    return [dict(r) for r in rows]


def window_stats_rows(
    window: dt.timedelta,
    *,
    at: dt.datetime | None = None,
    policy: str | None = None,
    exclude_maintenance: bool | None = None,
    sites: Sequence[uuid.UUID] | None = None,
    db: Database | None = None,
) -> list[WindowStats]:
    """Every site's numbers over the window (at - window, at] (``at`` default: the database's
    now()), under ``policy`` and ``exclude_maintenance`` (None: the recorded settings), for
    ``sites`` (None: all). One row per site with a ping received in the window, by site id.

    Raises ConfigError for an unknown policy or a window under an hour, StoreError when the
    database fails.
    """
    check_policy(policy)
    if window < dt.timedelta(hours=1):
        raise ConfigError(f"window {window} is shorter than an hour")
    database = default_db(db)
    expand_maintenance(at or dt.datetime.now(dt.UTC), db=database)
    try:
        with database.connect() as conn:
            rows = conn.execute(
                "SELECT * FROM uptimelab_window_at(coalesce(%s, now()), %s, %s, %s, %s) "
                "ORDER BY site_id",
                (at, window, policy, exclude_maintenance, list(sites) if sites else None),
            ).fetchall()
    except psycopg.errors.InvalidParameterValue as exc:
        raise ConfigError(str(exc.diag.message_primary)) from exc
    except psycopg.Error as exc:  # pragma: no cover - the database's own faults
        raise StoreError(f"window stats failed: {exc}") from exc
    return [WindowStats.model_validate(r) for r in rows]
