"""The HTTP API (FastAPI): status, health, triggered and dry-run cycles, site stats, Prometheus
metrics, the OpenAPI document (/openapi.json) and its interactive docs (/docs, from packaged
assets: no CDN).

Every database call of a request runs in a worker thread, one hop per request, bounded by a
CapacityLimiter: the event loop never waits on PostgreSQL. POST endpoints need ``Authorization:
Bearer <UPTIMELAB_API_TOKEN>`` (see :mod:`.auth`); errors are JSON of one shape (see
:mod:`.errors`), never a traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Collection
from typing import Annotated, Any, TypeVar

import trio
from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse
from fastapi_offline import FastAPIOffline
from prometheus_client.exposition import choose_encoder
from starlette.exceptions import HTTPException

from .._version import __version__
from ..collector import Collector, QuietReporter
from ..config import Settings
from ..domain.redaction import redact
from ..domain.state import HealthReport, Status, StoreState
from ..errors import StoreError
from ..ops.health import health as health_report
from ..ops.health import local_state, spool_backlog
from ..ops.health import status as status_report
from ..storage.database import Database
from ..storage.queries import site_metrics
from ..storage.regions import (
    LOCATION_SORTABLE,
    MAX_QUORUM,
    QUORUM_SORTABLE,
    LocationStats,
    QuorumStats,
    location_stats,
    quorum_stats,
)
from ..storage.site_stats import (
    SORTABLE,
    compute_site_stats,
    get_site_stats,
    refresh_stats,
    site_stats,
    stats_records,
)
from ..storage.sites import get_site, list_sites
from ..storage.windows import POLICIES
from .auth import BearerToken, BodyCap, HeadAsGet, HostGuard
from .errors import error_responses, install_error_handlers
from .incidents import add_routes as add_incident_routes
from .inputs import dry_run_request, each_query_value_once, sites_to_test
from .metrics import AppReporter, Metrics, Scrape
from .schemas import CycleStarted, DryRun, DryRunRequest, PingOutcome, SiteStatsRecord

log = logging.getLogger("uptimelab.api")
T = TypeVar("T")

DB_THREADS = 8
"""Requests that may wait on the database at once (worker threads); others queue."""

SiteId = Annotated[uuid.UUID, Path(alias="siteId", description="The site's id.")]
_SORTS = [*SORTABLE, *(f"-{c}" for c in SORTABLE)]


class _Api:
    """The endpoints of one app and what they share."""

    def __init__(self, settings: Settings, db: Database, collector: Collector) -> None:
        self.settings = settings
        self.db = db
        self.collector = collector
        self.metrics = Metrics()
        self.reporter = AppReporter(self.metrics, collector.reporter)
        collector.reporter = self.reporter
        self.token = BearerToken(settings.api_token)
        self._limiter = trio.CapacityLimiter(DB_THREADS)
        self._nursery: trio.Nursery | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Holds the nursery of triggered cycles; at shutdown the collector stops and its
        cycle stores what it probed."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                yield
            finally:
                self._nursery = None
                self.collector.stop()

    async def _in_thread(self, fn: Callable[[], T]) -> T:
        return await trio.to_thread.run_sync(fn, limiter=self._limiter)

    # -- monitoring ----------------------------------------------------------------------------

    async def status(self) -> Status:
        """Configuration, cycles and lateness, collectors, sites, breaker, spool and errors
        (`uptimelab status`)."""
        return await self._in_thread(lambda: status_report(self.settings, db=self.db))

    async def health(self, response: Response) -> HealthReport:
        """Health checks (`uptimelab health`: database, last cycle or round, collectors'
        heartbeats, breaker, spool): 200 when healthy or degraded, 503 when unhealthy."""
        report = await self._in_thread(lambda: health_report(self.settings, db=self.db))
        if report.status == "unhealthy":
            response.status_code = 503
        return report

    async def trigger(self) -> CycleStarted:
        """Start a cycle now; GET /monitoring/status shows how it went."""
        nursery = self._nursery
        if nursery is None or self.collector.stopping:
            raise HTTPException(503, "the server is not running or is shutting down")
        cycle_id, started_at = await nursery.start(self._triggered_cycle)
        return CycleStarted(
            cycle_id=cycle_id,
            started_at=started_at,
            message="the cycle started; GET /monitoring/status shows how it went",
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

    async def dry_run(
        self, wanted: Annotated[DryRunRequest | None, Depends(dry_run_request)]
    ) -> DryRun:
        """A dry-run cycle: probe and return each result, store nothing."""
        names = None if wanted is None else wanted.sites
        sites = await self._in_thread(lambda: sites_to_test(self.db, names))
        by_id = {s.id: s for s in sites}
        probe = Collector(
            self.db, self.settings, verify=self.collector.verify, reporter=QuietReporter()
        )
        summary = await probe.cycle(dry_run=True, sites=sites)
        results = [
            PingOutcome(
                site_id=p.site_id,
                name=by_id[p.site_id].name,
                url=redact(by_id[p.site_id].url),
                **{f: getattr(p, f) for f in _PING_FIELDS},
            )
            for p in summary.pings
        ]
        return DryRun(
            cycle_id=summary.id,
            started_at=summary.started_at,
            finished_at=summary.finished_at,
            duration_ms=summary.duration_ms,
            sites_checked=summary.sites_checked,
            up=summary.up,
            down=summary.down,
            by_category=summary.by_category,
            interrupted=summary.interrupted,
            results=sorted(results, key=lambda r: r.url),
        )

    # -- stats ---------------------------------------------------------------------------------

    async def all_site_stats(
        self,
        sort: Annotated[
            str,
            Query(
                description="Column to sort by, '-' first for descending.",
                json_schema_extra={"enum": _SORTS},
            ),
        ] = "uptime_24h",
        status: Annotated[
            str | None,
            Query(
                description="Only sites whose current status is this.",
                json_schema_extra={"enum": ["up", "down"]},
            ),
        ] = None,
        policy: Annotated[
            str | None,
            Query(
                description="Compute now under this uptime policy instead of reading the "
                "stored table (UPTIME_POLICY).",
                json_schema_extra={"enum": list(POLICIES)},
            ),
        ] = None,
    ) -> list[dict[str, Any]]:
        """Every site's stats, worst 24 h uptime first (`uptimelab stats [--policy]`)."""

        def read() -> list[dict[str, Any]]:
            if policy is None:
                rows = site_stats(sort=sort, status=status, db=self.db)
            else:
                rows = compute_site_stats(policy=policy, sort=sort, status=status, db=self.db)
            return stats_records(rows, list_sites(db=self.db))

        return await self._in_thread(read)

    async def per_location_stats(
        self,
        location: Annotated[
            str | None,
            Query(description="Only this location (default: every one).", min_length=1),
        ] = None,
        sort: Annotated[
            str,
            Query(
                description="Column to sort by, '-' first for descending.",
                json_schema_extra={"enum": _both(LOCATION_SORTABLE)},
            ),
        ] = "uptime_24h",
    ) -> list[LocationStats]:
        """Per site and location: the stats from that location's pings alone, computed now
        (`uptimelab stats --location`)."""
        return await self._in_thread(lambda: location_stats(location, sort=sort, db=self.db))

    async def quorum_site_stats(
        self,
        quorum: Annotated[
            int | None,
            Query(
                description="K: the locations that must be down (default: the QUORUM setting, "
                "else a majority of those reporting; with fewer reporting, all of them).",
                ge=1,
                le=MAX_QUORUM,
            ),
        ] = None,
        sort: Annotated[
            str,
            Query(
                description="Column to sort by, '-' first for descending.",
                json_schema_extra={"enum": _both(QUORUM_SORTABLE)},
            ),
        ] = "uptime_24h",
    ) -> list[QuorumStats]:
        """Per site: the quorum verdict across locations now and its uptime over 1h, 24h and 7d
        (`uptimelab stats --quorum`)."""
        k = self.settings.quorum if quorum is None else quorum
        interval = self.settings.monitoring_interval_ms
        return await self._in_thread(
            lambda: quorum_stats(quorum=k, default_interval_ms=interval, sort=sort, db=self.db)
        )

    async def one_site_stats(self, site_id: SiteId) -> dict[str, Any]:
        """One site's stats."""
        return _found(site_id, await self._in_thread(lambda: _one_stats(self.db, site_id)))

    async def refresh_site_stats(self, site_id: SiteId) -> dict[str, Any]:
        """Recompute one site's stats now and return them."""

        def refresh() -> dict[str, Any] | None:
            refresh_stats(site_id, db=self.db)
            return _one_stats(self.db, site_id)

        return _found(site_id, await self._in_thread(refresh))

    # -- metrics -------------------------------------------------------------------------------

    async def prometheus(self, request: Request) -> Response:
        """Prometheus metrics: per site, per cycle, breaker and spool."""
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        live = self.collector.status()["store"]  # a writer in this process: its live state

        def scrape() -> bytes:
            # With the database away the per-site families are missing, and the breaker and
            # spool gauges (kept here) say why: that is when they matter most.
            try:
                sites: list[dict[str, Any]] | None = site_metrics(self.db)
            except StoreError:
                sites = None
            published, spool = local_state(self.settings, self.db)
            store = published.store if published is not None else None
            if live is not None:
                store = StoreState.model_validate(live)
            backlog = spool_backlog(spool, store)
            return encode(
                Scrape(self.metrics, sites or [], store, backlog, database_up=sites is not None)
            )

        body = await self._in_thread(scrape)
        return Response(body, headers={"Content-Type": content_type})


def _both(columns: Collection[str]) -> list[str]:
    return [*columns, *(f"-{c}" for c in columns)]


_PING_FIELDS = (
    "checked_at",
    "status",
    "status_code",
    "response_time_ms",
    "error_category",
    "error_message",
)


def _one_stats(db: Database, site_id: uuid.UUID) -> dict[str, Any] | None:
    """One site's stats as JSON, None when it has none yet; raises UnknownSiteError."""
    row = get_site_stats(site_id, db=db)
    return None if row is None else stats_records([row], [get_site(site_id, db=db)])[0]


def _found(site_id: uuid.UUID, row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        raise HTTPException(404, f"site {site_id} has no stats yet: it has not been pinged")
    return row


@dataclasses.dataclass(frozen=True)
class _Route:
    path: str
    method: str
    endpoint: Callable[..., Any]
    errors: tuple[int, ...]
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


def create_app(
    settings: Settings,
    db: Database,
    *,
    collector: Collector | None = None,
    allowed_hosts: Collection[str] | None = None,
) -> FastAPI:
    """The ASGI app of the HTTP API (FastAPI; run it on trio, e.g. by :func:`.server.serve`).

    ``collector`` runs the triggered cycles (default: a new one on ``db`` and ``settings``); its
    reporter is wrapped to feed the app's metrics, so give a collector to one app only; the
    app's shutdown stops it. ``settings.api_token`` is the bearer token of the POST endpoints;
    without one they answer 401. ``allowed_hosts``, when given, are the only Host header names
    answered. Each app has its own Prometheus registry.
    """
    api = _Api(settings, db, collector or Collector(db, settings))
    app = FastAPIOffline(
        title="uptimelab",
        version=__version__,
        description="Website uptime: the collector's status and health, per-site stats, "
        "Prometheus metrics. POST endpoints need a bearer token (UPTIMELAB_API_TOKEN).",
        docs_url="/docs",
        redoc_url=None,
        static_url="/docs/assets",
        # No badge from the public validator: the docs make no request beyond this server.
        swagger_ui_parameters={"validatorUrl": None},
        lifespan=api.lifespan,
    )
    authorized = [Depends(api.token)]
    metrics_content = {"text/plain": {"schema": {"type": "string"}}}
    metrics_content["application/openmetrics-text"] = metrics_content["text/plain"]
    routes = [
        _Route("/monitoring/status", "GET", api.status, ()),
        _Route(
            "/monitoring/health",
            "GET",
            api.health,
            (),
            {"responses": {503: {"model": HealthReport, "description": "Unhealthy"}}},
        ),
        _Route(
            "/monitoring/trigger",
            "POST",
            api.trigger,
            (401, 409, 503),
            {"status_code": 202, "dependencies": authorized},
        ),
        _Route(
            "/monitoring/test",
            "POST",
            api.dry_run,
            (401, 404, 409, 413, 422, 503),
            {
                "dependencies": authorized,
                # The body is read by dry_run_request (so that a body of null, or JSON nested
                # too deep, is 422 like any other invalid one); described here.
                "openapi_extra": {
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {"schema": DryRunRequest.model_json_schema()}
                        },
                    }
                },
            },
        ),
        _Route(
            "/site-stats",
            "GET",
            api.all_site_stats,
            (422, 503),
            {
                "response_model": list[SiteStatsRecord],
                "dependencies": [Depends(each_query_value_once)],
            },
        ),
        _Route(
            "/location-stats",
            "GET",
            api.per_location_stats,
            (422, 503),
            {
                "response_model": list[LocationStats],
                "dependencies": [Depends(each_query_value_once)],
            },
        ),
        _Route(
            "/quorum-stats",
            "GET",
            api.quorum_site_stats,
            (422, 503),
            {
                "response_model": list[QuorumStats],
                "dependencies": [Depends(each_query_value_once)],
            },
        ),
        _Route(
            "/site-stats/{siteId}",
            "GET",
            api.one_site_stats,
            (404, 422, 503),
            {"response_model": SiteStatsRecord},
        ),
        _Route(
            "/site-stats/{siteId}/refresh",
            "POST",
            api.refresh_site_stats,
            (401, 404, 422, 503),
            {"response_model": SiteStatsRecord, "dependencies": authorized},
        ),
        _Route(
            "/metrics",
            "GET",
            api.prometheus,
            (),
            {
                "response_class": PlainTextResponse,
                "responses": {200: {"content": metrics_content}},
            },
        ),
    ]
    for route in routes:
        extra = dict(route.extra)
        responses = {**error_responses(*route.errors), **extra.pop("responses", {})}
        app.add_api_route(
            route.path,
            route.endpoint,
            methods=[route.method],
            responses=responses,
            operation_id=route.endpoint.__name__,
            **extra,
        )
    add_incident_routes(app, db, api._in_thread, authorized)
    install_error_handlers(app)
    # The last one added is the outermost: the host guard, then the body cap, then HEAD.
    app.add_middleware(HeadAsGet)
    app.add_middleware(BodyCap)
    if allowed_hosts is not None:
        app.add_middleware(HostGuard, allowed=allowed_hosts)
    return app
