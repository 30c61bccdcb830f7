"""``uptimelab stats``: the site_stats table (list, show, refresh)."""

from __future__ import annotations

import datetime as dt
import signal
from collections.abc import Sequence
from typing import Annotated, Any

import trio
import typer
from rich.table import Table

from ..config import Settings
from ..domain.redaction import redact
from ..errors import ConfigError
from ..storage.models import Site, SiteStats
from ..storage.regions import (
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
from ..storage.windows import POLICIES
from ._common import (
    Format,
    FormatOption,
    console,
    flag_errors,
    interval_option,
    pct,
    print_records,
    site_label,
    sites_by_id,
    state,
)
from .windows import MonthOption, TargetOption, WindowOption, window_or_month

app = typer.Typer(
    help="Uptime, response time and coverage per site over 1h, 24h, 7d and 30d (the site_stats "
    "table), any window (--window 90d) or a calendar month (--month 2026-10).",
    invoke_without_command=True,
)


@app.callback()
def stats(
    ctx: typer.Context,
    format: FormatOption = Format.table,
    sort: Annotated[
        str,
        typer.Option(
            help=f"Column to sort by, '-' first for descending: {', '.join(SORTABLE)}; "
            f"with --quorum: {', '.join(QUORUM_SORTABLE)}."
        ),
    ] = "uptime_24h",
    status: Annotated[
        str | None, typer.Option(help="Only sites whose current status is up or down.")
    ] = None,
    location: Annotated[
        str | None,
        typer.Option(help="Stats from this location's pings alone (computed now, not stored)."),
    ] = None,
    quorum: Annotated[
        bool,
        typer.Option(
            "--quorum",
            help="The quorum verdict across locations and its uptime (computed now): down when "
            "at least K locations' latest pings within two intervals are down.",
        ),
    ] = False,
    quorum_k: Annotated[
        int | None,
        typer.Option(
            "--quorum-k",
            help="K for --quorum (default: a majority of the locations reporting). Env: QUORUM.",
        ),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            help=f"Uptime policy, one of {', '.join(POLICIES)} (computed now, not stored; "
            f"default: what site_stats stores). Env: UPTIME_POLICY: "
            + (Settings.model_fields["uptime_policy"].description or "")
        ),
    ] = None,
    exclude_maintenance: Annotated[
        bool | None,
        typer.Option(
            "--exclude-maintenance/--include-maintenance",
            help="Leave pings in maintenance windows out (computed now, not stored). "
            "Env: UPTIME_EXCLUDE_MAINTENANCE.",
        ),
    ] = None,
    window: WindowOption = None,
    month: MonthOption = None,
    target: TargetOption = 99.9,
) -> None:
    """List every site's stats (worst 24h uptime first), pooled over all locations, or per
    location (--location), or by quorum (--quorum), or over one window (--window, --month)."""
    if ctx.invoked_subcommand is not None:
        return
    if window is not None or month is not None:
        if window is not None and month is not None:
            raise ConfigError("--window and --month: give one of them")
        if quorum or location is not None:
            raise ConfigError("--window and --month go with neither --location nor --quorum")
        window_or_month(ctx, window, month, policy, exclude_maintenance, target, format, sort)
        return
    if quorum and location is not None:
        raise ConfigError("--location and --quorum: give one of them")
    if quorum_k is not None and not quorum:
        raise ConfigError("--quorum-k: goes with --quorum")
    if quorum:
        settings = Settings.load()
        k = settings.quorum if quorum_k is None else quorum_k
        with flag_errors("--sort", "--status", quorum="--quorum-k"):
            found = quorum_stats(
                quorum=k,
                default_interval_ms=settings.monitoring_interval_ms,
                sort=sort,
                status=status,
                db=state(ctx).db(),
            )
        print_quorum(found, format)
        return
    if location is not None:
        with flag_errors("--sort", "--status", "--location"):
            per_location = location_stats(location, sort=sort, status=status, db=state(ctx).db())
        if not per_location and format is Format.table:  # an empty table says nothing of why
            only = "" if status is None else f" of sites {status} now"
            console.print(f"no pings from location {location!r}{only}", markup=False)
            return
        print_location(per_location, format)
        return
    db = state(ctx).db()
    with flag_errors("--sort", "--status"):
        rows = site_stats(sort=sort, status=status, db=db)
    if policy is not None or exclude_maintenance is not None:
        with flag_errors("--policy", "--sort", "--status"):
            rows = compute_site_stats(
                policy=policy,
                exclude_maintenance=exclude_maintenance,
                sort=sort,
                status=status,
                db=db,
            )
    print_stats(rows, format, sites_by_id(ctx))


@app.command("show")
def show(
    ctx: typer.Context,
    site: Annotated[str, typer.Argument(help="The site's id or URL.")],
    format: FormatOption = Format.table,
) -> None:
    """One site's stats."""
    row = get_site_stats(site, db=state(ctx).db())
    if row is None:
        console.print(f"no pings yet for {redact(site)}", markup=False)
        return
    print_stats([row], format, sites_by_id(ctx))


@app.command("refresh")
def refresh(
    ctx: typer.Context,
    site: Annotated[
        str | None, typer.Argument(help="The site's id or URL (default: every site).")
    ] = None,
    every: Annotated[
        str | None,
        typer.Option(help="Keep refreshing at this interval (60s, 5m, 1h) until stopped."),
    ] = None,
) -> None:
    """Recompute site_stats now, or on a schedule with --every."""
    db = state(ctx).db()
    if every is None:
        written = refresh_stats(site, db=db)
        console.print(f"refreshed {written} site(s)")
        return
    interval = interval_option(every, "--every").total_seconds()

    async def scheduled() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:

                async def stop_on_signal() -> None:
                    async for _ in signals:
                        nursery.cancel_scope.cancel()

                nursery.start_soon(stop_on_signal)
                start = trio.current_time()
                n = 0
                while True:
                    written = await trio.to_thread.run_sync(lambda: refresh_stats(site, db=db))
                    now = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
                    console.print(f"{now} refreshed {written} site(s)")
                    n += 1
                    await trio.sleep_until(start + n * interval)

    trio.run(scheduled)


def print_stats(rows: Sequence[SiteStats], format: Format, sites: dict[Any, Site]) -> None:
    if format is not Format.table:
        print_records(stats_records(rows, sites.values()), format)
        return
    policies = sorted(
        {r.policy + (", maintenance excluded" * r.maintenance_excluded) for r in rows}
    )
    table = Table(
        box=None,
        title=f"uptime % ({'; '.join(policies) or 'samples'}) and mean ms of up pings "
        "(- = no pings; red = down now); cov: % of the pings expected over 24h; "
        "cert: days until the certificate expires (yellow = within cert_min_days)",
    )
    table.add_column("site", no_wrap=True, max_width=18, overflow="ellipsis")
    for header in ("up 1h", "up 24h", "up 7d", "up 30d", "ms 24h", "cov 24h", "cert"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("last UTC", no_wrap=True)
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    for r in rows:
        last = r.last_checked.astimezone(dt.UTC)
        site = sites.get(r.site_id)
        days = None if r.cert_expires_at is None else (r.cert_expires_at - now) / dt.timedelta(1)
        soon = days is not None and days < (site.cert_min_days if site else 14)
        table.add_row(
            site_label(sites.get(r.site_id), r.site_id),
            pct(r.uptime_1h, r.pings_1h),
            pct(r.uptime_24h, r.pings_24h),
            pct(r.uptime_7d, r.pings_7d),
            pct(r.uptime_30d, r.pings_30d),
            str(r.avg_response_time_24h),
            f"{r.coverage_24h:.0f}",
            "-" if days is None else f"{days:.1f}",
            last.strftime("%H:%M" if last.date() == today else "%m-%d"),
            style="red" if r.current_status == "down" else "yellow" if soon else None,
        )
    console.print(table)


def print_location(rows: Sequence[LocationStats], format: Format) -> None:
    """Per-location stats: as json or csv records, or the stats table with a location column."""
    if format is not Format.table:
        print_records([r.model_dump(mode="json") for r in rows], format)
        return
    table = Table(box=None, title="per location: uptime % and mean ms of up pings (red = down)")
    table.add_column("site", no_wrap=True, max_width=18, overflow="ellipsis")
    table.add_column("location", no_wrap=True, max_width=14, overflow="ellipsis")
    for header in ("up 1h", "up 24h", "up 7d", "ms 1h", "ms 24h", "ms 7d"):
        table.add_column(header, justify="right", no_wrap=True)
    for r in rows:
        table.add_row(
            r.name or r.url,
            r.location,
            pct(r.uptime_1h, r.pings_1h),
            pct(r.uptime_24h, r.pings_24h),
            pct(r.uptime_7d, r.pings_7d),
            str(r.avg_response_time_1h),
            str(r.avg_response_time_24h),
            str(r.avg_response_time_7d),
            style="red" if r.current_status == "down" else None,
        )
    console.print(table)


def print_quorum(rows: Sequence[QuorumStats], format: Format) -> None:
    """Quorum stats: as json or csv records, or a table of uptime and the verdict now."""
    if format is not Format.table:
        print_records([r.model_dump(mode="json") for r in rows], format)
        return
    table = Table(
        box=None, title="quorum: uptime % of ping instants; now: locations down/reporting"
    )
    table.add_column("site", no_wrap=True, max_width=18, overflow="ellipsis")
    for header in ("up 1h", "up 24h", "up 7d", "now"):
        table.add_column(header, justify="right", no_wrap=True)
    for r in rows:
        now = (
            "-"
            if r.current_status is None
            else f"{r.current_status} {r.locations_down}/{r.locations}"
        )
        table.add_row(
            r.name or r.url,
            pct(r.uptime_1h, r.instants_1h),
            pct(r.uptime_24h, r.instants_24h),
            pct(r.uptime_7d, r.instants_7d),
            now,
            style="red" if r.current_status == "down" else None,
        )
    console.print(table)
