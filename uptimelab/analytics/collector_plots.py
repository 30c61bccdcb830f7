"""Charts of the collector itself: cycle durations, pings per cycle, its own gaps apart from site
downtime, and performance results (see :mod:`uptimelab.analytics.figures`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..text import span
from .collector_health import overran
from .figures import (
    DOWN,
    GAP,
    LEGEND_OUTSIDE,
    UP,
    WIDTH,
    date_axis,
    date_num,
    date_nums,
    empty_figure,
    literal,
    new_figure,
)


def cycle_durations(cycles: pd.DataFrame, *, interval: pd.Timedelta) -> Figure:
    """Each ``collect --once`` cycle's duration against the ``interval``, overruns in red, and
    how late each round of a running collector was (``late_ms``): a round lasts one interval by
    design, so its lateness, not its duration, says whether it kept up. Seconds on a scale
    linear below 1 s and logarithmic above."""
    fig, ax = new_figure(3.5)
    if cycles.empty:
        return empty_figure(fig, ax, "no cycles")
    rounds = (
        cycles["collector_id"].notna().to_numpy()
        if "collector_id" in cycles
        else np.zeros(len(cycles), dtype=bool)
    )
    started = date_nums(cycles["started_at"])
    seconds = cycles["duration_ms"].to_numpy(dtype=float, na_value=np.nan) / 1000
    over = overran(cycles, interval).to_numpy()
    once = ~rounds
    ax.plot(started[once], seconds[once], ".", markersize=2, color="#555555",
            label=f"collect --once cycle ({once.sum()})")  # fmt: skip
    ax.plot(started[over], seconds[over], "o", color=DOWN, label=f"overrun ({over.sum()})")
    if rounds.any():
        late = cycles["late_ms"].to_numpy(dtype=float, na_value=np.nan)[rounds] / 1000
        ax.plot(started[rounds], late, ".", markersize=2, color=UP,
                label=f"round: how late ({rounds.sum()})")  # fmt: skip
    ax.axhline(interval.total_seconds(), color="black", linestyle="--", linewidth=1,
               label=f"interval ({span(interval)})")  # fmt: skip
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylabel("seconds")
    ax.legend(**LEGEND_OUTSIDE)
    date_axis(ax)
    ax.set_title("Cycle duration and round lateness against the interval")
    return fig


def pings_per_cycle(cycles: pd.DataFrame) -> Figure:
    """Pings stored per cycle, one dot a cycle: a dot below the line is a cycle cut short (in
    red when it ended with an error, such as an interrupted one)."""
    fig, ax = new_figure(3.0)
    if cycles.empty:
        return empty_figure(fig, ax, "no cycles")
    started = date_nums(cycles["started_at"])
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
    ax.legend(**LEGEND_OUTSIDE)
    date_axis(ax)
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
        return empty_figure(fig, ax, "no cycles")
    first, last = date_num(cycles["started_at"].min()), date_num(cycles["finished_at"].max())
    gap_from = date_nums(gaps["started_at"])
    gap_to = np.nan_to_num(date_nums(gaps["ended_at"]), nan=last)
    lane.broken_barh([(first, last - first)], (0, 1), color=UP, label="collector running")
    lane.broken_barh(list(zip(gap_from, gap_to - gap_from, strict=True)), (0, 1), color=GAP,
                     label="collector not running (no data)")  # fmt: skip
    lane.set_yticks([])
    lane.legend(**LEGEND_OUTSIDE)
    lane.set_title("The collector's own gaps, apart from site downtime")
    times, down = _broken(cycles, ["down"], interval)
    ax.step(times, down, where="post", color=DOWN, linewidth=1, label="sites down in the cycle")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("sites down")
    ax.set_ylim(bottom=0)
    ax.legend(**LEGEND_OUTSIDE)
    date_axis(ax)
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
        pairs = zip(part["scenario"], part["measure"], strict=True)
        labels = [literal(f"{s}: {m}" if s else m) for s, m in pairs]
        median = part["median"].to_numpy(dtype=float)
        low = median - part["min"].fillna(part["median"]).to_numpy(dtype=float)
        high = part["max"].fillna(part["median"]).to_numpy(dtype=float) - median
        ax.barh(range(len(part)), median, xerr=[low, high], color="#1f77b4",
                error_kw={"capsize": 3})  # fmt: skip
        ax.set_yticks(range(len(part)), labels)
        ax.set_xlabel(literal(unit) if unit else "value")
    axes[0].set_title("Performance results (bar: median; whisker: min to max)")
    return fig


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
    return (date_nums(frame.index), *(frame[c].to_numpy() for c in columns))
