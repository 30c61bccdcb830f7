"""Per-site numbers over time: the sliding :data:`WINDOWS` at one instant (the reference for the
SQL that fills ``site_stats``), and calendar series binned by period start."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from ..domain.pings import ERROR_CATEGORIES
from .frames import (
    ERROR_DTYPE,
    checked_at,
    factorize_sites,
    is_up,
    location_rank,
    percent,
    require_columns,
    utc_timestamp,
)

if TYPE_CHECKING:
    import numpy.typing as npt

WINDOWS: Final[dict[str, pd.Timedelta]] = {
    "1h": pd.Timedelta(hours=1),
    "24h": pd.Timedelta(hours=24),
    "7d": pd.Timedelta(days=7),
}


# --------------------------------------------------------------------------------------------
# Windows (must agree with the SQL that fills site_stats)


def window_stats(pings: pd.DataFrame, now: dt.datetime | pd.Timestamp | str) -> pd.DataFrame:
    """Per-site uptime, mean response time and ping counts over the :data:`WINDOWS` at ``now``.

    One row per site with at least one ping at or before ``now`` (naive means UTC), sorted by
    ``site_id``. For each window W (1h, 24h, 7d) the pings counted have ``checked_at`` in
    (now - W, now], from every location:

    * ``uptime_W``: 100 * up pings / pings, float32 (percent; computed in float64, then
      rounded once to float32, as PostgreSQL ``(100 * up)::float8 / n)::real``); 0 when the
      window is empty.
    * ``avg_response_time_W``: mean ``response_time_ms`` of the window's up pings with a response
      time, rounded half away from zero, int64 milliseconds; 0 when there are none.
    * ``pings_W``: number of pings in the window, int64.
    * ``current_status``, ``last_checked``: status and time of the latest ping at or before
      ``now``; among pings at that same instant, the one with the greatest location (string
      order) wins -- SQL: ``ORDER BY checked_at DESC, location COLLATE "C" DESC LIMIT 1``.
      ``current_status`` has the dtype of ``pings.status``.

    Pings after ``now`` are ignored. Raises ValueError when a column is missing, ``checked_at`` is
    not datetime64, a status is not 'up'/'down', or ``now`` is not a time.
    """
    require_columns(pings, "site_id", "checked_at", "status", "response_time_ms", "location")
    t_now = utc_timestamp(now)
    checked = checked_at(pings)
    seen = (checked <= t_now).to_numpy(dtype=bool, na_value=False)
    frame = pings.loc[seen]
    checked = checked.loc[seen]
    up = is_up(frame)
    site_codes, sites = factorize_sites(frame)
    n_sites = len(sites)
    rt = frame["response_time_ms"]
    has_rt = up & rt.notna().to_numpy(dtype=bool)
    rt_values = np.where(has_rt, rt.fillna(0).to_numpy(dtype=np.int64), 0)

    out: dict[str, Any] = {"site_id": sites}
    counts: dict[str, npt.NDArray[np.int64]] = {}
    for name, width in WINDOWS.items():
        inside = (checked > t_now - width).to_numpy(dtype=bool, na_value=False)
        n = np.bincount(site_codes[inside], minlength=n_sites).astype(np.int64)
        n_up = np.bincount(site_codes[inside & up], minlength=n_sites).astype(np.int64)
        with_rt = inside & has_rt
        rt_n = np.bincount(site_codes[with_rt], minlength=n_sites).astype(np.int64)
        # Integer sums (bincount's weights would go through float64 and could lose digits).
        rt_sum = np.zeros(n_sites, dtype=np.int64)
        np.add.at(rt_sum, site_codes[with_rt], rt_values[with_rt])
        uptime = np.zeros(n_sites, dtype=np.float64)
        np.divide(100.0 * n_up, n, out=uptime, where=n > 0)
        out[f"uptime_{name}"] = uptime.astype(np.float32)
        out[f"avg_response_time_{name}"] = _round_half_away(rt_sum, rt_n).astype(np.int64)
        counts[f"pings_{name}"] = n
    out.update(counts)

    # The latest ping per site: order by (site, checked_at, location) and take each site's last.
    t = checked.dt.tz_convert(None).to_numpy().view(np.int64)
    order = np.lexsort((location_rank(frame["location"]), t, site_codes))
    is_last = np.ones(len(order), dtype=bool)
    is_last[:-1] = site_codes[order][1:] != site_codes[order][:-1]
    latest = order[is_last]
    out["current_status"] = frame["status"].iloc[latest].array
    out["last_checked"] = checked.iloc[latest].array
    columns = [
        "site_id",
        *(f"uptime_{name}" for name in WINDOWS),
        *(f"avg_response_time_{name}" for name in WINDOWS),
        *(f"pings_{name}" for name in WINDOWS),
        "current_status",
        "last_checked",
    ]
    return pd.DataFrame(out)[columns].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Calendar series


def uptime_series(pings: pd.DataFrame, freq: str | pd.DateOffset = "1h") -> pd.DataFrame:
    """Uptime percent per site per calendar period, as a wide frame.

    Index: period start (tz-aware UTC, named ``period``; periods are [start, start + freq), every
    period from the first ping's to the last ping's, including empty ones); columns: one per
    ``site_id``, sorted; values: 100 * up / pings, float64 percent, NaN where the site had no ping
    in that period (no data is not 0 % uptime). ``freq`` is a pandas offset alias ("15min",
    "1h", "1D"; for weeks and months use start-anchored ones such as "W-MON" and "MS").
    Raises ValueError for a missing column, a bad status or an invalid ``freq``.
    """
    require_columns(pings, "site_id", "checked_at", "status")
    frame = pd.DataFrame(
        {
            "site_id": pings["site_id"].array,
            "checked_at": checked_at(pings).array,
            "up": is_up(pings).astype(np.int64),
        }
    )
    grouped = frame.groupby(["site_id", _period_grouper(freq)], observed=True)["up"]
    counts = grouped.agg(["sum", "count"])
    wide_up = counts["sum"].unstack("site_id")
    wide_n = counts["count"].unstack("site_id")
    result = percent(wide_up, wide_n.where(wide_n > 0))
    result = _full_periods(result, frame["checked_at"], freq)
    result.index.name = "period"
    result.columns.name = "site_id"
    return result.astype(np.float64)


def _period_grouper(freq: str | pd.DateOffset) -> pd.Grouper:
    # Explicit: pandas closes end-anchored offsets ("W", "ME") on the right and labels them by
    # their end, while these series promise [start, start + freq) labelled by the start.
    return pd.Grouper(key="checked_at", freq=freq, closed="left", label="left")


def _full_periods(
    frame: pd.DataFrame, checked: pd.Series, freq: str | pd.DateOffset
) -> pd.DataFrame:
    """``frame`` reindexed to every period between the first and last ping's."""
    if checked.empty:
        empty = pd.DatetimeIndex([], dtype="datetime64[us, UTC]")
        return frame.reindex(empty)
    series = pd.Series(0, index=pd.DatetimeIndex(checked))
    periods = series.resample(freq, closed="left", label="left").size().index
    return frame.reindex(periods)


def error_breakdown(pings: pd.DataFrame, freq: str | pd.DateOffset = "1h") -> pd.DataFrame:
    """Number of down pings per error category per calendar period, all sites and locations.

    Index: period start (tz-aware UTC, named ``period``; [start, start + freq), every period from
    the first ping's to the last ping's, up pings included in that span); columns: the eight
    ``ERROR_CATEGORIES`` in their fixed order, int64 counts, 0 where none. Raises ValueError for
    a missing column, an unknown error category, or an invalid ``freq``.
    """
    require_columns(pings, "checked_at", "error_category")
    category = pings["error_category"]
    known = category.isna() | category.isin(ERROR_CATEGORIES)
    if not known.all():
        raise ValueError(f"unknown error_category {category[~known].iloc[0]!r}")
    checked = checked_at(pings)
    frame = pd.DataFrame(
        {
            "checked_at": checked.array,
            "error_category": pd.Categorical(category.astype(object), dtype=ERROR_DTYPE),
            "one": np.ones(len(pings), dtype=np.int64),
        }
    )
    result = frame.pivot_table(
        index=_period_grouper(freq),
        columns="error_category",
        values="one",
        aggfunc="sum",
        fill_value=0,
        observed=False,
        dropna=True,
    )
    result = result.reindex(columns=list(ERROR_CATEGORIES), fill_value=0)
    result = _full_periods(result, frame["checked_at"], freq).fillna(0).astype(np.int64)
    result.index.name = "period"
    result.columns = pd.Index(list(ERROR_CATEGORIES), name="error_category")
    return result


def _round_half_away(total: npt.NDArray[np.int64], count: npt.NDArray[np.int64]) -> Any:
    """round(total / count) half away from zero, exactly in integers; 0 where count is 0."""
    safe = np.where(count > 0, count, 1)
    magnitude = (2 * np.abs(total) + safe) // (2 * safe)
    return np.where(count > 0, np.sign(total) * magnitude, 0)
