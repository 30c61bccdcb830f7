"""``uptimelab.analysis``: the tables the notebooks and the report share.

A public face, re-exports only: the functions live in :mod:`uptimelab.analytics` (``tables``:
per-site tables; ``latency``; ``collector_health``: cycles, lateness, gaps, perf results) and
:mod:`uptimelab.report.html_table`.
"""

from .analytics.collector_health import (
    PERF_JSON_ENV,
    collector_gaps,
    cycle_interval,
    load_cycles,
    load_perf_results,
    perf_results_path,
    round_lateness,
)
from .analytics.latency import latency_shifts
from .analytics.tables import fleet_table, month_table, site_names, site_summary, sla_table
from .report.html_table import HtmlTable, html_table

__all__ = [
    "HtmlTable",
    "PERF_JSON_ENV",
    "collector_gaps",
    "cycle_interval",
    "fleet_table",
    "html_table",
    "latency_shifts",
    "load_cycles",
    "load_perf_results",
    "month_table",
    "perf_results_path",
    "round_lateness",
    "site_names",
    "site_summary",
    "sla_table",
]
