"""A small smoke run of ``uptimelab perf``, so that the command cannot rot (figures are for the
benchmarks, never asserted here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from uptimelab.storage.database import Database
from uptimelab.testing.perf import ideal_seconds

from .test_cli import run


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
