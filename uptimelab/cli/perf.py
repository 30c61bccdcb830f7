"""``uptimelab perf``: the seed's performance test, the sustained 100 000-site run, and fleets of
collector processes sharing one database (``--collectors``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..errors import ConfigError
from ..storage.database import Database, connect
from ..testing import fleet_analysis, fleet_perf
from ..testing.perf import (
    MEMORY_STRESS_SITES,
    SCENARIOS,
    ScenarioResult,
    as_json,
    plot,
    run_scenario,
)
from ._common import (
    console,
    duration_option,
    interval_option,
    output_file_option,
    path_text,
    state,
    writing,
)


def perf(
    ctx: typer.Context,
    scenario: Annotated[
        list[str] | None,
        typer.Option(help="small (5 sites), medium (25), large (100); default: all three."),
    ] = None,
    sites: Annotated[int | None, typer.Option(min=1, help="A scenario of N sites.")] = None,
    memory_stress: Annotated[
        bool, typer.Option(help=f"Add the memory stress run ({MEMORY_STRESS_SITES} sites).")
    ] = False,
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=1000,
            help="Pings in flight (default 10; a fleet: per collector, enough for the survivors "
            "to carry the fleet twice over).",
        ),
    ] = None,
    timeout_ms: Annotated[int, typer.Option(min=100, help="Ping deadline, ms.")] = 10_000,
    cycles: Annotated[int, typer.Option(min=1, help="Cycles per scenario.")] = 1,
    sustained: Annotated[
        bool,
        typer.Option(help="Run --sites on the collector's cadence of --interval for --cycles."),
    ] = False,
    interval: Annotated[
        str,
        typer.Option(help="Seconds between cycles (sustained), or each site's interval (fleet)."),
    ] = "300s",
    collectors: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help="Run N `uptimelab collect` processes sharing --sites (a fleet run)."
        ),
    ] = None,
    duration: Annotated[str, typer.Option(help="How long the fleet run lasts.")] = "10m",
    kill_one: Annotated[
        bool, typer.Option(help="SIGKILL one collector halfway; report its sites' longest gap.")
    ] = False,
    lease_ms: Annotated[
        int | None,
        typer.Option(
            min=1000, help="COLLECTOR_LEASE_MS of the fleet (10 s with --kill-one, else 30 s)."
        ),
    ] = None,
    zoos: Annotated[
        int | None, typer.Option(min=1, help="Zoo processes (default: one per 400 requests/s).")
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", parser=path_text, help="Write results here.")
    ] = None,
    plot_file: Annotated[
        Path | None,
        typer.Option("--plot", parser=path_text, help="PNG of cycle time against ideal."),
    ] = None,
) -> None:
    """Time cycles against a zoo in another process and a scratch database; report against the
    ideal. With --collectors, run that many `uptimelab collect` processes over --sites for
    --duration and report how the fleet was served. Runs on the configured PostgreSQL server (a
    scratch database, dropped afterwards)."""
    interval_s = interval_option(interval, "--interval").total_seconds()
    for flag, path in (("--json", json_file), ("--plot", plot_file)):
        if path is not None:  # a directory is refused before the run, not after it
            output_file_option(path, flag)
    server = connect(state(ctx).database_url, migrate=False)
    if collectors is not None:
        _fleet(
            server,
            collectors,
            sites,
            interval_s,
            duration,
            kill_one,
            lease_ms,
            zoos,
            concurrency,
            json_file,
        )
        return
    concurrency = concurrency or 10
    runs: list[tuple[str, int, int]] = []
    if sustained:
        if sites is None:
            raise ConfigError("--sustained needs --sites")
        if interval_s < 60:
            raise ConfigError(f"--interval={interval}: the interval must be at least 60 s")
    else:
        for name in scenario or ([] if sites else list(SCENARIOS)):
            if name not in SCENARIOS:
                raise ConfigError(f"--scenario={name!r}: use one of {', '.join(SCENARIOS)}")
            runs.append((name, SCENARIOS[name], concurrency))
        if sites:
            runs.append((f"{sites} sites", sites, concurrency))
        if memory_stress:
            runs.append(("memory stress", MEMORY_STRESS_SITES, max(concurrency, 200)))
    results: list[ScenarioResult] = []

    def say(line: str) -> None:
        console.print(line, markup=False)

    if sustained and sites is not None:
        results.append(
            run_scenario(
                server,
                "sustained",
                sites,
                concurrency=concurrency,
                timeout_ms=timeout_ms,
                cycles=cycles,
                interval_s=interval_s,
                progress=say,
            )
        )
    for name, n, conc in runs:
        results.append(
            run_scenario(
                server,
                name,
                n,
                concurrency=conc,
                timeout_ms=timeout_ms,
                cycles=cycles,
                progress=say,
            )
        )
    table = Table(
        "scenario",
        "sites",
        "conc",
        "cycle s",
        "ideal s",
        "ratio",
        "pings/s",
        "CPU ms/ping",
        "peak RSS MB",
        "write s",
        "stored",
        box=None,
    )
    for r in results:
        table.add_row(
            r.name,
            str(r.sites),
            str(r.concurrency),
            f"{r.cycle_s:.2f}",
            f"{r.ideal_s:.2f}",
            f"{r.ratio:.2f}",
            f"{r.pings_per_s:.0f}",
            f"{r.cpu_ms_per_ping:.3f}",
            f"{r.peak_rss_mb:.0f}",
            f"{r.write_s:.3f}",
            f"{r.stored_pings}",
        )
    console.print(table)
    if sustained and results:
        r = results[0]
        verdict = "every cycle within the interval" if r.within_interval else "OVERRAN"
        console.print(
            f"sustained: {r.cycles} cycles of {r.sites} sites every {interval_s:g} s: {verdict}; "
            f"{r.stored_pings} of {r.sites * r.cycles} pings stored; longest refresh "
            f"{r.refresh_s:.2f} s",
            markup=False,
        )
    if json_file is not None:
        with writing("--json", json_file):
            json_file.parent.mkdir(parents=True, exist_ok=True)
            json_file.write_text(json.dumps(as_json(results), indent=1))
    if plot_file is not None:
        with writing("--plot", plot_file):
            plot(results, plot_file)


def _fleet(
    server: Database,
    collectors: int,
    sites: int | None,
    interval_s: float,
    duration: str,
    kill_one: bool,
    lease_ms: int | None,
    zoos: int | None,
    concurrency: int | None,
    json_file: Path | None,
) -> None:
    if sites is None:
        raise ConfigError("--collectors needs --sites")
    if not 1 <= interval_s <= 86_400:
        raise ConfigError(f"--interval={interval_s:g}s: a site's interval is 1 s to 24 h")
    if kill_one and collectors < 2:
        raise ConfigError("--kill-one needs --collectors 2 or more")
    r = fleet_perf.run_fleet(
        server,
        collectors=collectors,
        sites=sites,
        interval_s=interval_s,
        duration_s=duration_option(duration, "--duration").total_seconds(),
        kill_one=kill_one,
        lease_ms=lease_ms,
        zoos=zoos,
        concurrency=concurrency,
        progress=lambda line: console.print(line, markup=False),
    )
    console.print(fleet_table(r))
    if json_file is not None:
        with writing("--json", json_file):
            json_file.parent.mkdir(parents=True, exist_ok=True)
            json_file.write_text(json.dumps(fleet_analysis.as_json(r), indent=1))


def fleet_table(r: fleet_analysis.FleetResult) -> Table:
    """The figures of a fleet run, one per row."""

    def s(value: float | None, unit: str = " s") -> str:
        return "-" if value is None else f"{value:.2f}{unit}"

    table = Table("measure", "value", box=None)
    rows = [
        (
            "fleet",
            f"{r.sites} sites every {r.interval_s:g} s, {r.collectors} collectors, "
            f"{r.zoos} zoo(s), {r.concurrency} in flight each, lease {r.lease_ms} ms, "
            f"{r.duration_s:g} s",
        ),
        ("pings stored / counted by the rounds", f"{r.pings_stored} / {r.pings_recorded}"),
        (
            "sites never pinged / missed an interval / twice within half",
            f"{r.sites_never_pinged} / {r.sites_missed_interval} / {r.sites_too_soon}",
        ),
        ("longest gap of a site", s(r.longest_gap_s)),
        ("steady part", s(r.steady_s)),
        (
            "pings/s mean, 10-s windows min-max",
            f"{r.mean_per_s:.1f}, {r.window_min_per_s:.1f}-{r.window_max_per_s:.1f}",
        ),
        ("spread (worst window vs mean)", s(r.spread_pct, " %")),
        ("ping-to-queryable median / p95", f"{s(r.delay_median_s)} / {s(r.delay_p95_s)}"),
        ("pings not seen by the poller", str(r.delay_unseen)),
        ("load average (1 min) start / max / end", " / ".join(f"{x:.2f}" for x in r.load_average)),
    ]
    if r.analysed:
        rows.append(("server's autovacuum is off", "pings ANALYZEd every minute by the run"))
    if r.killed_sites:
        rows.append(
            (
                "killed collector's sites: longest gap (goal)",
                f"{s(r.killed_longest_gap_s)} ({s(r.gap_goal_s)}) over {r.killed_sites} sites",
            )
        )
        rows.append(
            (
                "  of which its cadence (due - last ping) / late after due or kill (goal)",
                f"{s(r.killed_longest_cadence_s)} / {s(r.killed_longest_late_s)} "
                f"({r.lease_ms / 1000:g} s)",
            )
        )
        rows.append(
            ("  sites due before the kill, their probe lost with it", str(r.killed_lost_probes))
        )
    for k, c in enumerate(r.per_collector):
        state_ = "killed" if c.killed else f"exit {c.exit_code}"
        rows.append(
            (
                f"collector {k} (pid {c.pid})",
                f"{c.sites_owned} sites, RSS {c.rss_mb:.0f} MB, peak {c.peak_rss_mb:.0f} MB, "
                f"{state_}",
            )
        )
    for name, value in rows:
        table.add_row(name, value)
    return table
