"""Per-site numbers over the sliding :data:`WINDOWS` at one instant (the reference for the SQL
that fills ``site_stats``), and what each ping counts for under the uptime policies. Calendar
series binned by period start are :mod:`uptimelab.analytics.series`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from .frames import (
    checked_at,
    factorize_sites,
    is_up,
    location_rank,
    require_columns,
    utc_series,
    utc_timestamp,
)

if TYPE_CHECKING:
    import numpy.typing as npt

WINDOWS: Final[dict[str, pd.Timedelta]] = {
    "1h": pd.Timedelta(hours=1),
    "24h": pd.Timedelta(hours=24),
    "7d": pd.Timedelta(days=7),
}
SITE_STATS_WINDOWS: Final[dict[str, pd.Timedelta]] = {**WINDOWS, "30d": pd.Timedelta(days=30)}
"""The windows of the ``site_stats`` table (coverage is stored for the first three)."""

POLICIES: Final = ("samples", "confirmed", "time")
"""What uptime counts (UPTIME_POLICY): see :func:`window_stats` and the README."""

# The defaults of a site without its own settings: MONITORING_INTERVAL_MS, PING_TIMEOUT_MS and
# sites.down_after (sql/011) as shipped.
DEFAULT_INTERVAL_MS: Final = 300_000
DEFAULT_TIMEOUT_MS: Final = 10_000
DEFAULT_DOWN_AFTER: Final = 2


# --------------------------------------------------------------------------------------------
# What each ping counts for under the policies (must agree with uptimelab_ping_values, sql/013)


def ping_values(
    pings: pd.DataFrame,
    *,
    sites: pd.DataFrame | None = None,
    default_interval_ms: int = DEFAULT_INTERVAL_MS,
    default_timeout_ms: int = DEFAULT_TIMEOUT_MS,
    maintenance: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """What each ping counts for, on the index of ``pings``.

    A site's *series* are its pings of one location in time order. Columns:

    * ``up``: the ping is up.
    * ``confirmed``: a down ping whose run (the stretch of consecutive down pings of its series)
      has at least the site's ``down_after`` pings: it became an incident.
    * ``span_us``: the time to the next ping of its series in microseconds, at most the site's
      interval + timeout; that much when no next ping is given (int64).
    * ``in_maintenance``: ``checked_at`` falls in a window [starts_at, ends_at) of
      ``maintenance`` (columns ``site_id``, NaN/None for every site, ``starts_at``, ``ends_at``;
      recurring windows expanded, as :func:`uptimelab.storage.windows.maintenance_windows`
      gives them).

    ``sites`` has ``site_id`` and any of ``interval_ms``, ``timeout_ms`` (NULL: the defaults)
    and ``down_after`` (default 2). Raises ValueError for a missing column or a bad status.
    """
    require_columns(pings, "site_id", "checked_at", "status", "location")
    up = is_up(pings)
    t = _micros(checked_at(pings))
    site_codes, site_index = factorize_sites(pings)
    location_codes, _ = pd.factorize(pings["location"].astype(str))
    order = np.lexsort((t, location_codes, site_codes))
    s_sorted, l_sorted, t_sorted, up_sorted = (
        site_codes[order],
        location_codes[order],
        t[order],
        up[order],
    )
    down_after = _site_column(site_index, sites, "down_after", DEFAULT_DOWN_AFTER)
    gap = 1000 * (
        _site_intervals(site_index, sites, default_interval_ms)
        + _site_column(site_index, sites, "timeout_ms", default_timeout_ms)
    )
    n = len(order)
    same_next = np.zeros(n, dtype=bool)
    if n > 1:
        same_next[:-1] = (s_sorted[1:] == s_sorted[:-1]) & (l_sorted[1:] == l_sorted[:-1])
    starts = np.ones(n, dtype=bool)
    starts[1:] = ~same_next[:-1]
    gap_sorted = gap[s_sorted]
    to_next = np.zeros(n, dtype=np.int64)
    if n > 1:
        to_next[:-1] = t_sorted[1:] - t_sorted[:-1]
    span_sorted = np.where(same_next, np.minimum(to_next, gap_sorted), gap_sorted)
    # A run belongs to the up ping before it, or to its series' start.
    run = np.cumsum(up_sorted | starts) - 1
    run_down = np.bincount(run[~up_sorted], minlength=int(run[-1]) + 1 if n else 0)
    confirmed_sorted = ~up_sorted & (run_down[run] >= down_after[s_sorted])

    confirmed = np.empty(n, dtype=bool)
    span = np.empty(n, dtype=np.int64)
    confirmed[order] = confirmed_sorted
    span[order] = span_sorted
    return pd.DataFrame(
        {
            "up": up,
            "confirmed": confirmed,
            "span_us": span,
            "in_maintenance": _in_maintenance(pings, t, maintenance),
        },
        index=pings.index,
    )


def _micros(checked: pd.Series) -> npt.NDArray[np.int64]:
    values = checked.dt.tz_convert(None).to_numpy().astype("datetime64[us]")
    micros: npt.NDArray[np.int64] = values.view(np.int64)
    return micros


def _site_column(
    site_index: pd.Index, sites: pd.DataFrame | None, column: str, default: int
) -> npt.NDArray[np.int64]:
    if sites is None or column not in sites.columns:
        return np.full(len(site_index), default, dtype=np.int64)
    given = pd.Series(sites[column].to_numpy(), index=sites["site_id"].astype(str).to_numpy())
    found = pd.Series(site_index.astype(str)).map(given)
    return found.fillna(default).to_numpy(dtype=np.int64)


def _site_intervals(
    site_index: pd.Index, sites: pd.DataFrame | None, default_interval_ms: int
) -> npt.NDArray[np.int64]:
    return _site_column(site_index, sites, "interval_ms", default_interval_ms)


def _in_maintenance(
    pings: pd.DataFrame, t: npt.NDArray[np.int64], maintenance: pd.DataFrame | None
) -> npt.NDArray[np.bool_]:
    inside = np.zeros(len(pings), dtype=bool)
    if maintenance is None or maintenance.empty:
        return inside
    require_columns(maintenance, "site_id", "starts_at", "ends_at")
    site = pings["site_id"].astype(str).to_numpy()
    starts = _micros(utc_series(pd.Series(pd.to_datetime(maintenance["starts_at"], utc=True))))
    ends = _micros(utc_series(pd.Series(pd.to_datetime(maintenance["ends_at"], utc=True))))
    for owner, lo, hi in zip(maintenance["site_id"], starts, ends, strict=True):
        mine = np.ones(len(pings), dtype=bool) if pd.isna(owner) else site == str(owner)
        inside |= mine & (t >= lo) & (t < hi)
    return inside


# --------------------------------------------------------------------------------------------
# Windows (must agree with the SQL that fills site_stats)


def window_stats(
    pings: pd.DataFrame,
    now: dt.datetime | pd.Timestamp | str,
    *,
    policy: str = "samples",
    windows: Mapping[str, pd.Timedelta] | None = None,
    coverage: bool = False,
    sites: pd.DataFrame | None = None,
    default_interval_ms: int = DEFAULT_INTERVAL_MS,
    default_timeout_ms: int = DEFAULT_TIMEOUT_MS,
    maintenance: pd.DataFrame | None = None,
    exclude_maintenance: bool = False,
) -> pd.DataFrame:
    """Per-site uptime, mean response time and ping counts over the :data:`WINDOWS` at ``now``.

    One row per site with at least one ping at or before ``now`` (naive means UTC), sorted by
    ``site_id``. For each window W (1h, 24h, 7d, or those of ``windows``: name -> width, at
    least an hour) the pings counted have ``checked_at`` in (now - W, now], from every location:

    * ``uptime_W``: float32 percent (computed in float64, then rounded once to float32, as
      PostgreSQL ``(100 * up)::float8 / n)::real``); 0 when the window is empty. Under
      ``policy`` (see :func:`ping_values` and the README's "Uptime policies"): ``samples``
      100 * up pings / pings; ``confirmed`` 100 * (pings - confirmed down pings) / pings;
      ``time`` 100 * up span / (up span + down span).
    * ``avg_response_time_W``: mean ``response_time_ms`` of the window's up pings with a response
      time, rounded half away from zero, int64 milliseconds; 0 when there are none.
    * ``pings_W``: number of pings counted in the window, int64.
    * ``coverage_W`` (with ``coverage=True``): 100 * pings received * the site's interval / W,
      at most 100, float32 (the locations pooled).
    * ``current_status``, ``last_checked``: status and time of the latest ping at or before
      ``now``; among pings at that same instant, the one with the greatest location (string
      order) wins -- SQL: ``ORDER BY checked_at DESC, location COLLATE "C" DESC LIMIT 1``.
      ``current_status`` has the dtype of ``pings.status``.

    ``sites`` (``site_id``, ``interval_ms``, ``timeout_ms``, ``down_after``; missing sites and
    NULLs take the defaults), ``maintenance`` and ``exclude_maintenance`` are those of
    :func:`ping_values`; pings in maintenance are left out of every count but coverage when
    ``exclude_maintenance``. Runs and spans read every ping given, also those after ``now``
    (what is known now). The defaults reproduce the seed's numbers; ``sql/013`` computes the
    same in the database.

    Raises ValueError when a column is missing, ``checked_at`` is not datetime64, a status is
    not 'up'/'down', ``now`` is not a time, the policy is unknown or a window is under an hour.
    """
    require_columns(pings, "site_id", "checked_at", "status", "response_time_ms", "location")
    if policy not in POLICIES:
        raise ValueError(f"policy {policy!r} is not one of {', '.join(POLICIES)}")
    widths = dict(WINDOWS if windows is None else windows)
    if any(pd.Timedelta(w) < pd.Timedelta(hours=1) for w in widths.values()):
        raise ValueError("a window is shorter than an hour")
    t_now = utc_timestamp(now)
    plain = policy == "samples" and not exclude_maintenance and not coverage
    values = (
        None
        if plain
        else ping_values(
            pings,
            sites=sites,
            default_interval_ms=default_interval_ms,
            default_timeout_ms=default_timeout_ms,
            maintenance=maintenance,
        )
    )
    checked = checked_at(pings)
    seen = (checked <= t_now).to_numpy(dtype=bool, na_value=False)
    frame = pings.loc[seen]
    checked = checked.loc[seen]
    up = is_up(frame)
    site_codes, site_index = factorize_sites(frame)
    n_sites = len(site_index)
    rt = frame["response_time_ms"]
    has_rt = up & rt.notna().to_numpy(dtype=bool)
    rt_values = np.where(has_rt, rt.fillna(0).to_numpy(dtype=np.int64), 0)
    if values is not None:
        kept = values.loc[seen]
        confirmed = kept["confirmed"].to_numpy(dtype=bool)
        span = kept["span_us"].to_numpy(dtype=np.int64)
        excluded = kept["in_maintenance"].to_numpy(dtype=bool) & exclude_maintenance
        interval = _site_intervals(site_index, sites, default_interval_ms)
    else:
        confirmed = np.zeros(len(frame), dtype=bool)
        span = np.zeros(len(frame), dtype=np.int64)
        excluded = np.zeros(len(frame), dtype=bool)
        interval = np.zeros(n_sites, dtype=np.int64)

    def per_site(mask: npt.NDArray[np.bool_], weights: Any = None) -> npt.NDArray[np.int64]:
        # Integer sums (bincount's weights would go through float64 and could lose digits).
        if weights is None:
            return np.bincount(site_codes[mask], minlength=n_sites).astype(np.int64)
        total = np.zeros(n_sites, dtype=np.int64)
        np.add.at(total, site_codes[mask], weights[mask])
        return total

    out: dict[str, Any] = {"site_id": site_index}
    counts: dict[str, npt.NDArray[np.int64]] = {}
    covered: dict[str, npt.NDArray[np.float32]] = {}
    for name, width in widths.items():
        received = (checked > t_now - width).to_numpy(dtype=bool, na_value=False)
        inside = received & ~excluded
        n = per_site(inside)
        n_up = per_site(inside & up)
        with_rt = inside & has_rt
        rt_n = per_site(with_rt)
        rt_sum = per_site(with_rt, rt_values)
        uptime = np.zeros(n_sites, dtype=np.float64)
        if policy == "samples":
            np.divide(100.0 * n_up, n, out=uptime, where=n > 0)
        elif policy == "confirmed":
            n_confirmed = per_site(inside & confirmed)
            np.divide(100.0 * (n - n_confirmed), n, out=uptime, where=n > 0)
        else:
            up_us = per_site(inside & up, span)
            total_us = up_us + per_site(inside & ~up, span)
            np.divide((100 * up_us).astype(np.float64), total_us, out=uptime, where=total_us > 0)
        out[f"uptime_{name}"] = uptime.astype(np.float32)
        out[f"avg_response_time_{name}"] = _round_half_away(rt_sum, rt_n).astype(np.int64)
        counts[f"pings_{name}"] = n
        if coverage:
            width_ms = float(pd.Timedelta(width) / pd.Timedelta(milliseconds=1))
            share = (100 * per_site(received) * interval).astype(np.float64) / width_ms
            covered[f"coverage_{name}"] = np.minimum(100.0, share).astype(np.float32)
    out.update(counts)
    out.update(covered)

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
        *(f"uptime_{name}" for name in widths),
        *(f"avg_response_time_{name}" for name in widths),
        *(f"pings_{name}" for name in widths),
        *covered,
        "current_status",
        "last_checked",
    ]
    return pd.DataFrame(out)[columns].reset_index(drop=True)


def _round_half_away(total: npt.NDArray[np.int64], count: npt.NDArray[np.int64]) -> Any:
    """round(total / count) half away from zero, exactly in integers; 0 where count is 0."""
    safe = np.where(count > 0, count, 1)
    magnitude = (2 * np.abs(total) + safe) // (2 * safe)
    return np.where(count > 0, np.sign(total) * magnitude, 0)
