"""Incidents in the database: kept as pings are stored, listed, rebuilt.

The rules are in ``sql/011_incidents.sql``: each (site, location) series, and the quorum verdict
of a site two or more locations report, runs a state machine (``down_after`` consecutive down
samples confirm an incident, ``up_after`` consecutive up ones resolve it). The writer calls
:func:`track_incidents` in the transaction that stores a batch: the incidents of the series the
batch touched are recomputed from a safe point before its earliest ping, so a replayed spool or a
late ping leaves the same table as pings stored in order, and nothing is lost across a restart.
Its entry point (``sql/017_incident_tracking_fast.sql``) first sets aside, in one statement, the
sites in which nothing can change (all up, one location, no incident lasting to the batch, not
flapping): the common case costs a few index probes a ping.
What changed in each site's own state comes back as :class:`~uptimelab.domain.incidents.Transition`
values for the notifier.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ..config import Settings
from ..domain.incidents import Transition
from ..errors import StoreError
from ..text import one_line
from .database import Database, default_db
from .spool import PingRow

# The arrays go in binary (%b): 10 000 series as text cost the server more to parse than
# judging them.
_TRACK = (
    "SELECT kind, site_id, location, at, incident_id, started_at, resolved_at, category, message "
    "FROM uptimelab_track_incidents_fast(%b, %b, %b, %b, %b, %s, %s, %s, %s)"
)
_COLUMNS = (
    "id, site_id, location, started_at, confirmed_at, resolved_at, category, message, down_pings"
)


@dataclass(frozen=True, slots=True)
class IncidentRules:
    """The settings incident tracking needs, which SQL cannot read: the default interval (the
    quorum verdict's reach), the quorum, and the flapping threshold."""

    default_interval_ms: int = 60_000
    quorum: int | None = None
    flap_changes: int = 6
    flap_window_ms: int = 3_600_000

    @classmethod
    def from_settings(cls, settings: Settings) -> IncidentRules:
        return cls(
            default_interval_ms=settings.monitoring_interval_ms,
            quorum=settings.quorum,
            flap_changes=settings.flap_changes,
            flap_window_ms=settings.flap_window_ms,
        )


@dataclass(frozen=True, slots=True)
class Incident:
    """One row of ``incidents``: a confirmed outage of a site at one location, or of its quorum
    verdict (``location`` None). ``resolved_at`` is None while it lasts."""

    id: int
    site_id: uuid.UUID
    location: str | None
    started_at: dt.datetime
    confirmed_at: dt.datetime
    resolved_at: dt.datetime | None
    category: str | None
    message: str | None
    down_pings: int
    site_name: str | None = None

    @property
    def duration(self) -> dt.timedelta | None:
        """resolved_at - started_at; None while it lasts."""
        return None if self.resolved_at is None else self.resolved_at - self.started_at


def track_incidents(
    conn: psycopg.Connection[Any], rows: Sequence[PingRow], rules: IncidentRules
) -> list[Transition]:
    """Bring the incidents of the series ``rows`` touched up to date, on ``conn`` inside the
    caller's transaction (the one that stored the rows), and return the transitions of each
    site's own state in time order. Rows of sites that no longer exist are ignored."""
    if not rows:
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        found_rows = cur.execute(_TRACK, series_params(rows, rules)).fetchall()
    return [Transition(**r) for r in found_rows]


def series_params(rows: Sequence[PingRow], rules: IncidentRules) -> tuple[Any, ...]:
    """The arguments of ``uptimelab_track_incidents(_fast)`` for a batch of ping rows: its
    series (site, location), each with its earliest and latest ping and whether they
    were all up, then the rules."""
    series: dict[tuple[uuid.UUID, str], list[Any]] = {}
    for row in rows:
        key, at, up = (row[0], row[7]), row[1], row[2] == "up"
        found = series.get(key)
        if found is None:
            series[key] = [at, at, up]
        else:
            if at < found[0]:
                found[0] = at
            if at > found[1]:
                found[1] = at
            found[2] = found[2] and up
    keys, spans = list(series), list(series.values())  # in the batch's order: SQL sorts
    return (
        [k[0] for k in keys],
        [k[1] for k in keys],
        [v[0] for v in spans],
        [v[1] for v in spans],
        [v[2] for v in spans],
        rules.default_interval_ms,
        rules.quorum,
        rules.flap_changes,
        rules.flap_window_ms,
    )


def list_incidents(
    *,
    open_only: bool = False,
    site: str | uuid.UUID | None = None,
    since: dt.datetime | None = None,
    location: str | None = None,
    own_only: bool = False,
    limit: int | None = None,
    db: Database | None = None,
) -> list[Incident]:
    """Incidents, newest first. ``open_only``: only those still lasting; ``site``: one site (id
    or URL); ``since``: those lasting at or after this time (resolved after it, or open);
    ``location``: one location's; ``own_only``: only each site's own state (the quorum
    verdict's where two or more locations report, else its one location's). Raises
    UnknownSiteError for an unknown site, StoreError when the database fails."""
    where = ["true"]
    params: list[Any] = []
    if site is not None:
        from .sites import get_site  # here: no SQLModel for plain listings

        where.append("i.site_id = %s")
        params.append(get_site(site, db=db).id)
    if open_only:
        where.append("i.resolved_at IS NULL")
    if since is not None:
        where.append("(i.resolved_at IS NULL OR i.resolved_at > %s)")
        params.append(since)
    if location is not None:
        where.append("i.location = %s")
        params.append(location)
    if own_only:
        where.append(
            "(i.location IS NULL OR NOT EXISTS (SELECT 1 FROM incident_series AS x "
            "WHERE x.site_id = i.site_id AND x.location <> i.location))"
        )
    sql = (
        f"SELECT {', '.join('i.' + c.strip() for c in _COLUMNS.split(','))}, s.name AS site_name "
        "FROM incidents AS i JOIN sites AS s ON s.id = i.site_id "
        f"WHERE {' AND '.join(where)} ORDER BY i.started_at DESC, i.id DESC"
    )
    if limit is not None:
        sql += " LIMIT %s"
        params.append(limit)
    try:
        with default_db(db).connect() as conn, conn.cursor(row_factory=dict_row) as cur:
            return [Incident(**r) for r in cur.execute(sql, params).fetchall()]
    except psycopg.Error as exc:
        raise StoreError(f"cannot read incidents: {one_line(exc)}") from exc


def rebuild_incidents(
    *,
    sites: Sequence[uuid.UUID] | None = None,
    settings: Settings | None = None,
    db: Database | None = None,
) -> int:
    """Recompute every incident of ``sites`` (None: all) from their first ping, keeping the ids
    of incidents found again; for pings written without the collector (a plain INSERT). Sends
    no transitions. Returns the incidents now stored for those sites. Raises StoreError."""
    database = default_db(db)
    rules = IncidentRules.from_settings(settings or Settings.load(database_url=database.url))
    try:
        with database.connect() as conn:
            row = conn.execute(
                "SELECT uptimelab_rebuild_incidents(%s, %s, %s) AS n",
                (rules.default_interval_ms, rules.quorum, None if sites is None else list(sites)),
            ).fetchone()
    except psycopg.Error as exc:
        raise StoreError(f"cannot rebuild incidents: {one_line(exc)}") from exc
    return int(row["n"]) if row else 0
