"""Maintenance windows in the database: added, listed, removed, and asked about.

The rules are in :mod:`uptimelab.domain.maintenance`; ``sql/011_incidents.sql`` has the table.
:func:`in_maintenance` is what the notifier asks before it tells anyone of a transition.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ..domain.maintenance import (
    MaintenanceWindow,
    UnknownMaintenanceError,
    in_any,
    maintenance_spec,
)
from ..errors import StoreError
from ..text import one_line
from .database import Database, default_db

_COLUMNS = "id, site_id, starts_at, ends_at, cron, duration_ms, reason, created_at"

Connectable = Database | psycopg.Connection[Any]


def add_maintenance(
    *,
    site: str | uuid.UUID | None = None,
    starts_at: dt.datetime | None = None,
    ends_at: dt.datetime | None = None,
    cron: str | None = None,
    duration_ms: int | None = None,
    reason: str | None = None,
    db: Database | None = None,
) -> MaintenanceWindow:
    """Add a maintenance window of ``site`` (id or URL; None: every site).

    One-off: ``[starts_at, ends_at)``. Recurring: opens at each time ``cron`` (five fields, UTC)
    names from ``starts_at`` (default: now) until ``ends_at`` (None: for ever), for
    ``duration_ms`` milliseconds. Times must carry a time zone. Raises MaintenanceError for a
    window that breaks a rule, UnknownSiteError, StoreError."""
    database = default_db(db)
    site_id = None
    if site is not None:
        from .sites import get_site

        site_id = get_site(site, db=database).id
    spec = maintenance_spec(
        site_id=site_id,
        starts_at=starts_at or dt.datetime.now(dt.UTC).replace(microsecond=0),
        ends_at=ends_at,
        cron=cron,
        duration_ms=duration_ms,
        reason=reason,
    )
    values = spec.model_dump()
    try:
        with database.connect() as conn:
            row = conn.execute(
                f"INSERT INTO maintenance ({', '.join(values)}) "
                f"VALUES ({', '.join(f'%({c})s' for c in values)}) RETURNING {_COLUMNS}",
                values,
            ).fetchone()
    except psycopg.Error as exc:
        raise StoreError(f"cannot add the maintenance window: {one_line(exc)}") from exc
    assert row is not None
    return MaintenanceWindow(**row)


def list_maintenance(
    *,
    site: str | uuid.UUID | None = None,
    current_at: dt.datetime | None = None,
    db: Database | None = None,
) -> list[MaintenanceWindow]:
    """Maintenance windows, by start. ``site``: those that apply to it (its own and those of
    every site); ``current_at``: only those open at that time. Raises UnknownSiteError,
    StoreError."""
    database = default_db(db)
    site_id = None
    if site is not None:
        from .sites import get_site

        site_id = get_site(site, db=database).id
    found = maintenance_windows(database, None if site_id is None else [site_id])
    if current_at is not None:
        found = [w for w in found if w.contains(current_at)]
    return found


def remove_maintenance(window_id: int, *, db: Database | None = None) -> MaintenanceWindow:
    """Delete a maintenance window; returns it. Raises UnknownMaintenanceError, StoreError."""
    try:
        with default_db(db).connect() as conn:
            row = conn.execute(
                f"DELETE FROM maintenance WHERE id = %s RETURNING {_COLUMNS}", (window_id,)
            ).fetchone()
    except psycopg.Error as exc:
        raise StoreError(f"cannot remove maintenance window {window_id}: {one_line(exc)}") from exc
    if row is None:
        raise UnknownMaintenanceError(f"no maintenance window has id {window_id}")
    return MaintenanceWindow(**row)


def maintenance_windows(
    conn_or_db: Connectable, site_ids: Iterable[uuid.UUID] | None = None
) -> list[MaintenanceWindow]:
    """The windows that apply to any of ``site_ids`` (None: every window), by start: read once,
    then asked with :meth:`MaintenanceWindow.contains` or :func:`in_maintenance_batch`.
    Raises StoreError."""
    where, params = "", []
    if site_ids is not None:
        where = "WHERE site_id IS NULL OR site_id = ANY (%s)"
        params.append(list(site_ids))
    sql = f"SELECT {_COLUMNS} FROM maintenance {where} ORDER BY starts_at, id"
    try:
        if isinstance(conn_or_db, Database):
            with conn_or_db.connect() as conn:
                rows = conn.execute(sql, params).fetchall()
        else:
            with conn_or_db.cursor(row_factory=dict_row) as cur:
                rows = cur.execute(sql, params).fetchall()
    except psycopg.Error as exc:
        raise StoreError(f"cannot read maintenance windows: {one_line(exc)}") from exc
    return [MaintenanceWindow(**r) for r in rows]


def in_maintenance(conn_or_db: Connectable, site_id: uuid.UUID, at: dt.datetime) -> bool:
    """Whether ``at`` (timezone-aware) falls in a maintenance window of the site or of every
    site: a one-off window ``[starts_at, ends_at)``, or an opening of a recurring one
    ``[opening, opening + duration_ms)``. ``conn_or_db``: a Database or an open connection
    (inside the caller's transaction). Raises StoreError."""
    return in_any(maintenance_windows(conn_or_db, [site_id]), site_id, at)


def in_maintenance_batch(
    conn_or_db: Connectable, moments: Iterable[tuple[uuid.UUID, dt.datetime]]
) -> list[bool]:
    """:func:`in_maintenance` for many (site, time) pairs with one read of the table."""
    asked = list(moments)
    windows = maintenance_windows(conn_or_db, {s for s, _ in asked})
    return [in_any(windows, site_id, at) for site_id, at in asked]
