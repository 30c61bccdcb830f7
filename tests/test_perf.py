"""A small smoke run of ``uptimelab perf``, so that the command cannot rot (figures are for the
benchmarks, never asserted here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from uptimelab.storage.database import Database
from uptimelab.testing.perf import ideal_seconds

from .test_cli import run

pytestmark = pytest.mark.serial  # timing-sensitive: `make test` runs it after the parallel part


def test_perf_runs_a_small_scenario_and_writes_json_and_a_plot(
    db: Database, tmp_path: Path
) -> None:
    out = tmp_path / "perf.json"
    png = tmp_path / "perf.png"
    result = run(
        "perf",
        "--scenario",
        "small",
        "--timeout-ms",
        "2000",
        "--json",
        str(out),
        "--plot",
        str(png),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    (small,) = json.loads(out.read_text())
    assert small["sites"] == 5
    assert small["stored_pings"] == 5
    assert small["ideal_s"] > 0
    assert small["cycle_s"] >= small["ideal_s"] * 0.9
    assert png.read_bytes().startswith(b"\x89PNG")


def test_ideal_time_counts_hangs_as_the_timeout_and_refusals_as_nothing() -> None:
    targets = [
        {"behaviour": "ok", "latency_ms": 100.0},
        {"behaviour": "ok", "latency_ms": 300.0},
        {"behaviour": "hang", "latency_ms": 50.0},
        {"behaviour": "refused", "latency_ms": 80.0},
    ]
    assert ideal_seconds(targets, concurrency=1, timeout_ms=1000) == pytest.approx(1.4)
    assert ideal_seconds(targets, concurrency=4, timeout_ms=1000) == pytest.approx(1.0)


def test_perf_refuses_a_sustained_run_without_sites(db: Database) -> None:
    result = run("perf", "--sustained")
    assert result.returncode == 2
    assert result.stderr.startswith("error: --sustained needs --sites")


def test_perf_with_two_collectors_stores_every_ping_once_and_reports_the_fleet(
    db: Database, tmp_path: Path
) -> None:
    out = tmp_path / "fleet.json"
    result = run(
        "perf",
        "--collectors",
        "2",
        "--sites",
        "6",
        "--interval",
        "2s",
        "--duration",
        "6s",
        "--lease-ms",
        "3000",
        "--json",
        str(out),
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    assert "ping-to-queryable" in result.stdout
    report = json.loads(out.read_text())
    assert (report["collectors"], report["sites"], report["interval_s"]) == (2, 6, 2.0)
    assert report["sites_never_pinged"] == 0
    assert report["pings_stored"] >= 6
    assert report["pings_stored"] == report["pings_recorded"]
    assert report["sites_too_soon"] == 0
    assert report["stored_once"] is True
    assert report["delay_unseen"] == 0
    assert 0 < report["delay_median_s"] <= report["delay_p95_s"]
    assert [c["exit_code"] for c in report["per_collector"]] == [0, 0]
    assert 0 <= sum(c["sites_owned"] for c in report["per_collector"]) <= 6
    assert all(c["peak_rss_mb"] > 0 for c in report["per_collector"])


def test_perf_refuses_a_fleet_without_sites_or_a_kill_with_one_collector(db: Database) -> None:
    no_sites = run("perf", "--collectors", "2")
    assert no_sites.returncode == 2
    assert no_sites.stderr.startswith("error: --collectors needs --sites")
    alone = run("perf", "--collectors", "1", "--sites", "5", "--kill-one")
    assert alone.returncode == 2
    assert alone.stderr.startswith("error: --kill-one needs --collectors 2 or more")
