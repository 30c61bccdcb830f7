"""The HTTP API: the seed's endpoints and Prometheus metrics, served by hypercorn on trio.

The shape of ``uptimelab serve --collect``::

    serve                      one nursery: a signal watcher (or a stop event) and the two below
    ├── Collector.run          the schedule (only with collect=True)
    └── hypercorn's trio worker
        └── the app's lifespan a nursery for the cycles that POST /monitoring/trigger starts

The first SIGINT or SIGTERM stops the collector (its cycle stores what it probed) and asks the
server to finish its requests; a second one cancels everything. Every database call of a request
runs in a worker thread, one hop per request, bounded by a CapacityLimiter: the event loop never
waits on PostgreSQL.

POST endpoints need ``Authorization: Bearer <UPTIMELAB_API_TOKEN>``; with no token set they answer
401, and :func:`serve` listens on loopback addresses only. Errors are JSON
(``{"status": ..., "error": ..., "message": ...}``), never a traceback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import http
import ipaddress
import json
import logging
import os
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import psycopg
import trio
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector as MetricsSource
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..collector import Collector, CycleSummary, QuietReporter, Reporter
from ..collector.state import read_collector_state
from ..config import Settings
from ..domain.pings import ERROR_CATEGORIES, PingResult
from ..domain.redaction import redact
from ..domain.sites import MAX_URL_LENGTH, Probeable
from ..errors import (
    ConfigError,
    CycleInProgressError,
    SiteError,
    StoreError,
    UnknownSiteError,
    UptimelabError,
    lone_exception,
)
from ..ops.health import health as health_report
from ..ops.health import status as status_report
from ..storage.database import Database
from ..storage.models import Site
from ..storage.site_stats import SORTABLE, get_site_stats, refresh_stats, site_stats, stats_records
from ..storage.sites import get_site, list_sites
from ..storage.spool import Spool

log = logging.getLogger("uptimelab.api")

API_TOKEN_ENV = "UPTIMELAB_API_TOKEN"
MIN_TOKEN_LENGTH = 16
MAX_BODY_BYTES = 64 * 1024
"""Largest request body (bytes) the API reads; a longer one is answered 413."""
MAX_TEST_SITES = 100
"""Most sites one POST /monitoring/test may name."""
DB_THREADS = 8
"""Requests that may wait on the database at once (worker threads); others queue."""
GRACEFUL_TIMEOUT_S = 5.0
LOOPBACK_NAMES = ("localhost",)
CYCLE_BUCKETS_S = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
BREAKER_STATES = ("closed", "open", "half-open")
WINDOWS = ("1h", "24h", "7d")


# -- configuration -----------------------------------------------------------------------------


def api_token(environ: Mapping[str, str] | None = None) -> str | None:
    """The bearer token of the POST endpoints: ``UPTIMELAB_API_TOKEN``; None when unset or empty.

    Raises ConfigError for a token shorter than 16 characters.
    """
    token = (os.environ if environ is None else environ).get(API_TOKEN_ENV, "").strip()
    if not token:
        return None
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"{API_TOKEN_ENV}: the token must be at least {MIN_TOKEN_LENGTH} characters long"
        )
    return token


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP address or ``localhost``) only accepts connections from this
    machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, port: int, token: str | None) -> None:
    """Raise ConfigError unless the API may listen on ``host``:``port`` (0 picks a free port):
    a non-loopback address needs a token."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port={port}: use a port from 0 to 65535 (0 picks a free one)")
    if not host.strip():
        raise ConfigError("--host='': give an address to listen on, such as 127.0.0.1")
    if not is_loopback(host) and token is None:
        raise ConfigError(
            f"--host={host!r}: set {API_TOKEN_ENV} to listen on an address other machines "
            "can reach (the POST endpoints need it)"
        )


# -- metrics -----------------------------------------------------------------------------------


class Metrics:
    """The process-local metrics of one app, fed by the cycles its collector runs.

    Per-site metrics, breaker and spool are read at each scrape instead (see ``/metrics``).
    """

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
            "Pings of the stored cycles run by this process, by status and error category.",
            ["status", "category"],
            registry=self.registry,
        )
        # Every series exists from the start, so that rate() sees the first increase.
        self.pings.labels("up", "none")
        for category in ERROR_CATEGORIES:
            self.pings.labels("down", category)

    def observe(self, summary: CycleSummary) -> None:
        """Count one finished cycle; dry runs are not counted."""
        if summary.dry_run:
            return
        self.cycle_duration.observe(summary.duration_ms / 1000)
        for ping in summary.pings:
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

    def cycle_started(self, number: int, sites: int) -> None:
        self.inner.cycle_started(number, sites)
        waiters, self.start_waiters = self.start_waiters, []
        for wake in waiters:
            wake()

    def ping_done(self, site: Probeable, ping: PingResult) -> None:
        self.inner.ping_done(site, ping)

    def cycle_finished(self, summary: CycleSummary) -> None:
        self.metrics.observe(summary)
        self.inner.cycle_finished(summary)

    def note(self, message: str) -> None:
        self.inner.note(message)


_SITE_METRICS_SQL = """
SELECT s.id AS site_id, coalesce(s.name, '') AS name, s.url,
       ss.current_status, ss.last_checked,
       ss.uptime_1h, ss.uptime_24h, ss.uptime_7d, ss.pings_1h, ss.pings_24h, ss.pings_7d,
       latest.response_time_ms
  FROM site_stats AS ss
  JOIN sites AS s ON s.id = ss.site_id
  LEFT JOIN LATERAL (
        SELECT p.response_time_ms FROM pings AS p
         WHERE p.site_id = ss.site_id AND p.checked_at = ss.last_checked
         ORDER BY p.location COLLATE "C" DESC
         LIMIT 1) AS latest ON true
 WHERE s.is_active
 ORDER BY s.id
"""
# The latest ping is the one site_stats names (refreshed after every stored cycle): a primary
# key lookup per site, where "the newest ping of each site" would scan a window of pings.


class _Scrape:
    """One scrape: the process-local metrics, then the per-site, breaker and spool families
    read for this scrape."""

    def __init__(
        self,
        metrics: Metrics,
        sites: Sequence[Mapping[str, Any]],
        store: Mapping[str, Any] | None,
        spool: Mapping[str, Any],
    ) -> None:
        self.metrics = metrics
        self.sites = sites
        self.store = store
        self.spool = spool

    def collect(self) -> Iterable[Metric]:
        yield from self.metrics.registry.collect()
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
        for row in self.sites:
            site = [str(row["site_id"]), row["name"], redact(row["url"])]
            success.add_metric(site, 1.0 if row["current_status"] == "up" else 0.0)
            checked.add_metric(site, row["last_checked"].timestamp())
            if row["response_time_ms"] is not None:
                duration.add_metric(site, row["response_time_ms"] / 1000)
            for window in WINDOWS:
                if row[f"pings_{window}"]:
                    uptime.add_metric([*site, window], row[f"uptime_{window}"] / 100)
        yield from (success, duration, checked, uptime)

        breaker = (self.store or {}).get("breaker")
        if breaker:
            family = GaugeMetricFamily(
                "uptimelab_breaker_state",
                "The database circuit breaker's state (1 for the current one).",
                None,
                ["state"],
            )
            for state in BREAKER_STATES:
                family.add_metric([state], 1.0 if breaker.get("state") == state else 0.0)
            yield family
        spool = self.spool
        yield GaugeMetricFamily(
            "uptimelab_spool_segments", "Cycles waiting in the spool.", spool["segments"]
        )
        yield GaugeMetricFamily(
            "uptimelab_spool_bytes", "Bytes waiting in the spool.", spool["bytes"]
        )
        yield GaugeMetricFamily(
            "uptimelab_spool_full", "Whether the spool reached its cap (1).", float(spool["full"])
        )
        yield GaugeMetricFamily(
            "uptimelab_spool_dropped_pings",
            "Pings dropped because the spool was full, since the collector started.",
            spool["dropped_pings"],
        )


# -- errors and JSON ---------------------------------------------------------------------------


class _JSON(JSONResponse):
    """JSON as the CLI prints it: datetimes and ids as strings, ASCII only."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=str, separators=(",", ":")).encode()


def _error(status_code: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    body = {
        "status": status_code,
        "error": http.HTTPStatus(status_code).phrase,
        "message": message,
    }
    return _JSON(body, status_code=status_code, headers=headers)


def _invalid(message: str) -> HTTPException:
    return HTTPException(422, message)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, exc.detail, exc.headers)


async def _on_uptimelab_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, UnknownSiteError):
        return _error(404, str(exc))
    if isinstance(exc, ConfigError | SiteError):
        return _error(422, str(exc))
    if isinstance(exc, CycleInProgressError):
        return _error(409, str(exc))
    if isinstance(exc, StoreError):
        return _error(503, str(exc))
    log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    return await _on_unexpected(request, exc)


async def _on_database_error(request: Request, exc: Exception) -> Response:
    log.error(
        "database error in %s %s: %s",
        request.method,
        request.url.path,
        exc,
        extra={"component": "api", "category": type(exc).__name__},
    )
    return _error(503, "the database failed to answer; see the server's log")


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    # Starlette re-raises the exception after this answer, so the server logs its traceback.
    return _error(500, "internal error; see the server's log")


class _HostGuard:
    """Answers 400 to a request whose Host header is not one of ``allowed`` (protects a
    loopback-only API from DNS rebinding: a web page cannot reach it under its own name)."""

    def __init__(self, app: ASGIApp, allowed: Collection[str]) -> None:
        self.app = app
        self.allowed = frozenset(h.lower() for h in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                name = urlsplit("//" + Headers(scope=scope).get("host", "")).hostname
            except ValueError:
                name = None
            if name not in self.allowed:
                await _error(400, "this server does not answer for that Host header")(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)


# -- the app -----------------------------------------------------------------------------------


class _Api:
    """The endpoints of one app and what they share."""

    def __init__(
        self, settings: Settings, db: Database, collector: Collector, token: str | None
    ) -> None:
        self.settings = settings
        self.db = db
        self.collector = collector
        self.metrics = Metrics()
        self.reporter = AppReporter(self.metrics, collector.reporter)
        collector.reporter = self.reporter
        self._token_digest = None if token is None else _digest(token)
        self._limiter = trio.CapacityLimiter(DB_THREADS)
        self._nursery: trio.Nursery | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Holds the nursery of triggered cycles; at shutdown the collector stops and its
        cycle stores what it probed."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                yield
            finally:
                self._nursery = None
                self.collector.stop()

    async def _in_thread(self, fn: Callable[[], Any]) -> Any:
        return await trio.to_thread.run_sync(fn, limiter=self._limiter)

    def _authorize(self, request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="uptimelab"'}
        if self._token_digest is None:
            raise HTTPException(
                401, f"POST endpoints are disabled: the server has no {API_TOKEN_ENV}", challenge
            )
        if scheme.lower() != "bearer" or not given.strip():
            raise HTTPException(401, "send Authorization: Bearer <token>", challenge)
        # Digests of equal length, compared in constant time: neither the token nor its
        # length leaks through timing.
        if not hmac.compare_digest(_digest(given.strip()), self._token_digest):
            raise HTTPException(401, "wrong token", challenge)

    # -- monitoring ----------------------------------------------------------------------------

    async def status(self, request: Request) -> Response:
        report = await self._in_thread(lambda: status_report(self.settings))
        return _JSON(report)

    async def health(self, request: Request) -> Response:
        report = await self._in_thread(lambda: health_report(self.settings))
        return _JSON(report.as_dict(), status_code=503 if report.status == "unhealthy" else 200)

    async def trigger(self, request: Request) -> Response:
        self._authorize(request)
        nursery = self._nursery
        if nursery is None or self.collector.stopping:
            return _error(503, "the server is not running or is shutting down")
        cycle_id, started_at = await nursery.start(self._triggered_cycle)
        return _JSON(
            {
                "cycle_id": str(cycle_id),
                "started_at": started_at.isoformat(),
                "message": "the cycle started; GET /monitoring/status shows how it went",
            },
            status_code=202,
        )

    async def _triggered_cycle(
        self,
        *,
        task_status: trio.TaskStatus[tuple[uuid.UUID, dt.datetime]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run one cycle; ``task_status.started`` gets its id and start as soon as it runs."""
        started = False

        def wake() -> None:
            nonlocal started
            started = True
            cycle_id, since = self.collector.current_cycle_id, self.collector.running_since
            assert cycle_id is not None
            assert since is not None
            task_status.started((cycle_id, since))

        self.reporter.start_waiters.append(wake)
        try:
            summary = await self.collector.cycle()
        except Exception as exc:
            if not started:
                raise  # to the request: 409, 503
            # The boundary of a background cycle: it must not take the server down.
            log.error(
                "the triggered cycle failed: %s",
                exc,
                exc_info=exc,
                extra={"component": "api", "category": type(exc).__name__},
            )
        else:
            if not started:
                task_status.started((summary.id, summary.started_at))
        finally:
            with contextlib.suppress(ValueError):
                self.reporter.start_waiters.remove(wake)

    async def dry_run(self, request: Request) -> Response:
        self._authorize(request)
        wanted = _test_request(await _read_json(request))
        sites = await self._in_thread(lambda: _sites_to_test(self.db, wanted))
        by_id = {s.id: s for s in sites}
        probe = Collector(
            self.db, self.settings, verify=self.collector.verify, reporter=QuietReporter()
        )
        summary = await probe.cycle(dry_run=True, sites=sites)
        results = sorted(
            (_ping_json(p, by_id[p.site_id]) for p in summary.pings), key=lambda r: r["url"]
        )
        return _JSON(
            {
                "cycle_id": str(summary.id),
                "started_at": summary.started_at.isoformat(),
                "finished_at": summary.finished_at.isoformat(),
                "duration_ms": summary.duration_ms,
                "sites_checked": summary.sites_checked,
                "up": summary.up,
                "down": summary.down,
                "by_category": summary.by_category,
                "interrupted": summary.interrupted,
                "results": results,
            }
        )

    # -- stats ---------------------------------------------------------------------------------

    async def all_site_stats(self, request: Request) -> Response:
        query = _single_values(request, ("sort", "status"))
        sort = query.get("sort", "uptime_24h")
        wanted_status = query.get("status")
        if sort.removeprefix("-") not in SORTABLE:
            raise _invalid(
                f"sort={sort!r}: sort by one of {', '.join(SORTABLE)} ('-' first for descending)"
            )
        if wanted_status not in (None, "up", "down"):
            raise _invalid(f"status={wanted_status!r}: use up or down")

        def read() -> list[dict[str, Any]]:
            rows = site_stats(sort=sort, status=wanted_status, db=self.db)
            return stats_records(rows, list_sites(db=self.db))

        return _JSON(await self._in_thread(read))

    async def one_site_stats(self, request: Request) -> Response:
        site_id = _site_id(request)

        def read() -> dict[str, Any] | None:
            return _one_stats_json(self.db, site_id)

        return _one_stats(site_id, await self._in_thread(read))

    async def refresh_site_stats(self, request: Request) -> Response:
        self._authorize(request)
        site_id = _site_id(request)

        def refresh() -> dict[str, Any] | None:
            refresh_stats(site_id, db=self.db)
            return _one_stats_json(self.db, site_id)

        return _one_stats(site_id, await self._in_thread(refresh))

    # -- metrics and schema --------------------------------------------------------------------

    async def prometheus(self, request: Request) -> Response:
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        live = self.collector.status()["store"]  # a writer in this process: its live state

        def scrape() -> bytes:
            with self.db.connect() as conn:
                sites = conn.execute(_SITE_METRICS_SQL).fetchall()
            store = live
            if store is None:
                store = (read_collector_state(self.settings.data_dir) or {}).get("store")
            spool = Spool(
                self.settings.data_dir / "spool", max_bytes=self.settings.spool_max_bytes
            ).backlog()
            known = (store or {}).get("spool") or {}
            spool["full"] = bool(known.get("full", False))
            spool["dropped_pings"] = int(known.get("dropped_pings", 0))
            source: MetricsSource = _Scrape(self.metrics, sites, store, spool)
            return encode(source)

        body: bytes = await self._in_thread(scrape)
        return Response(body, headers={"Content-Type": content_type})

    async def openapi(self, request: Request) -> Response:
        return _JSON(openapi_document())


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _site_id(request: Request) -> uuid.UUID:
    raw = request.path_params["siteId"]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise _invalid(f"siteId={raw[:80]!r}: a site id is a UUID") from None


def _single_values(request: Request, names: Sequence[str]) -> dict[str, str]:
    """The query parameters ``names``, each given at most once (others are ignored)."""
    out = {}
    for name in names:
        values = request.query_params.getlist(name)
        if len(values) > 1:
            raise _invalid(f"{name}: give it once")
        if values:
            out[name] = values[0]
    return out


_EMPTY = object()


async def _read_json(request: Request) -> Any:
    """The request body as JSON, ``_EMPTY`` when there is none. 413 above MAX_BODY_BYTES, 422
    for anything that is not JSON."""
    body = bytearray()
    async with contextlib.aclosing(request.stream()) as chunks:
        async for chunk in chunks:
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise HTTPException(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    if not body.strip():
        return _EMPTY
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise _invalid("the body is not valid JSON") from None


def _test_request(body: Any) -> list[str] | None:
    """The sites a dry run should probe (ids or URLs), or None for every active site."""
    if body is _EMPTY:
        return None
    if not isinstance(body, dict):
        raise _invalid('the body must be a JSON object such as {"sites": ["<id or URL>"]}')
    unknown = sorted(set(body) - {"sites"})
    if unknown:
        shown = ", ".join(map(repr, unknown))[:200]
        raise _invalid(f"unknown field(s) {shown}: the body takes 'sites'")
    if "sites" not in body:
        return None
    sites = body["sites"]
    if (
        not isinstance(sites, list)
        or not 1 <= len(sites) <= MAX_TEST_SITES
        or not all(isinstance(s, str) and 1 <= len(s) <= MAX_URL_LENGTH for s in sites)
    ):
        raise _invalid(f"sites: a list of 1 to {MAX_TEST_SITES} site ids or URLs")
    return sites


def _sites_to_test(db: Database, wanted: list[str] | None) -> list[Site]:
    if wanted is None:
        return list_sites(active=True, db=db)
    known = list_sites(db=db)
    by_key: dict[str, Site] = {s.url: s for s in known}
    by_key.update({str(s.id): s for s in known})
    chosen: dict[uuid.UUID, Site] = {}
    for key in wanted:
        with contextlib.suppress(ValueError):
            key = str(uuid.UUID(key))
        site = by_key.get(key)
        if site is None:
            shown = redact(key if len(key) <= 120 else key[:117] + "...")
            raise UnknownSiteError(f"no site with id or URL {shown!r}")
        chosen[site.id] = site
    return list(chosen.values())


def _ping_json(ping: PingResult, site: Site) -> dict[str, Any]:
    return {
        "site_id": str(site.id),
        "name": site.name,
        "url": redact(site.url),
        "checked_at": ping.checked_at.isoformat(),
        "status": ping.status,
        "status_code": ping.status_code,
        "response_time_ms": ping.response_time_ms,
        "error_category": ping.error_category,
        "error_message": ping.error_message,
    }


def _one_stats_json(db: Database, site_id: uuid.UUID) -> dict[str, Any] | None:
    """One site's stats as JSON, None when it has none yet; raises UnknownSiteError."""
    row = get_site_stats(site_id, db=db)
    return None if row is None else stats_records([row], [get_site(site_id, db=db)])[0]


def _one_stats(site_id: uuid.UUID, row: dict[str, Any] | None) -> Response:
    if row is None:
        return _error(404, f"site {site_id} has no stats yet: it has not been pinged")
    return _JSON(row)


def create_app(
    settings: Settings,
    db: Database,
    *,
    collector: Collector | None = None,
    token: str | None = None,
    allowed_hosts: Collection[str] | None = None,
) -> Starlette:
    """The ASGI app of the HTTP API (Starlette; run it on trio, e.g. by :func:`serve`).

    ``collector`` runs the triggered cycles (default: a new one on ``db`` and ``settings``); its
    reporter is wrapped to feed the app's metrics, so give a collector to one app only; the
    app's shutdown stops it. ``token`` is the bearer token of the POST endpoints (see
    :func:`api_token`); without one they answer 401. ``allowed_hosts``, when given, are the only
    Host header names answered. Each app has its own Prometheus registry.
    """
    api = _Api(settings, db, collector or Collector(db, settings), token)
    routes = [
        Route("/monitoring/status", api.status, methods=["GET"]),
        Route("/monitoring/health", api.health, methods=["GET"]),
        Route("/monitoring/trigger", api.trigger, methods=["POST"]),
        Route("/monitoring/test", api.dry_run, methods=["POST"]),
        Route("/site-stats", api.all_site_stats, methods=["GET"]),
        Route("/site-stats/{siteId}", api.one_site_stats, methods=["GET"]),
        Route("/site-stats/{siteId}/refresh", api.refresh_site_stats, methods=["POST"]),
        Route("/metrics", api.prometheus, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
    ]
    middleware = []
    if allowed_hosts is not None:
        middleware.append(Middleware(_HostGuard, allowed=allowed_hosts))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            HTTPException: _on_http_exception,
            UptimelabError: _on_uptimelab_error,
            psycopg.Error: _on_database_error,
            Exception: _on_unexpected,
        },
        lifespan=api.lifespan,
    )
    app.state.api = api
    return app


# -- serving -----------------------------------------------------------------------------------


async def serve(
    settings: Settings,
    db: Database,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    collect: bool = False,
    token: str | None = None,
    reporter: Reporter | None = None,
    stop: trio.Event | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the API on ``host``:``port`` (0 picks a free port) with hypercorn on trio; with
    ``collect``, run the collector on its schedule in the same nursery (``reporter`` is its
    reporter).

    Runs until ``stop`` is set or, with no ``stop`` given, until SIGINT or SIGTERM (main thread
    only); then the collector's cycle stores what it probed and the server finishes its
    requests. A second signal cancels at once. ``task_status.started`` gets the URLs served.

    Raises ConfigError for an address it may not or cannot listen on, and what the collector
    raises (StoreError).
    """
    check_bind(host, port, token)
    import hypercorn.config
    import hypercorn.trio

    collector = Collector(db, settings, reporter=reporter)
    allowed = None
    if is_loopback(host):
        allowed = {"127.0.0.1", "::1", *LOOPBACK_NAMES, host.strip("[]")}
    # Starlette is an ASGI 3 app; hypercorn's own protocol types do not name it.
    app: Any = create_app(settings, db, collector=collector, token=token, allowed_hosts=allowed)
    config = hypercorn.config.Config()
    config.bind = [f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = GRACEFUL_TIMEOUT_S
    config.accesslog = logging.getLogger("uptimelab.api.access")
    config.errorlog = logging.getLogger("uptimelab.api.server")
    shutdown = trio.Event()

    def stop_gracefully() -> None:
        collector.stop()
        shutdown.set()

    def on_signal(name: str) -> None:
        cycle = " after the cycle stores what it probed" if collect else ""
        collector.reporter.note(f"{name}: stopping{cycle}")
        stop_gracefully()

    bound = False
    try:
        async with trio.open_nursery() as nursery:
            if stop is None:
                nursery.start_soon(_stop_on_signals, on_signal, nursery.cancel_scope)
            else:
                nursery.start_soon(_stop_when_set, stop, stop_gracefully)
            async with trio.open_nursery() as work:
                if collect:
                    work.start_soon(collector.run)
                urls = await work.start(
                    partial(hypercorn.trio.serve, app, config, shutdown_trigger=shutdown.wait)
                )
                bound = True
                task_status.started(urls)
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        only = lone_exception(group)
        if isinstance(only, OSError) and not bound:
            raise ConfigError(f"cannot listen on {host}:{port}: {only.strerror or only}") from only
        if isinstance(only, UptimelabError):
            raise only from None
        raise


async def _stop_on_signals(on_signal: Callable[[str], None], scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        first = True
        async for signum in signals:
            if not first:
                scope.cancel()
                return
            first = False
            on_signal(signal.Signals(signum).name)


async def _stop_when_set(stop: trio.Event, stop_gracefully: Callable[[], None]) -> None:
    await stop.wait()
    stop_gracefully()


# -- the OpenAPI document ----------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_content(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {
        str(code): {"description": http.HTTPStatus(code).phrase, **_json_content(_ref("Error"))}
        for code in codes
    }


_NULLABLE_STRING = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of the endpoints (served at /openapi.json)."""
    from .. import __version__

    site_id = {
        "name": "siteId",
        "in": "path",
        "required": True,
        "description": "The site's id.",
        "schema": {"type": "string", "format": "uuid"},
    }
    sorts = [*SORTABLE, *(f"-{c}" for c in SORTABLE)]
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    stats_properties: dict[str, Any] = {
        "name": _NULLABLE_STRING,
        "url": _NULLABLE_STRING,
        "site_id": {"type": "string", "format": "uuid"},
        "current_status": {"type": "string", "enum": ["up", "down"]},
        "last_checked": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    }
    for window in WINDOWS:
        stats_properties[f"uptime_{window}"] = {"type": "number", "minimum": 0, "maximum": 100}
        stats_properties[f"avg_response_time_{window}"] = {"type": "integer", "minimum": 0}
        stats_properties[f"pings_{window}"] = {"type": "integer", "minimum": 0}
    ping_properties: dict[str, Any] = {
        "site_id": {"type": "string", "format": "uuid"},
        "name": _NULLABLE_STRING,
        "url": {"type": "string"},
        "checked_at": {"type": "string", "format": "date-time"},
        "status": {"type": "string", "enum": ["up", "down"]},
        "status_code": _NULLABLE_INT,
        "response_time_ms": _NULLABLE_INT,
        "error_category": {"type": ["string", "null"], "enum": [*ERROR_CATEGORIES, None]},
        "error_message": _NULLABLE_STRING,
    }
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["status", "error", "message"],
            "properties": {
                "status": {"type": "integer"},
                "error": {"type": "string"},
                "message": {"type": "string"},
            },
        },
        "Status": {
            "type": "object",
            "description": "What `uptimelab status --json` prints.",
            "required": ["config", "database", "collector", "breaker", "spool", "errors_24h"],
            "properties": {
                "config": {"type": "object"},
                "database": {
                    "type": "object",
                    "required": ["reachable"],
                    "properties": {"reachable": {"type": "boolean"}},
                },
                "collector": {"type": ["object", "null"]},
                "breaker": {"type": "object"},
                "spool": {
                    "type": "object",
                    "required": ["segments", "bytes"],
                    "properties": {
                        "segments": {"type": "integer", "minimum": 0},
                        "bytes": {"type": "integer", "minimum": 0},
                    },
                },
                "errors_24h": {
                    "type": "object",
                    "required": ["by_category", "by_component"],
                    "properties": {
                        "by_category": {"type": "object"},
                        "by_component": {"type": "object"},
                    },
                },
            },
        },
        "Health": {
            "type": "object",
            "description": "What `uptimelab health --json` prints.",
            "required": ["status", "checks"],
            "properties": {
                "status": {"type": "string", "enum": ["healthy", "degraded", "unhealthy"]},
                "checks": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "status", "detail", "seconds"],
                        "properties": {
                            "name": {"type": "string"},
                            "status": {
                                "type": "string",
                                "enum": ["healthy", "degraded", "unhealthy"],
                            },
                            "detail": {"type": "string"},
                            "seconds": {"type": "number", "minimum": 0},
                        },
                    },
                },
            },
        },
        "CycleStarted": {
            "type": "object",
            "required": ["cycle_id", "started_at", "message"],
            "properties": {
                "cycle_id": {"type": "string", "format": "uuid"},
                "started_at": {"type": "string", "format": "date-time"},
                "message": {"type": "string"},
            },
        },
        "DryRunRequest": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "sites": {
                    "type": "array",
                    "description": "Sites to probe (ids or URLs); default: every active site.",
                    "minItems": 1,
                    "maxItems": MAX_TEST_SITES,
                    "items": {"type": "string", "minLength": 1, "maxLength": MAX_URL_LENGTH},
                }
            },
        },
        "DryRun": {
            "type": "object",
            "required": [
                "cycle_id",
                "started_at",
                "finished_at",
                "duration_ms",
                "sites_checked",
                "up",
                "down",
                "by_category",
                "interrupted",
                "results",
            ],
            "properties": {
                "cycle_id": {"type": "string", "format": "uuid"},
                "started_at": {"type": "string", "format": "date-time"},
                "finished_at": {"type": "string", "format": "date-time"},
                "duration_ms": {"type": "integer", "minimum": 0},
                "sites_checked": {"type": "integer", "minimum": 0},
                "up": {"type": "integer", "minimum": 0},
                "down": {"type": "integer", "minimum": 0},
                "by_category": {
                    "type": "object",
                    "additionalProperties": {"type": "integer", "minimum": 1},
                },
                "interrupted": {"type": "boolean"},
                "results": {"type": "array", "items": _ref("PingResult")},
            },
        },
        "PingResult": {
            "type": "object",
            "required": list(ping_properties),
            "properties": ping_properties,
        },
        "SiteStats": {
            "type": "object",
            "required": list(stats_properties),
            "properties": stats_properties,
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "uptimelab",
            "version": __version__,
            "description": "Website uptime: the collector's status and health, per-site stats, "
            "Prometheus metrics. POST endpoints need a bearer token (UPTIMELAB_API_TOKEN).",
        },
        "paths": {
            "/monitoring/status": {
                "get": {
                    "summary": "Configuration, cycles, sites, breaker, spool and errors",
                    "operationId": "getStatus",
                    "responses": {"200": {"description": "OK", **_json_content(_ref("Status"))}},
                }
            },
            "/monitoring/health": {
                "get": {
                    "summary": "Health checks: 200 when healthy or degraded, 503 when unhealthy",
                    "operationId": "getHealth",
                    "responses": {
                        "200": {
                            "description": "Healthy or degraded",
                            **_json_content(_ref("Health")),
                        },
                        "503": {"description": "Unhealthy", **_json_content(_ref("Health"))},
                    },
                }
            },
            "/monitoring/trigger": {
                "post": {
                    "summary": "Start a cycle now",
                    "operationId": "triggerCycle",
                    "security": bearer,
                    "responses": {
                        "202": {"description": "Started", **_json_content(_ref("CycleStarted"))},
                        **_errors(401, 409, 503),
                    },
                }
            },
            "/monitoring/test": {
                "post": {
                    "summary": "A dry-run cycle: probe and return each result, store nothing",
                    "operationId": "testCycle",
                    "security": bearer,
                    "requestBody": {"required": False, **_json_content(_ref("DryRunRequest"))},
                    "responses": {
                        "200": {"description": "The results", **_json_content(_ref("DryRun"))},
                        **_errors(401, 404, 409, 413, 422, 503),
                    },
                }
            },
            "/site-stats": {
                "get": {
                    "summary": "Every site's stats",
                    "operationId": "listSiteStats",
                    "parameters": [
                        {
                            "name": "sort",
                            "in": "query",
                            "description": "Column to sort by, '-' first for descending.",
                            "schema": {"type": "string", "enum": sorts, "default": "uptime_24h"},
                        },
                        {
                            "name": "status",
                            "in": "query",
                            "description": "Only sites whose current status is this.",
                            "schema": {"type": "string", "enum": ["up", "down"]},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The stats",
                            **_json_content({"type": "array", "items": _ref("SiteStats")}),
                        },
                        **_errors(422, 503),
                    },
                }
            },
            "/site-stats/{siteId}": {
                "get": {
                    "summary": "One site's stats",
                    "operationId": "getSiteStats",
                    "parameters": [site_id],
                    "responses": {
                        "200": {"description": "The stats", **_json_content(_ref("SiteStats"))},
                        **_errors(404, 422, 503),
                    },
                }
            },
            "/site-stats/{siteId}/refresh": {
                "post": {
                    "summary": "Recompute one site's stats now and return them",
                    "operationId": "refreshSiteStats",
                    "security": bearer,
                    "parameters": [site_id],
                    "responses": {
                        "200": {"description": "The stats", **_json_content(_ref("SiteStats"))},
                        **_errors(401, 404, 422, 503),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "operationId": "getMetrics",
                    "responses": {
                        "200": {
                            "description": "The Prometheus text format",
                            "content": {
                                "text/plain": {"schema": {"type": "string"}},
                                "application/openmetrics-text": {"schema": {"type": "string"}},
                            },
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "getOpenApi",
                    "responses": {
                        "200": {"description": "OK", **_json_content({"type": "object"})}
                    },
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
