"""Uptime policies and long windows in the database (``sql/013_uptime_policies.sql``).

* :func:`record_uptime_settings`: the policy ``site_stats`` stores and the defaults the SQL reads
  for sites without their own interval or timeout (the ``uptime_settings`` row); the policy and
  the exclusion only where given explicitly. :func:`note_collector_uptime_settings` is what a
  collector does at start, :func:`uptime_settings_report` what status and health read.
* :func:`expand_maintenance`: recurring maintenance windows (cron) written out as occurrences,
  so that SQL can tell whether a ping fell in one; :func:`maintenance_windows` lists them all.
* :func:`window_stats_rows`: any window (T - W, T] for every site, under any policy: whole days
  from the daily rollup, whole hours from the hourly one, raw pings at the edges; where the far
  edge's raw pings are pruned, from whole hours on and flagged ``from_rollups``.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from pydantic import BaseModel

from ..config import Settings, env_name
from ..errors import ConfigError, StoreError
from ..text import one_line
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


@dataclass(frozen=True, slots=True)
class UptimeSettings:
    """The uptime policy in force: what ``site_stats`` is kept under (the uptime_settings row),
    and who last changed it (None: never since sql/018)."""

    policy: str
    exclude_maintenance: bool
    changed_at: dt.datetime | None = None
    changed_by: str | None = None

    def describe(self) -> str:
        """``UPTIME_POLICY=samples, UPTIME_EXCLUDE_MAINTENANCE=false``."""
        return _describe(self.policy, self.exclude_maintenance)


def _describe(policy: str | None, exclude: bool | None) -> str:
    shown = []
    if policy is not None:
        shown.append(f"{env_name('uptime_policy')}={policy}")
    if exclude is not None:
        shown.append(f"{env_name('uptime_exclude_maintenance')}={str(exclude).lower()}")
    return ", ".join(shown)


def given_uptime_settings(settings: Settings) -> tuple[str | None, bool | None]:
    """UPTIME_POLICY and UPTIME_EXCLUDE_MAINTENANCE as ``settings`` were given them explicitly
    (the environment, an option, an argument); None for one left at its default."""
    given = settings.model_fields_set
    return (
        settings.uptime_policy if "uptime_policy" in given else None,
        settings.uptime_exclude_maintenance if "uptime_exclude_maintenance" in given else None,
    )


def read_uptime_settings(conn: psycopg.Connection[Any]) -> UptimeSettings:
    """The recorded uptime settings (the one row of uptime_settings)."""
    row = conn.execute(
        "SELECT policy, exclude_maintenance, changed_at, changed_by FROM uptime_settings"
    ).fetchone()
    if row is None:  # pragma: no cover - sql/013 inserts the row
        return UptimeSettings("samples", False)
    return UptimeSettings(**row)


def _record(
    conn: psycopg.Connection[Any],
    policy: str | None,
    exclude: bool | None,
    by: str,
    defaults: tuple[int, int] | None = None,
) -> UptimeSettings | None:
    """Write the given policy and exclusion (None: keep the recorded one) and ``defaults``
    (interval, timeout; None: keep them). Returns the settings recorded before when the
    policy or the exclusion changed, else None."""
    before = conn.execute(
        "SELECT policy, exclude_maintenance, changed_at, changed_by FROM uptime_settings FOR UPDATE"
    ).fetchone()
    if before is None:  # pragma: no cover - sql/013 inserts the row
        raise StoreError("the uptime_settings row is missing: run `uptimelab db init`")
    changed = (policy is not None and policy != before["policy"]) or (
        exclude is not None and exclude != before["exclude_maintenance"]
    )
    if changed:
        conn.execute(
            """UPDATE uptime_settings
                  SET policy = coalesce(%s, policy),
                      exclude_maintenance = coalesce(%s, exclude_maintenance),
                      changed_at = now(), changed_by = left(%s, 300)""",
            (policy, exclude, by),
        )
    if defaults is not None:
        conn.execute(
            """UPDATE uptime_settings SET default_interval_ms = %s, default_timeout_ms = %s
                WHERE default_interval_ms IS DISTINCT FROM %s
                   OR default_timeout_ms IS DISTINCT FROM %s""",
            defaults * 2,
        )
    return UptimeSettings(**before) if changed else None


def record_uptime_settings(settings: Settings | None = None, *, db: Database | None = None) -> None:
    """Write the uptime settings of ``settings`` (default: the environment) to the database,
    where the stats refresh, the rollups and the collectors' per-batch refresh read them:
    MONITORING_INTERVAL_MS and PING_TIMEOUT_MS (the defaults of sites without their own), and
    UPTIME_POLICY and UPTIME_EXCLUDE_MAINTENANCE where they were given explicitly (one left at
    its default keeps the recorded one: a `maintain` run from cron does not undo the policy a
    collector was started with). Raises StoreError when the database fails."""
    conf = settings or Settings.load()
    policy, exclude = given_uptime_settings(conf)
    with default_db(db).connect() as conn:
        _record(
            conn,
            policy,
            exclude,
            _this_process("refresh"),
            (conf.monitoring_interval_ms, conf.ping_timeout_ms),
        )


def _this_process(what: str) -> str:
    return f"{what} on {socket.gethostname()} pid {os.getpid()}"


def note_collector_uptime_settings(
    conn: psycopg.Connection[Any], collector_id: uuid.UUID, settings: Settings
) -> tuple[UptimeSettings, UptimeSettings] | None:
    """At a collector's start: note the uptime settings it was given explicitly (health
    compares them with the recorded ones while it runs) and record them where they differ.
    Returns (before, after) when the recorded policy or exclusion changed (then site_stats
    wants a full refresh), else None. Nothing given explicitly: nothing noted, None."""
    policy, exclude = given_uptime_settings(settings)
    if policy is None and exclude is None:
        return None
    conn.execute(
        """INSERT INTO collector_uptime_settings (collector_id, policy, exclude_maintenance)
           VALUES (%s, %s, %s)
           ON CONFLICT (collector_id) DO UPDATE
              SET policy = EXCLUDED.policy, exclude_maintenance = EXCLUDED.exclude_maintenance,
                  noted_at = now()""",
        (collector_id, policy, exclude),
    )
    by = _this_process(f"collector {str(collector_id)[:8]}")
    before = _record(conn, policy, exclude, by)
    if before is None:
        return None
    return before, read_uptime_settings(conn)


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A running collector started with uptime settings other than the recorded ones."""

    collector_id: uuid.UUID
    host: str
    pid: int
    location: str
    policy: str | None
    exclude_maintenance: bool | None

    def describe(self) -> str:
        """What it was given, as ``UPTIME_POLICY=time``."""
        return _describe(self.policy, self.exclude_maintenance)


_DISAGREEING = """
SELECT c.id AS collector_id, c.host, c.pid, c.location, cs.policy, cs.exclude_maintenance
  FROM collector_uptime_settings AS cs
  JOIN collectors AS c ON c.id = cs.collector_id
  CROSS JOIN uptime_settings AS u
 WHERE c.stopped_at IS NULL
   AND c.heartbeat_at > now() - make_interval(secs => %s / 1000.0)
   AND (cs.policy <> u.policy OR cs.exclude_maintenance <> u.exclude_maintenance)
 ORDER BY c.location, c.started_at
"""


def uptime_settings_report(
    db: Database, *, lease_ms: int, timeout_ms: int | None = None
) -> tuple[UptimeSettings, list[Disagreement]]:
    """The recorded uptime settings, and the running collectors (a heartbeat within
    ``lease_ms``) whose explicit ones differ, on a connection of their own (status, health).
    Raises StoreError when the database cannot be reached or is not migrated."""
    try:
        with db.connect(timeout_ms=timeout_ms) as conn:
            recorded = read_uptime_settings(conn)
            rows = conn.execute(_DISAGREEING, (lease_ms,)).fetchall()
    except psycopg.Error as exc:
        raise StoreError(f"uptime settings not readable: {one_line(exc, 200)}") from exc
    return recorded, [Disagreement(**r) for r in rows]


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
