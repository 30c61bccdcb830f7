"""Calendar series: per-site uptime and the error categories binned by period start.

Periods are [start, start + freq), labelled by their start, every one from the first ping's to
the last ping's; the sliding windows at one instant are :mod:`uptimelab.analytics.windows`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..domain.pings import ERROR_CATEGORIES
from .frames import ERROR_DTYPE, checked_at, is_up, percent, require_columns


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
