"""Figures for the notebooks and the report, one function a chart.

Each function takes frames from :mod:`uptimelab.stats` or :mod:`uptimelab.analysis` and returns a
:class:`matplotlib.figure.Figure`. Figures are made without pyplot: no backend is chosen, nothing
is kept in a global registry (a figure is freed with its last reference, so there is nothing to
close), and the report saves them as PNG. In Jupyter, run ``%matplotlib inline`` once and a figure
shows itself as the value of a cell.

Times are plotted in UTC; ``names`` maps site ids (as strings) to the labels shown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Final

import matplotlib.dates as mdates
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from . import pings as stats

__all__ = [
    "CATEGORY_COLOURS",
    "collector_timeline",
    "cycle_durations",
    "error_budget",
    "error_categories",
    "latency_shift",
    "outage_timeline",
    "perf_results",
    "pings_per_cycle",
    "response_time_distributions",
    "response_time_percentiles",
    "uptime_heatmap",
    "worst_sites",
]

WIDTH: Final = 10.0
CATEGORY_COLOURS: Final = {
    "dns": "#8c564b",
    "refused": "#ff7f0e",
    "timeout": "#d62728",
    "tls": "#9467bd",
    "network": "#1f77b4",
    "protocol": "#e377c2",
    "http_status": "#bcbd22",
    "too_many_redirects": "#17becf",
}
UP: Final = "#2ca02c"
DOWN: Final = "#d62728"
GAP: Final = "#bbbbbb"
_OUTSIDE: Final[dict[str, Any]] = {"loc": "upper left", "bbox_to_anchor": (1.0, 1.0)}

Names = Mapping[str, str] | None


# -- fleet ---------------------------------------------------------------------------------


def worst_sites(
    fleet: pd.DataFrame, *, column: str = "uptime_7d", n: int = 10, target: float | None = None
) -> Figure:
    """The ``n`` sites with the lowest ``column`` (percent) of ``fleet`` (``analysis.fleet_table``)
    as bars, with the ``target`` line when given."""
    worst = fleet.nsmallest(n, column).iloc[::-1]
    fig, ax = _figure(0.8 + 0.3 * len(worst))
    values = worst[column].to_numpy(dtype=float)
    colours = [DOWN if target is not None and v < target else UP for v in values]
    ax.barh(worst["site"].astype(str), values, color=colours)
    low = min(float(np.nanmin(values)) if len(values) else 99.0, target or 100.0)
    ax.set_xlim(max(0.0, low - 0.5 * (100 - low) - 0.1), 100 + 0.15 * (100 - low) + 0.05)
    for y, v in enumerate(values):
        ax.annotate(f"{v:.2f} %", (v, y), xytext=(3, 0), textcoords="offset points", va="center")
    if target is not None:
        ax.axvline(target, color="black", linestyle="--", linewidth=1)
        ax.annotate(f"target {target} %", (target, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(-3, -3), textcoords="offset points", ha="right", va="top")  # fmt: skip
    ax.set_xlabel(f"{column.replace('_', ' ')} (%)")
    ax.set_title(f"The {len(worst)} sites with the lowest {column.replace('_', ' ')}")
    return fig


def uptime_heatmap(pings: pd.DataFrame, *, names: Names = None, freq: str = "1h") -> Figure:
    """Uptime per site and ``freq`` period (worst site on top); grey where a site has no ping,
    which is the collector not running, not downtime."""
    series = stats.uptime_series(pings, freq=freq)
    order = series.mean().sort_values().index
    grid = series[order].T
    fig, ax = _figure(1.2 + 0.22 * len(grid))
    cmap = _colormap("RdYlGn").with_extremes(bad=GAP)
    if grid.empty:
        return _empty(fig, ax, "no pings")
    start = _num(grid.columns[0])
    end = _num(grid.columns[-1]) + _days(pd.Timedelta(freq))
    image = ax.imshow(
        np.ma.masked_invalid(grid.to_numpy(dtype=float)),
        aspect="auto",
        interpolation="nearest",
        cmap=cmap,
        vmin=80,
        vmax=100,
        extent=(start, end, len(grid) - 0.5, -0.5),
    )
    ax.set_yticks(range(len(grid)), [_label(s, names) for s in grid.index])
    _dates(ax)
    fig.colorbar(image, ax=ax, label=f"uptime % per {freq} (80 % and below: red)", pad=0.01)
    ax.set_title(f"Uptime per site and {freq} (grey: no pings)")
    return fig


# -- response times ------------------------------------------------------------------------


def response_time_percentiles(
    pings: pd.DataFrame,
    *,
    freq: str = "1h",
    q: Sequence[float] = (0.5, 0.95, 0.99),
    title: str = "Response time percentiles of up pings, all sites",
) -> Figure:
    """Percentiles ``q`` of the up pings' response times per ``freq`` period (log scale)."""
    frame = pd.DataFrame(
        {
            "period": stats.utc_series(pings["checked_at"]).dt.floor(freq).array,
            "status": pings["status"].array,
            "response_time_ms": pings["response_time_ms"].array,
        }
    )
    table = stats.response_time_quantiles(frame, q=q, by="period")
    fig, ax = _figure(4.0)
    if table.empty:
        return _empty(fig, ax, "no up pings")
    full = pd.date_range(table.index[0], table.index[-1], freq=freq)
    for column in table.columns.drop("count"):
        ax.plot(_nums(full), table[column].reindex(full).to_numpy(), label=column, linewidth=1)
    ax.set_yscale("log")
    ax.set_ylabel("response time (ms, log scale)")
    ax.legend(**_OUTSIDE)
    _dates(ax)
    ax.set_title(title)
    return fig


def response_time_distributions(pings: pd.DataFrame, *, names: Names = None) -> Figure:
    """Each site's response times of up pings as a box (quartiles) with whiskers from the 5th
    to the 95th percentile, fastest site on top, log scale."""
    up = pings.loc[(pings["status"] == "up").to_numpy(dtype=bool, na_value=False)]
    up = up.loc[up["response_time_ms"].notna()]
    groups = {
        str(site): part.to_numpy(dtype=float)
        for site, part in up.groupby("site_id", observed=True)["response_time_ms"]
    }
    order = sorted(groups, key=lambda s: float(np.median(groups[s])), reverse=True)
    fig, ax = _figure(1.0 + 0.22 * len(order))
    if not order:
        return _empty(fig, ax, "no up pings")
    ax.boxplot(
        [groups[s] for s in order],
        orientation="horizontal",
        whis=(5, 95),
        showfliers=False,
        widths=0.6,
        medianprops={"color": "black"},
    )
    ax.set_yticks(range(1, len(order) + 1), [_label(s, names) for s in order])
    ax.set_xscale("log")
    ax.set_xlabel("response time (ms, log scale); box: quartiles, whiskers: 5th-95th percentile")
    ax.set_title("Response times per site (up pings)")
    return fig


def latency_shift(pings: pd.DataFrame, shift: pd.Series, *, names: Names = None) -> Figure:
    """One site's hourly median response time, with the change point found by
    ``analysis.latency_shifts`` (``shift``, one of its rows) and the medians before and after."""
    site = str(shift.name)
    mine = pings.loc[(pings["site_id"].astype(str) == site).to_numpy()]
    up = mine.loc[(mine["status"] == "up").to_numpy(dtype=bool, na_value=False)]
    hourly = (
        pd.Series(
            up["response_time_ms"].to_numpy(dtype=float),
            index=pd.DatetimeIndex(up["checked_at"]),
        )
        .sort_index()
        .resample("1h")
        .median()
    )
    fig, ax = _figure(3.5)
    ax.plot(_nums(hourly.index), hourly.to_numpy(), linewidth=1, color="#555555",
            label="hourly median")  # fmt: skip
    changed = pd.Timestamp(shift["changed_at"])
    at, window = _num(changed), _days(pd.Timedelta(shift["window"]))
    ax.hlines(shift["before_ms"], at - window, at, color=UP, linewidth=2.5, label="median before")
    ax.hlines(shift["after_ms"], at, at + window, color=DOWN, linewidth=2.5, label="median after")
    ax.axvline(at, color="black", linestyle="--", linewidth=1)
    ax.set_ylabel("response time (ms)")
    ax.set_ylim(bottom=0)
    ax.legend(**_OUTSIDE)
    _dates(ax)
    ax.set_title(
        f"{_label(site, names)}: {shift['before_ms']:.0f} ms to {shift['after_ms']:.0f} ms "
        f"(x{shift['ratio']:.2f}) from {_naive(changed):%a %m-%d %H:%M} UTC"
    )
    return fig


# -- outages and SLA -----------------------------------------------------------------------


def outage_timeline(
    outages: pd.DataFrame,
    *,
    names: Names = None,
    start: dt.datetime | pd.Timestamp | None = None,
    end: dt.datetime | pd.Timestamp | None = None,
    min_pings: int = 1,
) -> Figure:
    """Each site's outages (``stats.outages``) of at least ``min_pings`` down pings as bars
    coloured by their first error category, from ``start`` to ``end`` (default: the outages'
    span); an ongoing outage runs to ``end``. Short outages are drawn at a minimum visible width.
    """
    outages = outages.loc[outages["pings_down"] >= min_pings]
    sites = sorted({str(s) for s in outages["site_id"]}, key=lambda s: _label(s, names))
    fig, ax = _figure(1.2 + 0.3 * len(sites))
    if outages.empty:
        return _empty(fig, ax, "no outages")
    began = _nums(outages["started_at"])
    ended = _nums(outages["ended_at"])
    begin = _num(start) if start is not None else float(began.min())
    stop = _num(end) if end is not None else float(np.nanmax(np.r_[began, ended]))
    ended = np.where(np.isnan(ended), stop, ended)
    widths = np.maximum(ended - began, (stop - begin) / 300)
    rows = [sites.index(str(s)) for s in outages["site_id"]]
    colours = [CATEGORY_COLOURS.get(str(c), GAP) for c in outages["first_error_category"]]
    ax.barh(rows, widths, left=began, height=0.6, color=colours)
    ax.set_yticks(range(len(sites)), [_label(s, names) for s in sites])
    ax.set_ylim(len(sites) - 0.5, -0.5)
    ax.set_xlim(begin, stop)
    used = [c for c in CATEGORY_COLOURS if c in set(outages["first_error_category"].astype(str))]
    handles = [_patch(CATEGORY_COLOURS[c]) for c in used]
    ax.legend(handles, used, title="first error", **_OUTSIDE)
    _dates(ax)
    ax.set_title("Outages per site (colour: first error category)")
    return fig


def error_categories(pings: pd.DataFrame, *, freq: str = "6h") -> Figure:
    """Down pings per error category per ``freq`` period, stacked, all sites."""
    table = stats.error_breakdown(pings, freq=freq)
    table = table.loc[:, table.sum() > 0]
    fig, ax = _figure(3.5)
    if table.empty or table.columns.empty:
        return _empty(fig, ax, "no down pings")
    times = _nums(table.index)
    width = _days(pd.Timedelta(freq)) * 0.9
    bottom = np.zeros(len(table))
    for category in table.columns:
        values = table[category].to_numpy()
        ax.bar(times, values, width=width, bottom=bottom, align="edge",
               color=CATEGORY_COLOURS[str(category)], label=str(category))  # fmt: skip
        bottom += values
    ax.set_ylabel(f"down pings per {freq}")
    ax.legend(title="category", **_OUTSIDE)
    _dates(ax)
    ax.set_title("Why pings failed, over time")
    return fig


def error_budget(sla: pd.DataFrame, *, names: Names = None, month: str | None = None) -> Figure:
    """Error budget used per site in ``month`` (default: the latest in ``sla``, a
    ``analysis.sla_table``); red beyond 100 %, bars cut at 200 % with the value written."""
    month = month or str(sla["month"].max())
    rows = sla.loc[sla["month"] == month].sort_values("budget_used_pct")
    fig, ax = _figure(1.2 + 0.22 * len(rows))
    if rows.empty:
        return _empty(fig, ax, "no SLA rows")
    used = rows["budget_used_pct"].to_numpy(dtype=float)
    labels = [_label(s, names or dict(zip(rows["site_id"], rows["site"], strict=True)))
              for s in rows["site_id"]]  # fmt: skip
    ax.barh(labels, np.minimum(used, 200), color=[DOWN if u > 100 else UP for u in used])
    for y, u in enumerate(used):
        ax.annotate(f"{u:.0f} %", (min(u, 200), y), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=8)  # fmt: skip
    ax.axvline(100, color="black", linestyle="--", linewidth=1, label="the whole budget")
    ax.set_xlim(0, 225)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    target = float(rows["target_pct"].iloc[0])
    ax.set_xlabel(f"error budget used in {month} (%), target {target} % uptime")
    ax.legend(loc="lower right")
    ax.set_title(f"Error budget used, {month}")
    return fig


# -- the collector -------------------------------------------------------------------------


def cycle_durations(cycles: pd.DataFrame, *, interval: pd.Timedelta) -> Figure:
    """Each cycle's duration against the ``interval`` (log scale); overruns in red."""
    fig, ax = _figure(3.5)
    if cycles.empty:
        return _empty(fig, ax, "no cycles")
    started = _nums(cycles["started_at"])
    seconds = cycles["duration_ms"].to_numpy(dtype=float) / 1000
    over = seconds > interval.total_seconds()
    ax.plot(started, seconds, ".", markersize=2, color="#555555", label="cycle duration")
    ax.plot(started[over], seconds[over], "o", color=DOWN, label=f"overrun ({over.sum()})")
    ax.axhline(interval.total_seconds(), color="black", linestyle="--", linewidth=1,
               label=f"interval ({_span(interval)})")  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylabel("seconds (log scale)")
    ax.legend(**_OUTSIDE)
    _dates(ax)
    ax.set_title("Cycle duration against the interval")
    return fig


def pings_per_cycle(cycles: pd.DataFrame) -> Figure:
    """Pings stored per cycle, one dot a cycle: a dot below the line is a cycle cut short (in
    red when it ended with an error, such as an interrupted one)."""
    fig, ax = _figure(3.0)
    if cycles.empty:
        return _empty(fig, ax, "no cycles")
    started = _nums(cycles["started_at"])
    checked = cycles["sites_checked"].to_numpy(dtype=float)
    failed = cycles["error"].notna().to_numpy()
    ax.plot(started, checked, ".", markersize=3, color="#555555", label="pings stored")
    ax.plot(
        started[failed],
        checked[failed],
        "o",
        color=DOWN,
        label=f"ended with an error ({failed.sum()})",
    )
    ax.set_ylabel("pings per cycle")
    ax.set_ylim(0, max(1.0, float(checked.max())) * 1.1)
    ax.legend(**_OUTSIDE)
    _dates(ax)
    ax.set_title("Pings stored per cycle")
    return fig


def collector_timeline(
    cycles: pd.DataFrame, gaps: pd.DataFrame, *, interval: pd.Timedelta
) -> Figure:
    """Two lanes on one time axis: above, when the collector ran and its own gaps
    (``analysis.collector_gaps``); below, the sites down in each cycle. A gap is missing data,
    not site downtime, so it is drawn apart from it."""
    fig = Figure(figsize=(WIDTH, 3.6), layout="constrained")
    lane, ax = fig.subplots(2, 1, sharex=True, height_ratios=[1, 4])
    if cycles.empty:
        lane.set_axis_off()
        return _empty(fig, ax, "no cycles")
    first, last = _num(cycles["started_at"].min()), _num(cycles["finished_at"].max())
    gap_from = _nums(gaps["started_at"])
    gap_to = np.nan_to_num(_nums(gaps["ended_at"]), nan=last)
    lane.broken_barh([(first, last - first)], (0, 1), color=UP, label="collector running")
    lane.broken_barh(list(zip(gap_from, gap_to - gap_from, strict=True)), (0, 1), color=GAP,
                     label="collector not running (no data)")  # fmt: skip
    lane.set_yticks([])
    lane.legend(**_OUTSIDE)
    lane.set_title("The collector's own gaps, apart from site downtime")
    times, down = _broken(cycles, ["down"], interval)
    ax.step(times, down, where="post", color=DOWN, linewidth=1, label="sites down in the cycle")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("sites down")
    ax.set_ylim(bottom=0)
    ax.legend(**_OUTSIDE)
    _dates(ax)
    return fig


def perf_results(perf: pd.DataFrame) -> Figure:
    """Performance measures (``analysis.load_perf_results``): the median as a bar and the min-max
    range as a whisker, one panel per unit, labelled by scenario and measure."""
    units = list(dict.fromkeys(perf["unit"].astype(str)))
    height = 1.0 + 0.3 * len(perf) + 0.5 * len(units)
    fig = Figure(figsize=(WIDTH, height), layout="constrained")
    heights = [int((perf["unit"].astype(str) == u).sum()) for u in units]
    axes = fig.subplots(len(units), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, unit in zip(axes, units, strict=True):
        part = perf.loc[perf["unit"].astype(str) == unit].iloc[::-1]
        labels = [f"{s}: {m}" if s else str(m) for s, m in zip(part["scenario"], part["measure"],
                                                                 strict=True)]  # fmt: skip
        median = part["median"].to_numpy(dtype=float)
        low = median - part["min"].fillna(part["median"]).to_numpy(dtype=float)
        high = part["max"].fillna(part["median"]).to_numpy(dtype=float) - median
        ax.barh(labels, median, xerr=[low, high], color="#1f77b4", error_kw={"capsize": 3})
        ax.set_xlabel(unit or "value")
    axes[0].set_title("Performance results (bar: median; whisker: min to max)")
    return fig


# -- helpers -------------------------------------------------------------------------------


def _figure(height: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(WIDTH, max(2.5, height)), layout="constrained")
    return fig, fig.subplots()


def _empty(fig: Figure, ax: Axes, text: str) -> Figure:
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    return fig


def _colormap(name: str) -> Any:
    import matplotlib

    return matplotlib.colormaps[name]


def _patch(colour: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(color=colour)


def _dates(ax: Axes) -> None:
    """Date ticks on an x axis whose values are :func:`_nums` (days since 1970, UTC)."""
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.set_xlabel("UTC")


_DAY_US: Final = 86_400_000_000


def _nums(values: Any) -> npt.NDArray[np.float64]:
    """Times as matplotlib date numbers (days since 1970-01-01 UTC, its default epoch); NaT as
    NaN. Computed here so that every time on an axis is a plain float."""
    times = _naive_index(pd.DatetimeIndex(values)).as_unit("us")
    days = times.asi8 / _DAY_US
    return np.where(times.isna(), np.nan, days)


def _num(value: Any) -> float:
    return float(_nums([value])[0])


def _days(delta: pd.Timedelta) -> float:
    return float(delta / pd.Timedelta(days=1))


def _label(site: object, names: Names) -> str:
    return (names or {}).get(str(site), str(site))


def _naive(value: Any) -> pd.Timestamp:
    """A UTC wall-clock Timestamp without a zone (matplotlib's dates are naive here)."""
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _naive_index(index: pd.Index) -> pd.DatetimeIndex:
    times = pd.DatetimeIndex(index)
    return times.tz_convert("UTC").tz_localize(None) if times.tz is not None else times


def _broken(cycles: pd.DataFrame, columns: list[str], interval: pd.Timedelta) -> tuple[Any, ...]:
    """Cycle start times and ``columns``, with a NaN row one interval after every start that no
    other start follows within two intervals, so that lines stop across the collector's gaps."""
    times = pd.DatetimeIndex(cycles["started_at"]).sort_values()
    values = pd.DataFrame(
        cycles.sort_values("started_at")[columns].to_numpy(dtype=float),
        index=times,
        columns=columns,
    )
    before_gap = times[:-1][np.diff(times.asi8) > 2 * interval / pd.Timedelta(1, times.unit)]
    breaks = pd.DataFrame(np.nan, index=before_gap + interval, columns=columns)
    frame = pd.concat([values, breaks]).sort_index()
    return (_nums(frame.index), *(frame[c].to_numpy() for c in columns))


def _span(delta: pd.Timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
