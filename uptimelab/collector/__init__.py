"""Scheduling, concurrency and shutdown of the collector; its published state; the embedded
(notebook) collector."""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .collector import Collector, next_slot, run_until_signal
    from .embedded import BackgroundCollector, collect_once, start_collector
    from .reporting import CycleSummary, QuietReporter, Reporter

# Imported on first use: ``collector.state`` (read by ``uptimelab status``) needs neither trio
# nor the probe.
_HOME_OF = {
    "BackgroundCollector": ".embedded",
    "Collector": ".collector",
    "CycleSummary": ".reporting",
    "QuietReporter": ".reporting",
    "Reporter": ".reporting",
    "collect_once": ".embedded",
    "next_slot": ".collector",
    "run_until_signal": ".collector",
    "start_collector": ".embedded",
}


if not TYPE_CHECKING:  # type checkers see the imports above

    def __getattr__(name: str) -> Any:
        home = _HOME_OF.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return getattr(import_module(home, __name__), name)


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
