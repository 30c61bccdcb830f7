"""A synthetic history: a realistic week (or any span) of pings and cycles, in seconds.

``uptimelab demo --history 7d`` calls :func:`write_history`, so that the notebooks and the report
have data on a fresh machine without waiting a week. :func:`synthetic_history` is the pure part:
the same ``seed``, span, interval and end give the same history, ping for ping.

What the history holds, so that every chart has something to show:

* sites of five latency profiles (a CDN, APIs, apps, a far-away mirror, a slow CMS), each with a
  daily pattern (slower at its busy hours, less so at weekends) and a rare slow spike;
* rare one-ping failures (timeouts, resets, a 502) on every site;
* six planned outages of different lengths and causes, one on each of six sites, the last one
  still going on at the end;
* one site whose latency regresses (x2.2) mid-span, and one site that flaps for a while;
* the collector's own life: a cycle row per cycle, a short and a long gap where the collector was
  down (no cycles, no pings: not site downtime), the cycle interrupted before the long gap, and a
  spell of slow database writes whose cycles overrun the interval and skip the next start.

The pings go through :class:`uptimelab.storage.writer.Writer` (the collector's COPY path), in
transactions of ``BATCH_ROWS`` rows; the sites are registered inactive, since their ``.example``
URLs cannot be pinged. :mod:`.generate` makes the history (:mod:`.frames` turns its arrays into
the pings and cycles frames), :mod:`.write` stores it.
"""

from .frames import HISTORY_LOCATION
from .generate import (
    HISTORY_DOMAIN,
    REGRESSION_FACTOR,
    History,
    Incident,
    SyntheticSite,
    check_history,
    synthetic_history,
)
from .write import HistorySummary, write_history

__all__ = [
    "HISTORY_DOMAIN",
    "HISTORY_LOCATION",
    "REGRESSION_FACTOR",
    "History",
    "HistorySummary",
    "Incident",
    "SyntheticSite",
    "check_history",
    "synthetic_history",
    "write_history",
]
