"""``uptimelab.plots``: the charts the notebooks and the report share (matplotlib).

A public face, re-exports only: the functions live in :mod:`uptimelab.analytics` (``site_plots``,
``collector_plots``; what they share in ``figures``).

Each function takes frames from :mod:`uptimelab.stats` or :mod:`uptimelab.analysis` and returns a
:class:`matplotlib.figure.Figure`. Figures are made without pyplot: no backend is chosen, nothing
is kept in a global registry (a figure is freed with its last reference, so there is nothing to
close), and the report saves them as PNG. In Jupyter, run ``%matplotlib inline`` once and a figure
shows itself as the value of a cell. Times are plotted in UTC; ``names`` maps site ids (as
strings) to the labels shown.
"""

from .analytics.collector_plots import (
    collector_timeline,
    cycle_durations,
    perf_results,
    pings_per_cycle,
)
from .analytics.figures import CATEGORY_COLOURS
from .analytics.phase_plots import phase_breakdown_chart
from .analytics.site_plots import (
    error_budget,
    error_categories,
    latency_shift,
    outage_timeline,
    response_time_distributions,
    response_time_percentiles,
    uptime_heatmap,
    worst_sites,
)

__all__ = [
    "CATEGORY_COLOURS",
    "collector_timeline",
    "cycle_durations",
    "error_budget",
    "error_categories",
    "latency_shift",
    "outage_timeline",
    "perf_results",
    "phase_breakdown_chart",
    "pings_per_cycle",
    "response_time_distributions",
    "response_time_percentiles",
    "uptime_heatmap",
    "worst_sites",
]
