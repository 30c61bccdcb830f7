"""The ``site_stats`` table: refresh it (the fast rollup path in SQL) and read it.

The numbers follow the contract in ``sql/003_stats.sql`` and ``sql/013_uptime_policies.sql``
(and the README): windows (T - W, T] over all locations, uptime as REAL under the uptime policy
(UPTIME_POLICY, UPTIME_EXCLUDE_MAINTENANCE), average response time of up pings rounded half away
from zero, coverage. ``uptimelab.stats.window_stats`` computes the same numbers from a pings frame.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from ..config import Settings
from ..domain.redaction import redact
from ..errors import ConfigError
from .database import Database, default_db
from .models import Site, SiteStats
from .sites import get_site
from .windows import check_policy, expand_maintenance, record_uptime_settings

STATS_COLUMNS = tuple(SiteStats.model_fields)
SETTLE_CHUNK_ROWS = 5000
"""Dirty rollup rows settled per transaction by :func:`refresh_stats`."""
SORTABLE = tuple(c for c in STATS_COLUMNS if c not in ("id", "site_id"))
_SELECT = f"SELECT {', '.join('ss.' + c for c in STATS_COLUMNS)} FROM site_stats AS ss"


def refresh_stats(
    site: str | uuid.UUID | None = None,
    *,
    at: dt.datetime | None = None,
    db: Database | None = None,
    settings: Settings | None = None,
) -> int:
    """Recompute ``site_stats`` for one site (by id or URL) or, with none, for every site.

    ``at`` is the refresh time T (default: the database's now()). The uptime policy and the
    defaults come from ``settings`` (default: the environment) and are recorded in the database
    first, where the collector's per-batch refresh reads them too; recurring maintenance is
    expanded ahead. Returns the rows written. Raises UnknownSiteError for an unknown site.
    """
    database = default_db(db)
    only: list[uuid.UUID] | None = None
    if site is not None:
        only = [get_site(site, db=database).id]
    record_uptime_settings(settings, db=database)
    expand_maintenance(at or dt.datetime.now(dt.UTC), db=database)
    with database.connect() as conn:
        conn.execute("SELECT uptimelab_advance_rollup(now())")
    # Every rollup row settled first (the per-batch refresh settles a share at a time), in
    # bounded transactions: after sql/013 is applied to a long history every row is dirty once.
    while True:
        with database.connect() as conn:
            settled = conn.execute(
                "SELECT uptimelab_settle_rollup(%s) AS n", (SETTLE_CHUNK_ROWS,)
            ).fetchone()
        if not settled or settled["n"] < SETTLE_CHUNK_ROWS:
            break
    with database.connect() as conn:
        row = conn.execute(
            "SELECT uptimelab_refresh_site_stats(coalesce(%s, now()), %s) AS n", (at, only)
        ).fetchone()
    return int(row["n"]) if row else 0


def compute_site_stats(
    *,
    policy: str | None = None,
    exclude_maintenance: bool | None = None,
    sort: str = "uptime_24h",
    status: str | None = None,
    at: dt.datetime | None = None,
    db: Database | None = None,
) -> list[SiteStats]:
    """Every site's ``site_stats`` columns computed now under ``policy`` and
    ``exclude_maintenance`` (None: the recorded settings), without storing them; sorted and
    filtered as :func:`site_stats` does. ``at`` is T (default: the database's now()). Raises
    ConfigError for an unknown policy, sort column or status."""
    check_policy(policy)
    descending = sort.startswith("-")
    column = sort.lstrip("-")
    _check_sort(sort, status)
    database = default_db(db)
    expand_maintenance(at or dt.datetime.now(dt.UTC), db=database)
    with database.connect() as conn:
        rows = conn.execute(
            "SELECT f.*, %s::text IS NULL AS recorded, u.policy AS recorded_policy, "
            "u.exclude_maintenance AS recorded_exclusion, now() AS recorded_at "
            "FROM uptimelab_site_stats_policy_at(coalesce(%s, now()), %s, %s) AS f "
            "CROSS JOIN uptime_settings AS u ORDER BY f.site_id",
            (policy, at, policy, exclude_maintenance),
        ).fetchall()
    out = []
    for row in rows:
        values = {k: v for k, v in row.items() if not k.startswith("recorded")}
        # Computed, not stored: made and updated now.
        values["created_at"] = values["updated_at"] = row["recorded_at"]
        values["policy"] = policy or row["recorded_policy"]
        values["maintenance_excluded"] = (
            row["recorded_exclusion"] if exclude_maintenance is None else exclude_maintenance
        )
        out.append(SiteStats.model_validate(values))
    kept = [r for r in out if status is None or r.current_status == status]
    kept.sort(key=lambda r: getattr(r, column), reverse=descending)
    return kept


def _check_sort(sort: str, status: str | None) -> None:
    if sort.lstrip("-") not in SORTABLE:
        raise ConfigError(
            f"sort key {sort!r} is not one of {', '.join(SORTABLE)} ('-' first for descending)"
        )
    if status not in (None, "up", "down"):
        raise ConfigError(f"status {status!r} is not up or down")


def site_stats(
    *, sort: str = "uptime_24h", status: str | None = None, db: Database | None = None
) -> list[SiteStats]:
    """Every site's stats, sorted by ``sort`` (ascending; worst uptime first by default) and
    optionally only those whose ``current_status`` is ``status`` ('up' or 'down').

    Raises ConfigError for an unknown sort column or status.
    """
    descending = sort.startswith("-")
    column = sort.lstrip("-")
    _check_sort(sort, status)
    where = "" if status is None else "WHERE ss.current_status = %(status)s"
    order = f"ss.{column} {'DESC' if descending else 'ASC'}, ss.site_id"
    with default_db(db).connect() as conn:
        rows = conn.execute(f"{_SELECT} {where} ORDER BY {order}", {"status": status}).fetchall()
    return [SiteStats.model_validate(r) for r in rows]


def get_site_stats(site: str | uuid.UUID, *, db: Database | None = None) -> SiteStats | None:
    """One site's stats (by id or URL); None when it has no ping yet.

    Raises UnknownSiteError for an unknown site.
    """
    database = default_db(db)
    found = get_site(site, db=database)
    with database.connect() as conn:
        row = conn.execute(f"{_SELECT} WHERE ss.site_id = %s", (found.id,)).fetchone()
    return None if row is None else SiteStats.model_validate(row)


def stats_records(rows: Sequence[SiteStats], sites: Iterable[Site]) -> list[dict[str, Any]]:
    """Rows as ``uptimelab stats --format json`` and ``GET /site-stats`` give them: the site's
    name and URL (credentials redacted), then every site_stats column but id and created_at."""
    by_id = {s.id: s for s in sites}
    out = []
    for row in rows:
        site = by_id.get(row.site_id)
        entry: dict[str, Any] = {
            "name": site.name if site else None,
            "url": redact(site.url) if site else None,
        }
        entry.update(row.model_dump(mode="json", exclude={"id", "created_at"}))
        out.append(entry)
    return out
