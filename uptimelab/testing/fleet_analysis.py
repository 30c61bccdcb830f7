"""The analysis of a finished fleet run (``uptimelab perf --collectors N``, :mod:`.fleet_perf`):
what the database says of how the fleet was served.

Pings per site and the gaps between them; pings per second in 10-second windows of the steady
part (after every site's first probe plus half an interval: before that, sites never probed are
all due at once); and for a kill, the longest gap of any site the killed collector held and how
late after its cadence each was probed again.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from ..collector.schedule import next_due
from ..storage import fleet
from ..storage.database import Database

WINDOW_S = 10


@dataclass
class CollectorFigures:
    """One collector process: its share and its memory (MB)."""

    pid: int
    sites_owned: int = 0
    rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    killed: bool = False
    exit_code: int | None = None


@dataclass
class FleetResult:
    """What a fleet run measured. Times in seconds, rates in pings per second."""

    collectors: int
    sites: int
    interval_s: float
    duration_s: float
    zoos: int
    concurrency: int
    lease_ms: int
    pings_stored: int = 0
    pings_recorded: int = 0  # the sum of the collectors' rounds (up + down)
    sites_never_pinged: int = 0
    sites_missed_interval: int = 0  # a gap above 1.5 intervals (a grid point skipped)
    sites_too_soon: int = 0  # two pings within half an interval
    longest_gap_s: float = 0.0
    steady_s: float = 0.0
    mean_per_s: float = 0.0
    window_min_per_s: float = 0.0
    window_max_per_s: float = 0.0
    spread_pct: float | None = None  # the worst 10-s window against the mean, in %
    delay_median_s: float | None = None
    delay_p95_s: float | None = None
    delay_unseen: int = 0  # pings first seen after the poller's horizon, or not at all
    killed_sites: int = 0
    killed_longest_gap_s: float | None = None  # across the kill: last ping before, first after
    gap_goal_s: float | None = None
    # How long after it was due (by its cadence from its last ping before the kill, or at the
    # kill if that was later) a site of the killed collector was probed again; goal: the lease.
    killed_longest_late_s: float | None = None
    killed_lost_probes: int = 0  # sites due before the kill with no ping stored: lost with it
    killed_longest_cadence_s: float | None = None  # the longest (due - last ping) among them
    load_average: list[float] = field(default_factory=list)  # 1-min: at start, max, at end
    analysed: bool = False  # the server's autovacuum is off: the run ANALYZEd every minute
    per_collector: list[CollectorFigures] = field(default_factory=list)

    @property
    def stored_once(self) -> bool:
        """Every ping the collectors counted is in the database, once (no double probes)."""
        return self.pings_stored == self.pings_recorded and self.sites_too_soon == 0


def analyse(
    db: Database,
    result: FleetResult,
    delays: list[float],
    started: float,
    stopped: float,
    kill: tuple[frozenset[int], float],
) -> None:
    """Fill ``result`` from what the database holds after a run between ``started`` and
    ``stopped`` (seconds since 1970): pings per site and their gaps, the steady part's rate per
    10-second window, and with ``kill`` (the killed collector's buckets, and when it was
    killed; no buckets: no kill) how its sites were taken over. ``delays`` (seconds) are the
    pings' delays to visibility the poller noted."""
    interval = result.interval_s
    killed_buckets, killed_at = kill
    with db.connect() as conn:
        per_site = conn.execute(
            """SELECT s.id, count(g.checked_at) AS pings,
                      extract(epoch FROM min(g.checked_at))::float8 AS first,
                      extract(epoch FROM max(g.checked_at))::float8 AS last,
                      min(g.gap) AS min_gap, max(g.gap) AS max_gap
                 FROM sites s LEFT JOIN (
                      SELECT site_id, checked_at,
                             extract(epoch FROM checked_at - lag(checked_at)
                                     OVER (PARTITION BY site_id ORDER BY checked_at))::float8 AS gap
                        FROM pings) g ON g.site_id = s.id
                GROUP BY s.id"""
        ).fetchall()
        row = conn.execute(
            "SELECT coalesce(sum(up + down), 0)::bigint AS n FROM monitoring_cycles"
        ).fetchone()
        result.pings_recorded = int(row["n"]) if row else 0
        pinged = [r for r in per_site if r["pings"]]
        result.pings_stored = sum(r["pings"] for r in per_site)
        result.sites_never_pinged = len(per_site) - len(pinged)
        killed = [r for r in pinged if fleet.bucket_of(r["id"]) in killed_buckets]
        killed_ids = {r["id"] for r in killed}

        def gap(r: dict[str, Any]) -> float:  # the longest, counting the one after the last
            return max(float(r["max_gap"] or 0.0), stopped - float(r["last"]))

        for r in pinged:
            if r["min_gap"] is not None and r["min_gap"] < interval / 2:
                result.sites_too_soon += 1
            if r["id"] not in killed_ids and gap(r) > 1.5 * interval:
                result.sites_missed_interval += 1
        result.longest_gap_s = max([gap(r) for r in pinged if r["id"] not in killed_ids] or [0])
        if killed_buckets:
            # The gap across the kill: from a site's last ping before it to its first after.
            across = conn.execute(
                """SELECT site_id,
                          extract(epoch FROM max(checked_at) FILTER (
                              WHERE checked_at < to_timestamp(%(k)s)))::float8 AS before,
                          extract(epoch FROM min(checked_at) FILTER (
                              WHERE checked_at >= to_timestamp(%(k)s)))::float8 AS after
                     FROM pings GROUP BY site_id""",
                {"k": killed_at},
            ).fetchall()
            crossing = [r for r in across if r["site_id"] in killed_ids and r["before"] is not None]
            gaps, late, cadence = [], [], []
            for r in crossing:
                after = r["after"] or stopped
                # Where the site's cadence put its next probe: within an interval in a steady
                # run, up to 1.5 intervals once after a start (the first probe is off its grid).
                due = next_due(r["site_id"], interval, r["before"])
                gaps.append(after - r["before"])
                late.append(after - max(due, killed_at))
                cadence.append(due - r["before"])
                result.killed_lost_probes += due < killed_at
            result.killed_sites = len(killed)
            result.killed_longest_gap_s = max(gaps or [0.0])
            result.killed_longest_late_s = max(late or [0.0])
            result.killed_longest_cadence_s = max(cadence or [0.0])
            result.gap_goal_s = interval + result.lease_ms / 1000
        # The steady part: every site probed once, then half an interval (see the docstring).
        end = started + result.duration_s / 2 if killed_buckets else stopped
        begin = max([r["first"] for r in pinged] or [end]) + interval / 2
        windows = max(0, math.floor((end - begin) / WINDOW_S))
        if windows:
            counts = dict.fromkeys(range(windows), 0)
            for r in conn.execute(
                "SELECT floor((extract(epoch FROM checked_at) - %(b)s) / %(w)s)::int AS w, "
                "count(*) AS n "
                "FROM pings WHERE checked_at >= to_timestamp(%(b)s) "
                "AND checked_at < to_timestamp(%(b)s + %(w)s * %(n)s) GROUP BY 1",
                {"b": begin, "w": WINDOW_S, "n": windows},
            ).fetchall():
                counts[r["w"]] = r["n"]
            rates = [n / WINDOW_S for n in counts.values()]
            result.steady_s = windows * WINDOW_S
            result.mean_per_s = statistics.fmean(rates)
            result.window_min_per_s, result.window_max_per_s = min(rates), max(rates)
            worst = max(result.mean_per_s - min(rates), max(rates) - result.mean_per_s)
            result.spread_pct = 100 * worst / result.mean_per_s if result.mean_per_s else None
    delays = sorted(delays)
    if delays:
        result.delay_median_s = delays[len(delays) // 2]
        result.delay_p95_s = delays[min(len(delays) - 1, int(len(delays) * 0.95))]
    result.delay_unseen = max(0, result.pings_stored - len(delays))


def as_json(result: FleetResult) -> dict[str, Any]:
    return dataclasses.asdict(result) | {"stored_once": result.stored_once}
