"""Prometheus metrics of one app: its cycles (counted as they finish), and per site, breaker and
spool (read at each scrape)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from ..collector import CycleSummary, Reporter
from ..domain.pings import ERROR_CATEGORIES, PingResult
from ..domain.redaction import redact
from ..domain.sites import Probeable
from ..domain.state import SpoolBacklog, StoreState

CYCLE_BUCKETS_S = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
BREAKER_STATES = ("closed", "open", "half-open")
WINDOWS = ("1h", "24h", "7d")
# Our phases under blackbox_exporter's names for them (prober/http.go).
BLACKBOX_PHASES = {
    "dns": "resolve",
    "connect": "connect",
    "tls": "tls",
    "ttfb": "processing",
    "transfer": "transfer",
}


class Metrics:
    """The process-local metrics of one app, fed by the cycles its collector runs."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.cycle_duration = Histogram(
            "uptimelab_cycle_duration_seconds",
            "Duration of the stored cycles run by this process.",
            buckets=CYCLE_BUCKETS_S,
            registry=self.registry,
        )
        self.pings = Counter(
            "uptimelab_pings",
            "Pings taken by this process's collector, by status and error category.",
            ["status", "category"],
            registry=self.registry,
        )
        # Every series exists from the start, so that rate() sees the first increase.
        self.pings.labels("up", "none")
        for category in ERROR_CATEGORIES:
            self.pings.labels("down", category)

    def observe(self, summary: CycleSummary) -> None:
        """Count one finished cycle or round; dry runs are not counted."""
        if not summary.dry_run:
            self.cycle_duration.observe(summary.duration_ms / 1000)

    def count(self, ping: PingResult) -> None:
        """Count one ping as it is taken (a collector on its schedule stores them as they come;
        dry runs run with a reporter of their own and are not counted)."""
        self.pings.labels(ping.status, ping.error_category or "none").inc()


class AppReporter:
    """The collector's reporter in an app: feeds :class:`Metrics`, wakes the request that
    triggered the cycle once it has started, and passes every event on to ``inner``."""

    def __init__(self, metrics: Metrics, inner: Reporter) -> None:
        self.metrics = metrics
        self.inner = inner
        # Callbacks of triggers waiting for their cycle to start. Only the task holding the cycle
        # lock can have one here: a trigger that finds the lock taken removes its callback
        # before its next checkpoint.
        self.start_waiters: list[Callable[[], None]] = []

    def cycle_started(self, number: int, sites: int | None) -> None:
        self.inner.cycle_started(number, sites)
        waiters, self.start_waiters = self.start_waiters, []
        for wake in waiters:
            wake()

    def ping_done(self, site: Probeable, ping: PingResult) -> None:
        self.metrics.count(ping)
        self.inner.ping_done(site, ping)

    def cycle_finished(self, summary: CycleSummary) -> None:
        self.metrics.observe(summary)
        self.inner.cycle_finished(summary)

    def note(self, message: str) -> None:
        self.inner.note(message)


class Scrape:
    """One scrape: the process-local metrics, then the per-site, breaker and spool families
    read for it. ``sites`` are rows of :func:`uptimelab.storage.queries.site_metrics`."""

    def __init__(
        self,
        metrics: Metrics,
        sites: Sequence[Mapping[str, Any]],
        store: StoreState | None,
        spool: SpoolBacklog,
        *,
        database_up: bool = True,
    ) -> None:
        self.metrics = metrics
        self.sites = sites
        self.store = store
        self.spool = spool
        self.database_up = database_up

    def collect(self) -> Iterable[Metric]:
        yield from self.metrics.registry.collect()
        yield GaugeMetricFamily(
            "uptimelab_database_up",
            "Whether the database answered this scrape (1) or not (0: no per-site families).",
            float(self.database_up),
        )
        yield from self._sites()
        breaker = None if self.store is None else self.store.breaker
        if breaker is not None:
            family = GaugeMetricFamily(
                "uptimelab_breaker_state",
                "The database circuit breaker's state (1 for the current one).",
                None,
                ["state"],
            )
            for state in BREAKER_STATES:
                family.add_metric([state], 1.0 if breaker.state == state else 0.0)
            yield family
        spool = self.spool
        yield GaugeMetricFamily(
            "uptimelab_spool_segments", "Cycles waiting in the spool.", spool.segments
        )
        yield GaugeMetricFamily("uptimelab_spool_bytes", "Bytes waiting in the spool.", spool.bytes)
        yield GaugeMetricFamily(
            "uptimelab_spool_full", "Whether the spool reached its cap (1).", float(spool.full)
        )
        yield GaugeMetricFamily(
            "uptimelab_spool_dropped_pings",
            "Pings dropped because the spool was full, since the collector started.",
            spool.dropped_pings,
        )

    def _sites(self) -> Iterable[Metric]:
        labels = ["site_id", "name", "url"]
        success = GaugeMetricFamily(
            "probe_success",
            "Whether the latest ping of the site was up (1) or down (0).",
            None,
            labels,
        )
        duration = GaugeMetricFamily(
            "probe_duration_seconds",
            "Response time of the latest ping of the site (until the failure for a down ping).",
            None,
            labels,
        )
        checked = GaugeMetricFamily(
            "uptimelab_site_last_checked_timestamp_seconds",
            "When the latest ping of the site was taken (Unix time).",
            None,
            labels,
        )
        uptime = GaugeMetricFamily(
            "uptimelab_uptime_ratio",
            "Share of up pings in the window (only windows with pings).",
            None,
            [*labels, "window"],
        )
        phases = GaugeMetricFamily(
            "probe_http_duration_seconds",
            "Duration of each phase of the latest ping of the site, as blackbox_exporter names "
            "them (0 for a phase that did not happen).",
            None,
            [*labels, "phase"],
        )
        expiry = GaugeMetricFamily(
            "probe_ssl_earliest_cert_expiry",
            "When the site's latest certificate seen expires (Unix time).",
            None,
            labels,
        )
        for row in self.sites:
            site = [str(row["site_id"]), row["name"], redact(row["url"])]
            success.add_metric(site, 1.0 if row["current_status"] == "up" else 0.0)
            checked.add_metric(site, row["last_checked"].timestamp())
            if row["response_time_ms"] is not None:
                duration.add_metric(site, row["response_time_ms"] / 1000)
            timed = {ours: row.get(f"{ours}_ms") for ours in BLACKBOX_PHASES}
            if any(ms is not None for ms in timed.values()):  # none on a ping before 008
                for ours, theirs in BLACKBOX_PHASES.items():
                    phases.add_metric([*site, theirs], (timed[ours] or 0) / 1000)
            if row.get("cert_expires_at") is not None:
                expiry.add_metric(site, row["cert_expires_at"].timestamp())
            for window in WINDOWS:
                if row[f"pings_{window}"]:
                    uptime.add_metric([*site, window], row[f"uptime_{window}"] / 100)
        return (success, duration, phases, checked, uptime, expiry)
