"""Outages (maximal runs of a site's down pings, all locations merged) and the reliability
figures built on them: MTTR, MTBF, MTBSI and uptime per site."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .frames import (
    checked_at,
    factorize_sites,
    is_up,
    percent,
    require_columns,
    time_ordered,
    utc_timestamp,
)

# --------------------------------------------------------------------------------------------
# Outages and reliability


def outages(pings: pd.DataFrame) -> pd.DataFrame:
    """One row per outage: a maximal run of a site's consecutive down pings.

    Pings of a site are merged across locations and ordered by (checked_at, location). Columns:
    ``site_id``; ``started_at`` (the run's first down ping); ``ended_at`` (the first up ping after
    the run; NaT while the outage lasts); ``duration`` (ended_at - started_at, Timedelta; NaT while
    ongoing, and 0 when an up ping from another location has the same instant); ``pings_down``
    (int64); ``first_error_category`` (the first down ping's). Sorted by site_id, started_at.
    Raises ValueError for a missing column, a non-datetime ``checked_at`` or a bad status.
    """
    require_columns(pings, "site_id", "checked_at", "status", "error_category", "location")
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
