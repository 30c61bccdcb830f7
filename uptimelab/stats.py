"""``uptimelab.stats`` (``ul.stats``): the pandas API over pings, for notebooks.

A public face, re-exports only: the functions live in :mod:`uptimelab.analytics` (``frames``:
the pings frame's dtypes; ``loaders``; ``windows``: sliding windows; ``series``: calendar series;
``latency``; ``outages``; ``regions``: per-location stats and the quorum verdict).
"""

from .analytics.certificates import certificate_expiry
from .analytics.frames import ERROR_DTYPE, STATUS_CATEGORIES, STATUS_DTYPE
from .analytics.latency import phase_breakdown, phase_quantiles, response_time_quantiles
from .analytics.loaders import load_outages, load_pings
from .analytics.long_windows import load_maintenance, load_site_settings, load_window_stats
from .analytics.outages import outages, reliability
from .analytics.regions import (
    load_site_intervals,
    location_stats,
    quorum_stats,
    quorum_uptime,
    quorum_verdicts,
)
from .analytics.series import error_breakdown, uptime_series
from .analytics.windows import POLICIES, SITE_STATS_WINDOWS, WINDOWS, ping_values, window_stats
from .domain.pings import ERROR_CATEGORIES

__all__ = [
    "ERROR_CATEGORIES",
    "ERROR_DTYPE",
    "POLICIES",
    "SITE_STATS_WINDOWS",
    "STATUS_CATEGORIES",
    "STATUS_DTYPE",
    "WINDOWS",
    "certificate_expiry",
    "error_breakdown",
    "load_maintenance",
    "load_outages",
    "load_pings",
    "load_site_intervals",
    "load_site_settings",
    "load_window_stats",
    "location_stats",
    "outages",
    "phase_breakdown",
    "phase_quantiles",
    "ping_values",
    "quorum_stats",
    "quorum_uptime",
    "quorum_verdicts",
    "reliability",
    "response_time_quantiles",
    "uptime_series",
    "window_stats",
]
