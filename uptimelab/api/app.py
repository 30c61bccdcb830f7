"""The HTTP API (FastAPI): status, health, triggered and dry-run cycles (:mod:`.monitoring`), site
stats, Prometheus metrics, incidents and maintenance windows (:mod:`.incidents`), the OpenAPI
document (/openapi.json) and its interactive docs (/docs, from packaged assets: no CDN).

Every database call of a request runs in a worker thread, one hop per request, bounded by a
CapacityLimiter: the event loop never waits on PostgreSQL. POST endpoints need ``Authorization:
Bearer <UPTIMELAB_API_TOKEN>`` (see :mod:`.auth`); errors are JSON of one shape (see
:mod:`.errors`), never a traceback.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Collection
from typing import Annotated, Any, TypeVar

import trio
from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse
from fastapi_offline import FastAPIOffline
from prometheus_client.exposition import choose_encoder
from starlette.exceptions import HTTPException

from .._version import __version__
from ..collector import Collector
from ..config import Settings
from ..domain.state import StoreState
from ..errors import StoreError
from ..ops.health import local_state, spool_backlog
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
from .inputs import each_query_value_once
from .metrics import AppReporter, Metrics, Scrape
from .monitoring import Monitoring
from .monitoring import add_routes as add_monitoring_routes
from .schemas import SiteStatsRecord

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

    async def _in_thread(self, fn: Callable[[], T]) -> T:
        return await trio.to_thread.run_sync(fn, limiter=self._limiter)

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
    monitoring = Monitoring(settings, db, api.collector, api.reporter, api._in_thread)
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
        lifespan=monitoring.lifespan,
    )
    authorized = [Depends(api.token)]
    metrics_content = {"text/plain": {"schema": {"type": "string"}}}
    metrics_content["application/openmetrics-text"] = metrics_content["text/plain"]
    routes = [
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
    add_monitoring_routes(app, monitoring, authorized)
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
