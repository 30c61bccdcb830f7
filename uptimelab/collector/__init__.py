"""Scheduling, concurrency and shutdown of the collector; its published state; the embedded
(notebook) collector."""

from .collector import Collector, CycleSummary, QuietReporter, Reporter, next_slot, run_until_signal
from .embedded import BackgroundCollector, collect_once, start_collector

__all__ = [
    "BackgroundCollector",
    "Collector",
    "CycleSummary",
    "QuietReporter",
    "Reporter",
    "collect_once",
    "next_slot",
    "run_until_signal",
    "start_collector",
]
