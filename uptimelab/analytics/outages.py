"""Outages (maximal runs of a site's down pings, all locations merged) and the reliability
figures built on them: MTTR, MTBF, MTBSI and uptime per site."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from ..domain.redaction import redact
from ..storage.database import Database
from ..storage.incidents import list_incidents
from .frames import (
    checked_at,
    factorize_sites,
    is_up,
    location_rank,
    percent,
    require_columns,
    time_ordered,
    utc_timestamp,
)

# --------------------------------------------------------------------------------------------
# Outages and reliability


def outages(
    pings: pd.DataFrame, *, down_after: int = 1, up_after: int = 1, by_location: bool = False
) -> pd.DataFrame:
    """One row per outage: a maximal run of a site's consecutive down pings.

    Pings of a site are merged across locations and ordered by (checked_at, location). Columns:
    ``site_id``; ``started_at`` (the run's first down ping); ``ended_at`` (the first up ping after
    the run; NaT while the outage lasts); ``duration`` (ended_at - started_at, Timedelta; NaT while
    ongoing, and 0 when an up ping from another location has the same instant); ``pings_down``
    (int64); ``first_error_category`` (the first down ping's). Sorted by site_id, started_at.

    With ``down_after``/``up_after`` other than 1 or ``by_location``, outages are incidents as
    the ``incidents`` table keeps them (sql/011_incidents.sql): in each series (a site's pings,
    or with ``by_location`` each (site, location)'s) a state machine that starts up becomes down
    after ``down_after`` consecutive down pings and up again after ``up_after`` consecutive up
    ones. An outage starts at the first down ping of the run that confirmed it; ``confirmed_at``
    is its ``down_after``-th down ping; ``ended_at`` the first up ping of the ``up_after`` that
    ended it; ``pings_down`` the down pings in between. These carry the extra columns
    ``location`` (with ``by_location``) and ``confirmed_at``, sorted by site_id, location,
    started_at. Raises ValueError for a missing column, a non-datetime ``checked_at``, a bad
    status or a count below 1.
    """
    require_columns(pings, "site_id", "checked_at", "status", "error_category", "location")
    if down_after < 1 or up_after < 1:
        raise ValueError("down_after and up_after must be at least 1")
    if by_location or down_after != 1 or up_after != 1:
        return _incidents(pings, down_after, up_after, by_location)
    order, site_codes = time_ordered(pings)
    site = site_codes[order]
    down = ~is_up(pings)[order]
    checked = checked_at(pings).iloc[order].reset_index(drop=True)
    n = len(order)
    new_site = np.ones(n, dtype=bool)
    new_site[1:] = site[1:] != site[:-1]
    prev_down = np.zeros(n, dtype=bool)
    prev_down[1:] = down[:-1]
    starts = np.flatnonzero(down & (new_site | ~prev_down))
    ends_last = np.ones(n, dtype=bool)  # a run's last ping: the next row is up or another site
    ends_last[:-1] = ~down[1:] | new_site[1:]
    lasts = np.flatnonzero(down & ends_last)
    after = lasts + 1
    ended = np.zeros(len(lasts), dtype=bool)
    ended[after < n] = ~new_site[after[after < n]]
    started_at = checked.iloc[starts].reset_index(drop=True)
    ended_at = pd.Series(pd.NaT, index=started_at.index, dtype=started_at.dtype)
    ended_at[ended] = checked.iloc[after[ended]].array
    return pd.DataFrame(
        {
            "site_id": pings["site_id"].iloc[order[starts]].reset_index(drop=True),
            "started_at": started_at,
            "ended_at": ended_at,
            "duration": ended_at - started_at,
            "pings_down": (lasts - starts + 1).astype(np.int64),
            "first_error_category": pings["error_category"]
            .iloc[order[starts]]
            .reset_index(drop=True),
        }
    )


def _incidents(
    pings: pd.DataFrame, down_after: int, up_after: int, by_location: bool
) -> pd.DataFrame:
    """:func:`outages` by the state machine, per site or per (site, location)."""
    site_codes, _ = pd.factorize(pings["site_id"], sort=True)
    ranks = location_rank(pings["location"])
    series = (
        site_codes.astype(np.int64) * (int(ranks.max(initial=0)) + 1) + ranks
        if by_location
        else site_codes.astype(np.int64)
    )
    t = checked_at(pings).dt.tz_convert(None).to_numpy().view(np.int64)
    order = np.lexsort((ranks, t, series))
    key = series[order]
    down = ~is_up(pings)[order]
    n = len(order)
    starts: list[int] = []
    confirms: list[int] = []
    ends: list[int] = []  # -1: still down
    downs: list[int] = []
    i = 0
    while i < n:
        # Up, with no down ping pending: find the next run of down_after down pings.
        run = 0
        current = key[i]
        while i < n and key[i] == current:
            run = run + 1 if down[i] else 0
            if run == down_after:
                break
            i += 1
        if i >= n or key[i] != current:
            continue
        starts.append(i - down_after + 1)
        confirms.append(i)
        count, ups, first_up = down_after, 0, -1
        i += 1
        while i < n and key[i] == current:
            if down[i]:
                count, ups = count + 1, 0
            else:
                first_up = i if ups == 0 else first_up
                ups += 1
                if ups == up_after:
                    break
            i += 1
        resolved = i < n and key[i] == current
        ends.append(first_up if resolved else -1)
        downs.append(count)
        if resolved:
            i += 1
    checked = checked_at(pings).iloc[order].reset_index(drop=True)
    start_at = np.asarray(starts, dtype=np.intp)
    end_at = np.asarray(ends, dtype=np.intp)
    ended = end_at >= 0
    started_at = checked.iloc[start_at].reset_index(drop=True)
    ended_at = pd.Series(pd.NaT, index=started_at.index, dtype=started_at.dtype)
    ended_at[ended] = checked.iloc[end_at[ended]].array
    columns: dict[str, Any] = {
        "site_id": pings["site_id"].iloc[order[start_at]].reset_index(drop=True)
    }
    if by_location:
        columns["location"] = pings["location"].iloc[order[start_at]].reset_index(drop=True)
    columns.update(
        started_at=started_at,
        confirmed_at=checked.iloc[np.asarray(confirms, dtype=np.intp)].reset_index(drop=True),
        ended_at=ended_at,
        duration=ended_at - started_at,
        pings_down=np.asarray(downs, dtype=np.int64),
        first_error_category=pings["error_category"].iloc[order[start_at]].reset_index(drop=True),
    )
    return pd.DataFrame(columns)


def reliability(
    pings: pd.DataFrame, now: dt.datetime | pd.Timestamp | str | None = None
) -> pd.DataFrame:
    """Per-site reliability over the pings at or before ``now`` (None: all pings).

    One row per site with pings, indexed by ``site_id`` (sorted). Columns:

    * ``pings`` (int64) and ``uptime_pct``: 100 * up / pings, float64 percent.
    * ``outages``: number of outages (see :func:`outages`), int64; ``ongoing``: whether the last
      one has not ended (bool).
    * ``mttr``: mean time to recovery, the mean duration of the ended outages (Timedelta; NaT
      when none ended).
    * ``mtbf``: mean time between failures in the ITIL sense, the mean *up* time between an
      outage's end and the next outage's start (Timedelta; NaT with fewer than two outages).
    * ``mtbsi``: mean time between the starts of consecutive outages (= mttr + mtbf over the
      same pairs; Timedelta; NaT with fewer than two outages).

    Raises ValueError for a missing column, a non-datetime ``checked_at``, a bad status, or a
    ``now`` that is not a time.
    """
    require_columns(pings, "site_id", "checked_at", "status", "error_category", "location")
    if now is not None:
        keep = (checked_at(pings) <= utc_timestamp(now)).to_numpy(dtype=bool, na_value=False)
        pings = pings.loc[keep]
    codes, sites = factorize_sites(pings)
    n = np.bincount(codes, minlength=len(sites)).astype(np.int64)
    n_up = np.bincount(codes[is_up(pings)], minlength=len(sites)).astype(np.int64)
    base = pd.DataFrame({"pings": n, "uptime_pct": percent(n_up, n)}, index=sites)

    found = outages(pings)
    found["site_id"] = pd.Index(found["site_id"]).astype(sites.dtype)
    same_site = found["site_id"].eq(found["site_id"].shift(-1)).to_numpy(dtype=bool)
    found["up_after"] = (found["started_at"].shift(-1) - found["ended_at"]).where(same_site)
    found["start_gap"] = (found["started_at"].shift(-1) - found["started_at"]).where(same_site)
    grouped = found.groupby("site_id", observed=True, sort=True)
    per_site = pd.DataFrame(
        {
            "outages": grouped.size().astype(np.int64),
            # Only a site's last outage can lack an end.
            "ongoing": found["ended_at"].isna().groupby(found["site_id"], observed=True).any(),
            "mttr": grouped["duration"].mean(),
            "mtbf": grouped["up_after"].mean(),
            "mtbsi": grouped["start_gap"].mean(),
        }
    )
    result = base.join(per_site.reindex(sites))
    result["outages"] = result["outages"].fillna(0).astype(np.int64)
    result["ongoing"] = result["ongoing"].fillna(False).astype(bool)
    for name in ("mttr", "mtbf", "mtbsi"):
        result[name] = pd.to_timedelta(result[name])
    return result[["pings", "outages", "ongoing", "mttr", "mtbf", "mtbsi", "uptime_pct"]]


# --------------------------------------------------------------------------------------------
# Incidents (the table the collector keeps: sql/011_incidents.sql)

INCIDENT_COLUMNS = (
    "id", "site_id", "location", "started_at", "confirmed_at", "resolved_at", "duration",
    "down_pings", "category", "message",
)  # fmt: skip


def load_incidents(
    db: Database | None = None,
    *,
    since: dt.datetime | pd.Timestamp | None = None,
    own_only: bool = False,
) -> pd.DataFrame:
    """The ``incidents`` table as a frame, oldest first: those lasting at or after ``since``
    (None: all). ``own_only``: each site's own state only (the quorum verdict's where two or
    more locations report, else its one location's). Columns :data:`INCIDENT_COLUMNS`:
    ``site_id`` as text, times tz-aware UTC, ``resolved_at`` NaT while open, ``duration``
    (resolved_at - started_at, NaT while open), ``location`` None for the quorum verdict,
    ``message`` redacted. Raises StoreError."""
    found = list_incidents(
        since=None if since is None else utc_timestamp(since).to_pydatetime(),
        own_only=own_only,
        db=db,
    )
    frame = pd.DataFrame(
        {
            "id": pd.array([i.id for i in found], dtype="int64"),
            "site_id": [str(i.site_id) for i in found],
            "location": [i.location for i in found],
            "started_at": pd.to_datetime([i.started_at for i in found], utc=True),
            "confirmed_at": pd.to_datetime([i.confirmed_at for i in found], utc=True),
            "resolved_at": pd.to_datetime(
                pd.Series([i.resolved_at for i in found], dtype=object), utc=True
            ),
            "down_pings": pd.array([i.down_pings for i in found], dtype="int64"),
            "category": [i.category for i in found],
            "message": [None if i.message is None else redact(i.message) for i in found],
        }
    )
    frame.insert(6, "duration", frame["resolved_at"] - frame["started_at"])
    return frame.iloc[::-1].reset_index(drop=True)


def incident_summary(incidents: pd.DataFrame, now: dt.datetime | pd.Timestamp) -> pd.DataFrame:
    """Per site (indexed by ``site_id``, sorted): ``incidents`` and ``open`` (int64),
    ``mttr`` (the mean duration of the resolved ones; NaT with none), ``longest`` and
    ``downtime`` (the sum of durations; open incidents count up to ``now``), from a frame of
    :func:`load_incidents`."""
    end = utc_timestamp(now)
    lasted = incidents["duration"].fillna(end - incidents["started_at"])
    grouped = incidents.assign(lasted=lasted).groupby("site_id", sort=True)
    return pd.DataFrame(
        {
            "incidents": grouped.size().astype(np.int64),
            "open": grouped["resolved_at"].apply(lambda s: int(s.isna().sum())).astype(np.int64),
            "mttr": grouped["duration"].mean(),
            "longest": grouped["lasted"].max(),
            "downtime": grouped["lasted"].sum(),
        }
    )
