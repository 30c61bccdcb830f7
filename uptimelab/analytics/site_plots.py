"""Charts of the sites: the fleet, response times, outages and the SLA (see
:mod:`uptimelab.analytics.figures` for what every chart shares)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .figures import (
    CATEGORY_COLOURS,
    DOWN,
    GAP,
    LEGEND_OUTSIDE,
    UP,
    Names,
    colormap,
    date_axis,
    date_num,
    date_nums,
    empty_figure,
    in_days,
    legend_patch,
    literal,
    naive_utc,
    new_figure,
    site_label,
)
from .frames import utc_series
from .latency import response_time_quantiles
from .series import error_breakdown, uptime_series

# -- fleet ---------------------------------------------------------------------------------


def worst_sites(
    fleet: pd.DataFrame, *, column: str = "uptime_7d", n: int = 10, target: float | None = None
) -> Figure:
    """The ``n`` sites with the lowest ``column`` (percent) of ``fleet`` (``analysis.fleet_table``)
    as bars, with the ``target`` line when given."""
    worst = fleet.nsmallest(n, column).iloc[::-1]
    fig, ax = new_figure(0.8 + 0.3 * len(worst))
    values = worst[column].to_numpy(dtype=float)
    colours = [DOWN if target is not None and v < target else UP for v in values]
    # Positions, not the names, on the axis: two sites may share a name.
    ax.barh(range(len(worst)), values, color=colours)
    ax.set_yticks(range(len(worst)), [literal(name) for name in worst["site"]])
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
    series = uptime_series(pings, freq=freq)
    order = series.mean().sort_values().index
    grid = series[order].T
    fig, ax = new_figure(1.2 + 0.22 * len(grid))
    cmap = colormap("RdYlGn").with_extremes(bad=GAP)
    if grid.empty:
        return empty_figure(fig, ax, "no pings")
    start = date_num(grid.columns[0])
    end = date_num(grid.columns[-1]) + in_days(pd.Timedelta(freq))
    image = ax.imshow(
        np.ma.masked_invalid(grid.to_numpy(dtype=float)),
        aspect="auto",
        interpolation="nearest",
        cmap=cmap,
        vmin=80,
        vmax=100,
        extent=(start, end, len(grid) - 0.5, -0.5),
    )
    ax.set_yticks(range(len(grid)), [site_label(s, names) for s in grid.index])
    date_axis(ax)
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
            "period": utc_series(pings["checked_at"]).dt.floor(freq).array,
            "status": pings["status"].array,
            "response_time_ms": pings["response_time_ms"].array,
        }
    )
    table = response_time_quantiles(frame, q=q, by="period")
    fig, ax = new_figure(4.0)
    if table.empty:
        return empty_figure(fig, ax, "no up pings")
    full = pd.date_range(table.index[0], table.index[-1], freq=freq)
    for column in table.columns.drop("count"):
        ax.plot(date_nums(full), table[column].reindex(full).to_numpy(), label=column, linewidth=1)
    ax.set_yscale("log")
    ax.set_ylabel("response time (ms, log scale)")
    ax.legend(**LEGEND_OUTSIDE)
    date_axis(ax)
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
    fig, ax = new_figure(1.0 + 0.22 * len(order))
    if not order:
        return empty_figure(fig, ax, "no up pings")
    ax.boxplot(
        [groups[s] for s in order],
        orientation="horizontal",
        whis=(5, 95),
        showfliers=False,
        widths=0.6,
        medianprops={"color": "black"},
    )
    ax.set_yticks(range(1, len(order) + 1), [site_label(s, names) for s in order])
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
    fig, ax = new_figure(3.5)
    ax.plot(date_nums(hourly.index), hourly.to_numpy(), linewidth=1, color="#555555",
            label="hourly median")  # fmt: skip
    changed = pd.Timestamp(shift["changed_at"])
    at, window = date_num(changed), in_days(pd.Timedelta(shift["window"]))
    ax.hlines(shift["before_ms"], at - window, at, color=UP, linewidth=2.5, label="median before")
    ax.hlines(shift["after_ms"], at, at + window, color=DOWN, linewidth=2.5, label="median after")
    ax.axvline(at, color="black", linestyle="--", linewidth=1)
    ax.set_ylabel("response time (ms)")
    ax.set_ylim(bottom=0)
    ax.legend(**LEGEND_OUTSIDE)
    date_axis(ax)
    ax.set_title(
        f"{site_label(site, names)}: {shift['before_ms']:.0f} ms to {shift['after_ms']:.0f} ms "
        f"(x{shift['ratio']:.2f}) from {naive_utc(changed):%a %m-%d %H:%M} UTC"
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
    sites = sorted({str(s) for s in outages["site_id"]}, key=lambda s: site_label(s, names))
    fig, ax = new_figure(1.2 + 0.3 * len(sites))
    if outages.empty:
        return empty_figure(fig, ax, "no outages")
    began = date_nums(outages["started_at"])
    ended = date_nums(outages["ended_at"])
    begin = date_num(start) if start is not None else float(began.min())
    stop = date_num(end) if end is not None else float(np.nanmax(np.r_[began, ended]))
    ended = np.where(np.isnan(ended), stop, ended)
    widths = np.maximum(ended - began, (stop - begin) / 300)
    rows = [sites.index(str(s)) for s in outages["site_id"]]
    colours = [CATEGORY_COLOURS.get(str(c), GAP) for c in outages["first_error_category"]]
    ax.barh(rows, widths, left=began, height=0.6, color=colours)
    ax.set_yticks(range(len(sites)), [site_label(s, names) for s in sites])
    ax.set_ylim(len(sites) - 0.5, -0.5)
    ax.set_xlim(begin, stop)
    used = [c for c in CATEGORY_COLOURS if c in set(outages["first_error_category"].astype(str))]
    handles = [legend_patch(CATEGORY_COLOURS[c]) for c in used]
    ax.legend(handles, used, title="first error", **LEGEND_OUTSIDE)
    date_axis(ax)
    ax.set_title("Outages per site (colour: first error category)")
    return fig


def error_categories(pings: pd.DataFrame, *, freq: str = "6h") -> Figure:
    """Down pings per error category per ``freq`` period, stacked, all sites."""
    table = error_breakdown(pings, freq=freq)
    table = table.loc[:, table.sum() > 0]
    fig, ax = new_figure(3.5)
    if table.empty or table.columns.empty:
        return empty_figure(fig, ax, "no down pings")
    times = date_nums(table.index)
    width = in_days(pd.Timedelta(freq)) * 0.9
    bottom = np.zeros(len(table))
    for category in table.columns:
        values = table[category].to_numpy()
        ax.bar(times, values, width=width, bottom=bottom, align="edge",
               color=CATEGORY_COLOURS[str(category)], label=literal(category))  # fmt: skip
        bottom += values
    ax.set_ylabel(f"down pings per {freq}")
    ax.legend(title="category", **LEGEND_OUTSIDE)
    date_axis(ax)
    ax.set_title("Why pings failed, over time")
    return fig


def error_budget(sla: pd.DataFrame, *, names: Names = None, month: str | None = None) -> Figure:
    """Error budget used per site in ``month`` (default: the latest in ``sla``, a
    ``analysis.sla_table``); red beyond 100 %, bars cut at 200 % with the value written."""
    month = month or str(sla["month"].max())
    rows = sla.loc[sla["month"] == month].sort_values("budget_used_pct")
    fig, ax = new_figure(1.2 + 0.22 * len(rows))
    if rows.empty:
        return empty_figure(fig, ax, "no SLA rows")
    used = rows["budget_used_pct"].to_numpy(dtype=float)
    labels = [site_label(s, names or dict(zip(rows["site_id"], rows["site"], strict=True)))
              for s in rows["site_id"]]  # fmt: skip
    ax.barh(range(len(rows)), np.minimum(used, 200), color=[DOWN if u > 100 else UP for u in used])
    ax.set_yticks(range(len(rows)), labels)
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
