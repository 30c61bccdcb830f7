"""What a collector tells: the summary of a cycle or round, and the reporter protocol (a progress
bar, log lines, metrics, nothing)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..domain.pings import PingResult
from ..domain.sites import Probeable
from ..storage.models import MonitoringCycle

log = logging.getLogger("uptimelab.collector")


@dataclass
class CycleSummary:
    """The outcome of one cycle. ``pings`` holds every result (also for a dry run)."""

    id: uuid.UUID
    started_at: dt.datetime
    finished_at: dt.datetime
    location: str
    region_code: str
    sites_checked: int
    up: int
    down: int
    duration_ms: int
    dry_run: bool
    interrupted: bool = False
    error: str | None = None
    by_category: dict[str, int] = field(default_factory=dict)
    pings: list[PingResult] = field(default_factory=list, repr=False)
    # Where the pings went: "stored", "spooled", "dropped" or "quarantined"; None for a dry run.
    stored: str | None = None
    orphans: int = 0  # pings left out because their site was deleted during the cycle
    faults: int = 0  # sites that got no ping because our own client failed (a collector fault)
    spool_waiting: int = 0  # cycles waiting in the spool after this one
    # A round's pings stored by batches that reached the database, when others did not (the
    # database went away during it); None: all went the one way ``stored`` says.
    stored_pings: int | None = None

    def record(self) -> MonitoringCycle:
        """The monitoring_cycles row of this cycle."""
        return MonitoringCycle(
            id=self.id,
            started_at=self.started_at,
            finished_at=self.finished_at,
            location=self.location,
            region_code=self.region_code,
            sites_checked=self.sites_checked,
            up=self.up,
            down=self.down,
            duration_ms=self.duration_ms,
            dry_run=self.dry_run,
            error=self.error,
        )

    def published(self) -> dict[str, Any]:
        """This cycle as a collector's published state shows its last one (JSON-ready)."""
        return {
            "id": str(self.id),
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "sites_checked": self.sites_checked,
            "up": self.up,
            "down": self.down,
            "by_category": self.by_category,
            "duration_ms": self.duration_ms,
            "interrupted": self.interrupted,
            "stored": self.stored,
            "orphans": self.orphans,
            "spool_waiting": self.spool_waiting,
            "error": self.error,
            "faults": self.faults,
        }


def cycle_error(interrupted: bool, pinged: int, sites: int, faults: int) -> str | None:
    """The ``error`` of a cycle or round (None for a clean one). Collector faults are named as
    "N collector fault(s)": status and health count them from this text. A cycle cut short by a
    requested stop (a signal, ``Collector.stop()``: the only way its probing is cancelled) is
    "stopped after ...": not a failure, and left out of status's success rate."""
    parts = []
    if interrupted:
        parts.append(f"stopped after {pinged} of {sites} sites")
    if faults:
        parts.append(f"{faults} collector fault(s): those sites got no ping (see the log)")
    return "; ".join(parts) or None


class Reporter(Protocol):
    """What a collector tells its user as it works (a progress bar, log lines, nothing).

    ``cycle_started`` gets the sites the cycle will probe: all of them for a one-off cycle, the
    ones this collector holds at the round's start on its schedule, or None when it holds none
    yet (the location's collectors are still sharing the sites out)."""

    def cycle_started(self, number: int, sites: int | None) -> None: ...
    def ping_done(self, site: Probeable, ping: PingResult) -> None: ...
    def cycle_finished(self, summary: CycleSummary) -> None: ...
    def note(self, message: str) -> None: ...


class QuietReporter:
    """Reports nothing (the library default); notes go to the log."""

    def cycle_started(self, number: int, sites: int | None) -> None:
        log.info("cycle %d: %s sites", number, "no" if sites is None else sites)

    def ping_done(self, site: Probeable, ping: PingResult) -> None:
        pass

    def cycle_finished(self, summary: CycleSummary) -> None:
        log.info(
            "cycle %s: %d up, %d down in %d ms",
            summary.id,
            summary.up,
            summary.down,
            summary.duration_ms,
        )

    def note(self, message: str) -> None:
        log.warning("%s", message)


@dataclass
class Round:
    """One round of the default interval: what a collector on its schedule did in it."""

    id: uuid.UUID
    started_at: dt.datetime
    sites: set[uuid.UUID] = field(default_factory=set)
    up: int = 0
    down: int = 0
    faults: int = 0
    late_s: float = 0.0
    by_category: Counter[str] = field(default_factory=Counter)
    outcome: str | None = None
    orphans: int = 0
    waiting: int = 0
    stored_pings: int = 0  # of the batches stored directly

    def add(self, ping: PingResult, late_s: float) -> None:
        self.sites.add(ping.site_id)
        if ping.status == "up":
            self.up += 1
        else:
            self.down += 1
            if ping.error_category:
                self.by_category[ping.error_category] += 1
        self.late_s = max(self.late_s, late_s)

    def stored(self, outcome: str, orphans: int, waiting: int) -> None:
        # The round says the worst that happened to any of its batches.
        order = ("stored", "spooled", "quarantined", "dropped")
        if self.outcome is None or order.index(outcome) > order.index(self.outcome):
            self.outcome = outcome
        self.orphans += orphans
        self.waiting = waiting
