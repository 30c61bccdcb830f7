"""Is this installation able to collect? The seed's validation script, as a library function.

:func:`validate` runs five checks, one after another, and times each::

    database        connects within DATABASE_TIMEOUT_S; the schema is at the newest version;
                    every stored site URL is in the normal form (or its id and why are listed)
    http client     a zoo with one target per behaviour; each is categorised as the zoo expects
    in-memory lock  a second trigger during a cycle is refused with CycleInProgressError
    performance     PERF_SITES targets of PERF_LATENCY_MS at PERF_CONCURRENCY, within the bound
    configuration   the environment passes the rules, and known bad values are rejected

Each check is isolated: one that fails, times out or raises one of our errors is reported as
failed, and the others still run. Nothing is written anywhere: the collector checks run dry
cycles over zoo targets handed to the collector directly, never registered as sites.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import trio

from ..collector import Collector, QuietReporter, Reporter
from ..concurrency import run_in_trio_thread
from ..config import Settings
from ..domain.pings import PingResult
from ..errors import ConfigError, CycleInProgressError, UptimelabError, leaves
from ..probe import Prober
from ..storage.database import Database, connect, migration_files
from ..storage.models import Site
from ..storage.site_urls import UnnormalisedSite, unnormalised_sites
from ..testing.zoo import Behaviour, Target, TargetSpec, ZooSpec, open_zoo
from ..text import one_line

DATABASE_TIMEOUT_S = 15.0
"""Deadline (seconds) of the database check: above libpq's 10 s connect timeout, whose message
says why, and long enough for an embedded server's first start."""

CHECK_TIMEOUT_S = 10.0
"""Deadline (seconds) of each of the other checks."""

HTTP_TIMEOUT_MS = 1000
"""Ping deadline (milliseconds) in the HTTP client check; the hanging targets take this long."""

PERF_SITES = 200
PERF_LATENCY_MS = 20.0
PERF_CONCURRENCY = 50

_LOCATION = "validate"
_REGION_CODE = "XX"
_ZOO_LIFETIME_S = 60.0
_NO_DATABASE_URL = "postgresql://uptimelab-validate.invalid/none"
_MAX_DETAIL_CHARS = 500

# A bad value, the variable its ConfigError must name, and the settings that carry it.
_BAD_VALUES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("interval 1000", "MONITORING_INTERVAL_MS", {"monitoring_interval_ms": 1000}),
    (
        "timeout = interval",
        "PING_TIMEOUT_MS",
        {"monitoring_interval_ms": 60_000, "ping_timeout_ms": 60_000},
    ),
    ("concurrency 0", "MAX_CONCURRENT_PINGS", {"max_concurrent_pings": 0}),
    ("empty location", "MONITORING_LOCATION", {"monitoring_location": ""}),
)


@dataclass(frozen=True)
class Check:
    """The outcome of one check: its name, whether it passed, how long it took (seconds), and
    one line saying what was found or what went wrong."""

    name: str
    passed: bool
    seconds: float
    detail: str


@dataclass
class ValidationReport:
    """Every check's outcome, in the order they ran."""

    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether there were checks and every one passed."""
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def seconds(self) -> float:
        """The time all checks took together (seconds)."""
        return sum(c.seconds for c in self.checks)


def validate(
    *,
    db: Database | None = None,
    database_url: str | None = None,
    verify: ssl.SSLContext | bool = True,
) -> ValidationReport:
    """Run every check and return the report; ``report.passed`` is True only when all pass.

    The database is ``db``, else ``connect(database_url, migrate=False)`` (the environment's or
    the embedded one); it is only read, never migrated. ``verify`` is what the HTTP client trusts
    (as for :func:`~uptimelab.collect_once`); the zoo's certificate must stay untrusted, so
    ``verify=False`` fails the HTTP client check. Works inside a running asyncio loop (Jupyter).
    A failing check does not raise: it is reported.
    """

    async def run() -> ValidationReport:
        return await _run_checks(db, database_url, verify)

    report: ValidationReport = run_in_trio_thread(run)
    return report


async def _run_checks(
    db: Database | None, database_url: str | None, verify: ssl.SSLContext | bool
) -> ValidationReport:
    checks: list[tuple[str, Callable[[], Awaitable[tuple[bool, str]]], float]] = [
        ("database", lambda: _check_database(db, database_url), DATABASE_TIMEOUT_S),
        ("http client", lambda: _check_http_client(verify), CHECK_TIMEOUT_S),
        ("in-memory lock", _check_lock, CHECK_TIMEOUT_S),
        ("performance", _check_performance, CHECK_TIMEOUT_S),
        ("configuration", lambda: _check_configuration(database_url), CHECK_TIMEOUT_S),
    ]
    report = ValidationReport()
    for name, check, timeout_s in checks:
        report.checks.append(await _timed(name, check, timeout_s))
    return report


async def _timed(
    name: str, check: Callable[[], Awaitable[tuple[bool, str]]], timeout_s: float
) -> Check:
    """Run one check under its deadline; our errors, a timeout or a socket error fail it."""
    start = trio.current_time()
    passed, detail = False, ""
    # except*: an error raised inside a nursery (the zoo's, a cycle's) arrives in a group.
    try:
        with trio.fail_after(timeout_s):
            passed, detail = await check()
    except* trio.TooSlowError:
        passed, detail = False, f"did not finish within {timeout_s:g} s"
    except* (UptimelabError, OSError) as group:
        exc = leaves(group)[0]
        # Our errors say what went wrong; a socket error needs its type to make sense.
        passed, detail = False, str(exc) if isinstance(exc, UptimelabError) else repr(exc)
    return Check(name, passed, trio.current_time() - start, one_line(detail, _MAX_DETAIL_CHARS))


# -- the checks ------------------------------------------------------------------------------------


async def _check_database(db: Database | None, database_url: str | None) -> tuple[bool, str]:
    newest = max((version for version, _ in migration_files()), default=0)

    def read() -> tuple[int, list[UnnormalisedSite]]:
        handle = db if db is not None else connect(database_url, migrate=False)
        version = handle.schema_version()
        return version, unnormalised_sites(handle) if version == newest else []

    try:
        # Abandoned at the deadline: a connect that hangs must not hold the report back.
        version, unnormalised = await trio.to_thread.run_sync(read, abandon_on_cancel=True)
    except psycopg.Error as exc:
        return False, f"the database refused: {exc}"
    detail = f"schema version {version} of {newest}"
    if version == 0:
        return False, f"no schema (version 0 of {newest}): run `uptimelab db init`"
    if version < newest:
        return False, f"{detail}: run `uptimelab db init`"
    if version > newest:
        return False, f"{detail}: the database is newer than this uptimelab"
    if unnormalised:
        return False, f"{detail}; {_unnormalised(unnormalised)}"
    return True, detail


def _unnormalised(sites: list[UnnormalisedSite]) -> str:
    """The stored rows not in the normal form: ids, URLs (redacted, shortened) and reasons."""
    shown = "; ".join(
        f"{s.id} {s.url if len(s.url) <= 60 else s.url[:57] + '...'!r}: {s.reason}"
        for s in sites[:3]
    )
    more = f"; and {len(sites) - 3} more" if len(sites) > 3 else ""
    return (
        f"{len(sites)} stored site URL(s) not in the normal form, left as they are "
        f"(remove or fix them): {shown}{more}"
    )


async def _check_http_client(verify: ssl.SSLContext | bool) -> tuple[bool, str]:
    pings: dict[str, PingResult] = {}
    async with open_zoo(ZooSpec.every_failure(duration_s=_ZOO_LIFETIME_S)) as zoo:
        async with Prober(
            location=_LOCATION,
            region_code=_REGION_CODE,
            timeout_ms=HTTP_TIMEOUT_MS,
            verify=verify,
        ) as prober:

            async def probe(target: Target) -> None:
                ping = await prober.ping(_site(target))
                if ping is not None:  # None: a fault of our client, logged by the prober
                    pings[target.name] = ping

            # One task per target is bounded: the zoo serves one target per behaviour.
            async with trio.open_nursery() as nursery:
                for target in zoo.targets:
                    nursery.start_soon(probe, target)
        targets = zoo.targets
    wrong = [
        f"{t.name} expected {t.expect_category or 'up'}, got "
        + (_outcome(pings[t.name]) if t.name in pings else "a fault of the probe (see the log)")
        for t in targets
        if t.name not in pings or pings[t.name].error_category != t.expect_category
    ]
    if wrong:
        return False, f"{len(wrong)} of {len(targets)} categorised wrong: {'; '.join(wrong)}"
    seen = sorted({t.expect_category or "up" for t in targets})
    return True, f"{len(targets)} targets, each categorised right ({', '.join(seen)})"


async def _check_lock() -> tuple[bool, str]:
    spec = ZooSpec(
        (TargetSpec("hang", Behaviour.HANG), TargetSpec("ok", Behaviour.OK)),
        duration_s=_ZOO_LIFETIME_S,
    )
    async with open_zoo(spec) as zoo:
        reporter = _StartSignal()
        # The first cycle waits on a target that never answers, longer than this check may
        # last, so it is surely running when the second trigger comes; then it is stopped.
        first = _dry_collector(_settings(ping_timeout_ms=30_000), reporter=reporter)
        second = _dry_collector(_settings())
        hang, ok = [_site(zoo.target("hang"))], [_site(zoo.target("ok"))]
        busy: list[CycleInProgressError] = []
        refused: CycleInProgressError | None = None

        async def first_cycle() -> None:
            try:
                await first.cycle(dry_run=True, sites=hang)
            except CycleInProgressError as exc:
                busy.append(exc)
            finally:
                reporter.started.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(first_cycle)
            await reporter.started.wait()
            if not busy:
                try:
                    await second.cycle(dry_run=True, sites=ok)
                except CycleInProgressError as exc:
                    refused = exc
            first.stop()
        if busy:
            return False, "another cycle runs in this process, so the lock cannot be checked"
        if refused is None:
            return False, "a second trigger during a cycle was not refused: it ran a cycle"
        try:
            await second.cycle(dry_run=True, sites=ok)
        except CycleInProgressError:
            return False, "a second trigger was refused, but the lock stayed held after the cycle"
    return True, "a second trigger during a cycle was refused; one after the cycle ran"


async def _check_performance() -> tuple[bool, str]:
    ideal_s = PERF_SITES * PERF_LATENCY_MS / 1000 / PERF_CONCURRENCY
    bound_s = 3 * ideal_s + 0.5
    spec = ZooSpec.uniform(PERF_SITES, latency_ms=PERF_LATENCY_MS, duration_s=_ZOO_LIFETIME_S)
    async with open_zoo(spec) as zoo:
        collector = _dry_collector(_settings(max_concurrent_pings=PERF_CONCURRENCY))
        sites = [_site(t) for t in zoo.targets]
        start = trio.current_time()
        summary = await collector.cycle(dry_run=True, sites=sites)
        took_s = trio.current_time() - start
    detail = (
        f"{summary.sites_checked} pings of {PERF_LATENCY_MS:g} ms at concurrency "
        f"{PERF_CONCURRENCY} in {took_s:.2f} s, {summary.sites_checked / took_s:.0f} pings/s "
        f"(ideal {ideal_s:.2f} s, bound {bound_s:.2f} s)"
    )
    if summary.down:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(summary.by_category.items()))
        return False, f"{summary.down} of {summary.sites_checked} down ({kinds}); {detail}"
    return took_s <= bound_s, detail


async def _check_configuration(database_url: str | None) -> tuple[bool, str]:
    try:
        Settings.load(database_url=database_url)
    except ConfigError as exc:
        return False, f"the environment breaks a rule: {exc}"
    wrong = []
    for label, variable, values in _BAD_VALUES:
        try:
            _settings(**values)
        except ConfigError as exc:
            if not str(exc).startswith(f"{variable}="):
                wrong.append(f"{label} was rejected for another reason ({exc})")
        else:
            wrong.append(f"{label} was accepted")
    if wrong:
        return False, "; ".join(wrong)
    labels = ", ".join(label for label, _, _ in _BAD_VALUES)
    return True, f"the environment passes the rules; rejected {labels}"


# -- helpers ---------------------------------------------------------------------------------------


def _dry_collector(settings: Settings, *, reporter: Reporter | None = None) -> Collector:
    """A collector for dry cycles over given sites. Its database handle names no server (.invalid
    never resolves): such cycles never open it, and nothing could be written through it."""
    return Collector(Database(url=_NO_DATABASE_URL), settings, reporter=reporter)


class _StartSignal(QuietReporter):
    """Sets ``started`` when a cycle has taken the lock and begun probing."""

    def __init__(self) -> None:
        self.started = trio.Event()

    def cycle_started(self, number: int, sites: int | None) -> None:
        self.started.set()


def _settings(**overrides: Any) -> Settings:
    """A valid configuration that the environment cannot change: every field at its default, then
    ``overrides``. Raises ConfigError when an override breaks a rule."""
    values: dict[str, Any] = {
        name: info.get_default(call_default_factory=True)
        for name, info in Settings.model_fields.items()
    }
    values.update(monitoring_location=_LOCATION, monitoring_region_code=_REGION_CODE)
    values.update(overrides)
    return Settings.load(**values)


def _site(target: Target) -> Site:
    now = dt.datetime.now(dt.UTC)
    return Site(url=target.url, name=target.name, created_at=now, updated_at=now)


def _outcome(ping: PingResult) -> str:
    if ping.error_category is None:
        return "up"
    message = ping.error_message or ""
    if len(message) > 60:
        message = message[:57] + "..."
    return f"{ping.error_category} ({message})"
