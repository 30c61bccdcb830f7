"""``uptimelab status`` and ``uptimelab health``."""

from __future__ import annotations

from typing import Annotated

import typer

from ..config import Settings
from ..domain.state import Status
from ..ops.health import health as run_health
from ..ops.health import status as collect_status
from ._common import console, state

JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document.")]


def status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Configuration, recent cycles and lateness, collectors, sites, breaker, spool, errors (GET
    /monitoring/status).

    Exit code 1 when the database cannot be reached (what is known is still shown)."""
    report = collect_status(Settings.load(database_url=state(ctx).database_url))
    if as_json:
        typer.echo(report.model_dump_json(indent=1))
    else:
        _print_status(report)
    if not report.database.reachable:  # shown, and still a failure of the environment
        raise typer.Exit(1)


def health(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """One line per check; exit code 0 healthy, 1 degraded, 2 unhealthy (GET /monitoring/health)."""
    report = run_health(Settings.load(database_url=state(ctx).database_url))
    if as_json:
        typer.echo(report.model_dump_json(indent=1))
    else:
        for check in report.checks:
            console.print(
                f"{check.status.upper():10} {check.name:11} {check.detail}",
                markup=False,
                soft_wrap=True,
            )
        console.print(f"overall: {report.status}", markup=False)
    raise typer.Exit(report.exit_code)


def _print_status(report: Status) -> None:
    out = console.print
    config = report.config
    out(
        f"config: interval {config['monitoring_interval_ms']} ms, timeout "
        f"{config['ping_timeout_ms']} ms, concurrency {config['max_concurrent_pings']}, "
        f"location {config['monitoring_location']}/{config['monitoring_region_code']}, "
        f"database {config['database_url'] or '(embedded)'}",
        markup=False,
        soft_wrap=True,
    )
    db = report.database
    if not db.reachable:
        out(f"database: UNREACHABLE ({db.error})", markup=False, soft_wrap=True)
    else:
        if db.cycles_24h is not None:
            c = db.cycles_24h
            if not c.cycles:
                out("cycles (24 h): none yet", markup=False)
            else:
                rate = "-" if c.success_rate is None else f"{100 * c.success_rate:.1f} %"
                overruns = f", --once overruns {c.overruns}" if c.overruns else ""
                overruns += f", stopped {c.stopped} (not counted)" if c.stopped else ""
                out(
                    f"cycles (24 h): {c.cycles}, success {rate}, "
                    f"mean {_ms(c.mean_duration_ms)}, max {_ms(c.max_duration_ms)}{overruns}",
                    markup=False,
                )
        if db.lateness is not None and db.lateness.rounds:
            late = db.lateness
            out(
                f"lateness (24 h): {late.rounds} rounds, worst {_ms(late.max_late_ms)} late; "
                f"last round {_ms(late.last_round_late_ms)} late",
                markup=False,
            )
        for one in db.collectors or []:
            if one.stopped_at is not None:
                state = f"stopped {one.stopped_at:%Y-%m-%d %H:%M:%S} UTC"
            elif one.stale:
                state = f"STALE: no heartbeat for {one.heartbeat_age_s:.0f} s"
            else:
                state = f"heartbeat {one.heartbeat_age_s:.0f} s ago"
            out(
                f"collector {str(one.id)[:8]} {one.host} pid {one.pid} {one.location}: {state}; "
                f"started {one.started_at:%Y-%m-%d %H:%M:%S} UTC, {one.sites_owned} sites, "
                f"{_ms(one.late_ms)} late",
                markup=False,
                soft_wrap=True,
            )
        if db.sites is not None:
            out(f"sites: {db.sites.active} active of {db.sites.total}", markup=False)
        if db.uptime is not None:
            u = db.uptime
            changed = (
                ""
                if u.changed_at is None
                else f" (set by {u.changed_by}, {u.changed_at:%Y-%m-%d %H:%M:%S} UTC)"
            )
            out(
                f"uptime policy in force: {u.policy}, maintenance "
                f"{'excluded' if u.exclude_maintenance else 'counted'}{changed}",
                markup=False,
                soft_wrap=True,
            )
            for line in u.disagreeing:
                out(f"UPTIME SETTINGS DISAGREE: {line}", markup=False, soft_wrap=True)
        if db.tls_unverified_sites:
            shown = ", ".join(f"{s.name or s.url} ({s.id})" for s in (db.tls_unverified or [])[:5])
            more = db.tls_unverified_sites - min(5, len(db.tls_unverified or []))
            out(
                f"TLS NOT VERIFIED (tls_verify false): {db.tls_unverified_sites} active site(s): "
                f"{shown}{f' and {more} more' if more > 0 else ''}",
                markup=False,
                soft_wrap=True,
            )
        if db.cert_expiring_sites:
            soon = ", ".join(
                f"{c.name or c.url} ({c.days_left:g} days, {c.expires_at:%Y-%m-%d})"
                for c in (db.cert_expiring or [])[:5]
            )
            more = db.cert_expiring_sites - min(5, len(db.cert_expiring or []))
            out(
                f"CERTIFICATES EXPIRING (within cert_min_days): {db.cert_expiring_sites} active "
                f"site(s): {soon}{f' and {more} more' if more > 0 else ''}",
                markup=False,
                soft_wrap=True,
            )
        if db.collector_faults_24h:
            out(
                f"collector faults (24 h): {db.collector_faults_24h} site(s) got no ping because "
                "our own client failed (see the log)",
                markup=False,
                soft_wrap=True,
            )
        last = db.last_cycle
        if last:
            kind = "last cycle" if last.collector_id is None else "last round"
            # The round's own counts (its collector's pings), then what the database holds of
            # its location in the round's time (with several collectors, theirs too).
            seen = _counts(last.pings_by_status)
            down_by = _counts(last.pings_by_category)
            out(
                f"{kind}: {last.started_at:%Y-%m-%d %H:%M:%S} UTC, "
                f"{last.sites_checked} site(s) in {last.up + last.down} ping(s): "
                f"{last.up} up, {last.down} down, {_ms(last.duration_ms)}"
                f"{f'; pings of {last.location} stored in that time: {seen}' if seen else ''}"
                f"{f' (down by category: {down_by})' if down_by else ''}"
                f"{f'; {last.error}' if last.error else ''}",
                markup=False,
                soft_wrap=True,
            )
        out(f"pings table: {(db.pings_table_bytes or 0) / 1e6:.1f} MB", markup=False)
    out(f"breaker: {report.breaker.state}", markup=False)
    spool = report.spool
    full = f" FULL, pings dropped: {spool.dropped_pings}" if spool.full else ""
    out(f"spool: {spool.segments} cycle(s), {spool.bytes} bytes{full}", markup=False)
    errors = report.errors_24h
    # The down pings by category are the database's: not known while it cannot be reached.
    by_category = (
        _counts(errors.by_category) or "none"
        if report.database.reachable
        else "unknown (database unreachable)"
    )
    out(
        f"errors (24 h): by category {by_category}; "
        f"by component {_counts(errors.by_component) or 'none'}",
        markup=False,
        soft_wrap=True,
    )


def _counts(counts: dict[str, int]) -> str:
    """``refused 4, timeout 1``: counts by name, largest first ('' for none)."""
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _ms(value: int | float | None) -> str:
    """``0 s``, ``1.2 s``, ``95 s``: a lateness in milliseconds as seconds (``-`` for none)."""
    if value is None:
        return "-"
    return f"{value / 1000:.1f} s" if value < 10_000 else f"{value / 1000:.0f} s"
