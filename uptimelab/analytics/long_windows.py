"""Windows of any length from the database (rollups kept for ever, raw pings at the edges), and
what the pure functions of :mod:`.windows` need to compute the same from a pings frame: the
sites' own settings and the maintenance windows."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

import pandas as pd

from ..storage.database import Database
from ..storage.sites import list_sites
from ..storage.windows import maintenance_windows, window_stats_rows
from .frames import duration, utc_timestamp

WINDOW_COLUMNS = (
    "site_id",
    "uptime",
    "avg_response_time",
    "pings",
    "coverage",
    "from_rollups",
    "counted_from",
)


def load_window_stats(
    db: Database,
    window: str | dt.timedelta = "30d",
    *,
    at: dt.datetime | pd.Timestamp | str | None = None,
    policy: str | None = None,
    exclude_maintenance: bool | None = None,
    sites: Iterable[uuid.UUID | str] | None = None,
) -> pd.DataFrame:
    """Every site's numbers over the window (at - window, at], from the database.

    ``window`` is a duration ("90d", "365d", a timedelta; at least an hour), ``at`` the end
    (default: now; naive means UTC), ``policy`` samples, confirmed or time and
    ``exclude_maintenance`` (None: the settings recorded by the last refresh, UPTIME_POLICY and
    UPTIME_EXCLUDE_MAINTENANCE), ``sites`` ids (None: every site). One row per site with a ping
    in the window, by ``site_id`` (str): ``uptime`` (percent, float32 as stored),
    ``avg_response_time`` (ms), ``pings`` (counted), ``coverage`` (percent of the pings
    expected), ``from_rollups`` (True where the window's far edge is pruned: counted from
    ``counted_from``, a whole UTC hour) and ``counted_from``.

    Exact against raw pings while they exist (``window_stats`` on the same pings gives the same
    numbers). Raises ConfigError for a bad window or policy, StoreError when the database fails.
    """
    width = duration(window, "window")
    end = None if at is None else utc_timestamp(at).to_pydatetime()
    chosen = None if sites is None else [uuid.UUID(str(s)) for s in sites]
    rows = window_stats_rows(
        width,
        at=end,
        policy=policy,
        exclude_maintenance=exclude_maintenance,
        sites=chosen,
        db=db,
    )
    frame = pd.DataFrame([r.model_dump() for r in rows], columns=list(WINDOW_COLUMNS))
    frame["site_id"] = frame["site_id"].astype(str)
    frame["uptime"] = frame["uptime"].astype("float32")
    frame["coverage"] = frame["coverage"].astype("float32")
    frame["counted_from"] = pd.to_datetime(frame["counted_from"], utc=True)
    return frame


def load_site_settings(db: Database) -> pd.DataFrame:
    """Each site's ``site_id`` (str), ``interval_ms``, ``timeout_ms`` (nullable: the defaults)
    and ``down_after``: the ``sites=`` frame of ``window_stats`` and ``ping_values``."""
    rows: list[dict[str, Any]] = [
        {
            "site_id": str(s.id),
            "interval_ms": s.interval_ms,
            "timeout_ms": s.timeout_ms,
            "down_after": s.down_after,
        }
        for s in list_sites(db=db)
    ]
    frame = pd.DataFrame(rows, columns=["site_id", "interval_ms", "timeout_ms", "down_after"])
    for column in ("interval_ms", "timeout_ms"):
        frame[column] = frame[column].astype("Int64")
    frame["down_after"] = frame["down_after"].astype("int64")
    return frame


def load_maintenance(
    db: Database,
    since: dt.datetime | pd.Timestamp | str,
    until: dt.datetime | pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """The maintenance windows overlapping [since, until) (until default: now), recurring ones
    expanded: ``site_id`` (str, None for every site), ``starts_at``, ``ends_at`` (UTC): the
    ``maintenance=`` frame of ``window_stats``."""
    lo = utc_timestamp(since).to_pydatetime()
    hi = (pd.Timestamp.now(tz="UTC") if until is None else utc_timestamp(until)).to_pydatetime()
    rows = maintenance_windows(lo, hi, db=db)
    frame = pd.DataFrame(rows, columns=["site_id", "starts_at", "ends_at"])
    frame["site_id"] = [None if s is None else str(s) for s in frame["site_id"]]
    for column in ("starts_at", "ends_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame
