"""Response times: quantiles per group, per phase, and each site's largest rise (a latency
regression)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..domain.pings import PHASES
from .frames import duration, is_up, require_columns

# --------------------------------------------------------------------------------------------
# Response times


def response_time_quantiles(
    pings: pd.DataFrame,
    q: Sequence[float] = (0.5, 0.95, 0.99),
    by: str | Sequence[str] = "site_id",
) -> pd.DataFrame:
    """Quantiles of ``response_time_ms`` over up pings with a response time, per group.

    Index: the ``by`` column(s), sorted; columns: ``count`` (int64 pings used) then one float64
    column per quantile, named ``p`` + percent (0.5 -> ``p50``, 0.999 -> ``p99.9``), in
    milliseconds. Quantiles interpolate linearly between order statistics, like PostgreSQL
    ``percentile_cont``. Groups with no such ping are absent. Raises ValueError for a missing
    column, a bad status, or a quantile outside [0, 1].
    """
    keys = [by] if isinstance(by, str) else list(by)
    qs = [float(x) for x in q]
    if not all(0.0 <= x <= 1.0 for x in qs):
        raise ValueError(f"quantiles must be within [0, 1], got {qs}")
    require_columns(pings, "status", "response_time_ms", *keys)
    rt = pings["response_time_ms"]
    used = is_up(pings) & rt.notna().to_numpy(dtype=bool)
    frame = pings.loc[used, keys].copy()
    frame["rt"] = rt[used].astype(np.float64)
    grouped = frame.groupby(keys, observed=True, sort=True)["rt"]
    names = [f"p{x * 100:g}" for x in qs]
    result = pd.DataFrame({"count": grouped.size().astype(np.int64)})
    if qs:
        # reindex: an empty selection unstacks to no columns at all.
        table = grouped.quantile(np.array(qs)).unstack(-1).reindex(columns=qs)
        table.columns = pd.Index(names)
        result = result.join(table)
    return result


def phase_quantiles(pings: pd.DataFrame, q: float = 0.5, by: str = "site_id") -> pd.DataFrame:
    """The ``q`` quantile of each phase (``dns_ms`` ... ``transfer_ms``) over up pings, per group
    and phase: what PostgreSQL's ``uptimelab_phase_percentiles`` gives (``percentile_cont``).

    Long form, one row per group and phase that has pings with the phase: columns ``by``,
    ``phase`` (``dns``, ``connect``, ``tls``, ``ttfb``, ``transfer``), ``pings`` (int64) and
    ``value_ms`` (float64, milliseconds), sorted by group then phase order. Raises ValueError
    for a missing column or a quantile outside [0, 1].
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"the quantile must be within [0, 1], got {q}")
    columns = [f"{p}_ms" for p in PHASES]
    require_columns(pings, "status", by, *columns)
    up = pings.loc[is_up(pings), [by, *columns]]
    long = up.melt(id_vars=[by], value_vars=columns, var_name="phase", value_name="ms")
    long = long[long["ms"].notna()]
    long["phase"] = pd.Categorical(
        long["phase"].str.removesuffix("_ms"), categories=list(PHASES), ordered=True
    )
    long["ms"] = long["ms"].astype(np.float64)
    grouped = long.groupby([by, "phase"], observed=True, sort=True)["ms"]
    result = pd.DataFrame(
        {"pings": grouped.size().astype(np.int64), "value_ms": grouped.quantile(q)}
    ).reset_index()
    result["phase"] = result["phase"].astype(str)
    return result


def phase_breakdown(
    pings: pd.DataFrame, q: float = 0.5, names: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Per site, the ``q`` quantile (milliseconds) of each phase side by side, and the phase
    that takes the most (``slowest``): which sites are slow because of DNS, TLS or the server.

    Indexed by ``site_id`` (str); columns ``site`` (the name from ``names``, else the id), one
    float64 column per phase (``dns`` ... ``transfer``, NaN where the site never had it) and
    ``slowest``; the sites with the largest total first.
    """
    long = phase_quantiles(pings, q)
    if long.empty:
        frame = pd.DataFrame(columns=["site", *PHASES, "slowest"])
        frame.index = pd.Index([], name="site_id", dtype="str")
        return frame
    wide = long.pivot(index="site_id", columns="phase", values="value_ms")
    wide = wide.reindex(columns=list(PHASES)).astype(np.float64)
    wide.index = pd.Index(wide.index.astype(str), name="site_id")
    wide.columns.name = None
    wide["slowest"] = wide[list(PHASES)].fillna(-1.0).idxmax(axis=1)
    wide.insert(0, "site", [(names or {}).get(s, s) for s in wide.index])
    order = wide[list(PHASES)].sum(axis=1).sort_values(ascending=False, kind="stable").index
    return wide.loc[order]


def latency_shifts(
    pings: pd.DataFrame,
    *,
    window: str | dt.timedelta = "24h",
    min_ratio: float = 1.5,
    names: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Each site's largest rise in response time, found by a rolling comparison.

    For every hour h, the mean of the site's hourly median response times (up pings) over the
    ``window`` after h is divided by the one over the ``window`` before h. The hour with the
    largest ratio is the candidate change point, and the site has ``regressed`` when that ratio
    is at least ``min_ratio``. Hourly medians ignore single slow pings; the mean over the window
    peaks sharply at the hour of a step change; a window of a whole day holds each daily pattern
    once on both sides, so a busy afternoon does not look like a regression. Both windows must
    have at least three quarters of their hours with data.

    One row per site with enough data, largest ratio first, indexed by ``site_id`` (str).
    Columns: ``site``, ``changed_at`` (UTC hour), ``before_ms``, ``after_ms``, ``ratio``,
    ``regressed``, ``window`` (Timedelta).
    """
    width = pd.Timedelta(duration(window, "window"))
    hours = max(1, int(width / pd.Timedelta(hours=1)))
    up = (pings["status"] == "up").to_numpy(dtype=bool, na_value=False) & pings[
        "response_time_ms"
    ].notna().to_numpy(dtype=bool)
    frame = pd.DataFrame(
        {
            "site_id": pings.loc[up, "site_id"].astype(str).array,
            "hour": pd.DatetimeIndex(pings.loc[up, "checked_at"]).floor("1h"),
            "ms": pings.loc[up, "response_time_ms"].to_numpy(dtype=float),
        }
    )
    columns = ["site", "changed_at", "before_ms", "after_ms", "ratio", "regressed", "window"]
    if frame.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="site_id", dtype="str"))
    hourly = frame.groupby(["hour", "site_id"])["ms"].median().unstack("site_id")
    hourly = hourly.reindex(pd.date_range(hourly.index.min(), hourly.index.max(), freq="1h"))
    least = max(1, int(hours * 0.75))
    before = hourly.rolling(hours, min_periods=least).mean().shift(1)
    after = hourly.iloc[::-1].rolling(hours, min_periods=least).mean().iloc[::-1]
    ratio = after / before
    rows = []
    for site in ratio.columns:
        values = ratio[site].to_numpy(dtype=float)
        if np.isnan(values).all():
            continue
        at = int(np.nanargmax(values))
        rows.append(
            {
                "site_id": str(site),
                "site": (names or {}).get(str(site), str(site)),
                "changed_at": ratio.index[at],
                "before_ms": float(before[site].iloc[at]),
                "after_ms": float(after[site].iloc[at]),
                "ratio": float(values[at]),
                "regressed": bool(values[at] >= min_ratio),
                "window": width,
            }
        )
    if not rows:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="site_id", dtype="str"))
    return pd.DataFrame(rows).set_index("site_id").sort_values("ratio", ascending=False)
