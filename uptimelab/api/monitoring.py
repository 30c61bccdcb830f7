"""The API's monitoring routes: ``GET /monitoring/status`` and ``GET /monitoring/health`` (what
``uptimelab status`` and ``uptimelab health`` say), ``POST /monitoring/trigger`` (a cycle now,
in the background) and ``POST /monitoring/test`` (a dry-run cycle); the POSTs need the bearer
token.

Routes of their own, added by :func:`uptimelab.api.app.create_app` through :func:`add_routes`;
the database is read in worker threads under the app's limiter, as every other endpoint does.
:class:`Monitoring` holds the nursery of triggered cycles for the app's lifespan.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Protocol, TypeVar

import trio
from fastapi import Depends, FastAPI, Response
from starlette.exceptions import HTTPException

from ..collector import Collector, QuietReporter
from ..config import Settings
from ..domain.redaction import redact
from ..domain.state import HealthReport, Status
from ..ops.health import health as health_report
from ..ops.health import status as status_report
from ..storage.database import Database
from .errors import error_responses
from .inputs import dry_run_request, sites_to_test
from .metrics import AppReporter
from .schemas import CycleStarted, DryRun, DryRunRequest, PingOutcome

log = logging.getLogger("uptimelab.api")
T = TypeVar("T")

_PING_FIELDS = (
    "checked_at",
    "status",
    "status_code",
    "response_time_ms",
    "error_category",
    "error_message",
)


class InThread(Protocol):
    """Runs a blocking call in a worker thread under the app's limiter."""

    async def __call__(self, fn: Callable[[], T]) -> T: ...


class Monitoring:
    """The monitoring endpoints of one app, and the nursery its triggered cycles run in."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        collector: Collector,
        reporter: AppReporter,
        in_thread: InThread,
    ) -> None:
        self.settings = settings
        self.db = db
        self.collector = collector
        self.reporter = reporter
        self._in_thread = in_thread
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

    async def status(self) -> Status:
        """Configuration, cycles and lateness, collectors, sites, breaker, spool and errors
        (`uptimelab status`); the configuration without the server's local paths."""
        report = await self._in_thread(lambda: status_report(self.settings, db=self.db))
        # Public, like health: the layout of the server's disk is nobody's business (the CLI,
        # run on the box, shows it).
        for name in LOCAL_PATHS:
            report.config.pop(name, None)
        return report

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


LOCAL_PATHS = ("data_dir", "perf_json", "ca_bundle", "archive_dir")
"""Settings that are paths on the server's disk: left out of GET /monitoring/status."""


def add_routes(app: FastAPI, monitoring: Monitoring, authorized: list[Any]) -> None:
    """Add the routes to the app; ``authorized``: the dependencies of the POSTs (the bearer
    token)."""
    app.add_api_route(
        "/monitoring/status",
        monitoring.status,
        methods=["GET"],
        responses=error_responses(),
        operation_id="status",
    )
    app.add_api_route(
        "/monitoring/health",
        monitoring.health,
        methods=["GET"],
        responses={503: {"model": HealthReport, "description": "Unhealthy"}},
        operation_id="health",
    )
    app.add_api_route(
        "/monitoring/trigger",
        monitoring.trigger,
        methods=["POST"],
        responses=error_responses(401, 409, 503),
        operation_id="trigger",
        status_code=202,
        dependencies=authorized,
    )
    app.add_api_route(
        "/monitoring/test",
        monitoring.dry_run,
        methods=["POST"],
        responses=error_responses(401, 404, 409, 413, 422, 503),
        operation_id="dry_run",
        dependencies=authorized,
        # The body is read by dry_run_request (so that a body of null, or JSON nested too
        # deep, is 422 like any other invalid one); described here.
        openapi_extra={
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": DryRunRequest.model_json_schema()}},
            }
        },
    )
