"""The report: one self-contained HTML file with a plot per section, exports that round-trip, and
the analysis tables (``uptimelab.analysis``) it shares with the notebooks."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from uptimelab import analysis, plots, report, stats
from uptimelab.analytics.collector_health import overran
from uptimelab.cli._common import State
from uptimelab.cli.report import report as report_command
from uptimelab.errors import ConfigError
from uptimelab.report.period import PeriodData
from uptimelab.report.sections import _collector_section
from uptimelab.storage.database import Database, connect
from uptimelab.testing.history import HistorySummary, synthetic_history, write_history
from uptimelab.text import span

SECTIONS = ("fleet", "uptime", "latency", "outages", "incidents", "sla", "collector")
PNG = b"\x89PNG\r\n\x1a\n"
T0 = pd.Timestamp("2026-04-01", tz="UTC")  # April: 30 days, a 43.2 min budget at 99.9 %


@pytest.fixture(scope="module")
def seeded(create_database: Any) -> Iterator[tuple[Database, HistorySummary]]:
    """A database of its own holding a synthetic week of 12 sites."""
    db = connect(create_database("uptimelab_report"))
    summary = write_history(db, "7d", sites=12, seed=7)
    yield db, summary
    db.close()


class Sections(HTMLParser):
    """Per <section id>: the images' sources; and every src/href in the document."""

    def __init__(self) -> None:
        super().__init__()
        self.images: dict[str, list[str]] = {}
        self.links: list[str] = []
        self.tags: set[str] = set()
        self._section: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self._section = found.get("id")
            self.images[str(self._section)] = []
        for name in ("src", "href"):
            if found.get(name):
                self.links.append(str(found[name]))
        if tag == "img" and self._section is not None:
            self.images[self._section].append(str(found.get("src")))


def test_the_report_has_every_section_with_a_plot(
    seeded: tuple[Database, HistorySummary], tmp_path: Path
) -> None:
    db, summary = seeded
    out = tmp_path / "sub" / "report.html"
    assert report.write_report(out, since="30d", db=db) == [out]
    text = out.read_text(encoding="utf-8")
    parsed = Sections()
    parsed.feed(text)
    assert tuple(parsed.images) == SECTIONS
    for section, sources in parsed.images.items():
        assert sources, f"no plot in section {section}"
        for src in sources:
            prefix = "data:image/png;base64,"
            assert src.startswith(prefix)
            assert base64.b64decode(src[len(prefix) :]).startswith(PNG)
    # Self-contained: nothing to fetch, only links to its own sections.
    assert all(link.startswith(("#", "data:")) for link in parsed.links)
    assert not parsed.tags & {"script", "link", "iframe"}
    # What the history planted shows up where it belongs.
    regressed = next(i.site for i in summary.incidents if i.kind == "regression")
    assert f"{regressed}: hourly median response time" in text
    assert "1 site(s) did" in text
    assert "2 gap(s) where the collector was not running" in text
    assert "3 collect --once cycle(s) overran the interval" in text


def test_an_empty_database_gives_a_report_that_says_so(db: Database, tmp_path: Path) -> None:
    out = tmp_path / "empty.html"
    report.write_report(out, db=db)
    text = out.read_text(encoding="utf-8")
    assert "No pings in the period." in text
    assert "Fewer than two stored cycles" in text


@pytest.mark.parametrize("format", ["csv", "parquet"])
def test_the_export_round_trips(
    seeded: tuple[Database, HistorySummary], tmp_path: Path, format: str
) -> None:
    db, summary = seeded
    written = report.write_report(tmp_path / "out", format=format, since="30d", db=db)
    assert [p.name for p in written] == [f"{n}.{format}" for n in ("pings", "outages", "stats")]
    back = report.read_export(tmp_path / "out", format)
    source = report.export_tables(stats.load_pings(db, since="30d"), analysis.site_names(db))
    assert list(back) == ["pings", "outages", "stats"]
    for name, frame in source.items():
        pd.testing.assert_frame_equal(back[name], frame, check_exact=True)
    assert len(back["pings"]) == summary.pings
    assert len(back["stats"]) == 12
    assert back["outages"]["ended_at"].isna().sum() == 1  # the ongoing outage survives as NaT
    assert back["pings"]["error_message"].isna().sum() > 0


def test_the_command_mirrors_write_report(
    seeded: tuple[Database, HistorySummary], tmp_path: Path
) -> None:
    db, _ = seeded
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = State(database_url=db.url)

    app.command("report")(report_command)
    runner = CliRunner()
    result = runner.invoke(app, ["report", "--out", str(tmp_path / "r.html"), "--since", "7d"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    assert (tmp_path / "r.html").stat().st_size > 50_000
    result = runner.invoke(app, ["report", "--out", str(tmp_path / "csv"), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert len(report.read_export(tmp_path / "csv")["stats"]) == 12
    bad = runner.invoke(app, ["report", "--out", str(tmp_path / "x.html"), "--since", "7x"])
    assert isinstance(bad.exception, ConfigError)
    assert str(bad.exception) == "--since='7x': use a positive duration like 60s, 5m, 1h or 7d"
    assert not (tmp_path / "x.html").exists()


def test_bad_arguments_are_config_errors(db: Database, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^format 'pdf' is not one of html, csv, parquet$"):
        report.write_report(tmp_path / "r.pdf", format="pdf", db=db)
    with pytest.raises(ConfigError, match="^out '.*' is a directory"):
        report.write_report(tmp_path, db=db)
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="^out '.*' is a file; exports go to a directory"):
        report.write_report(tmp_path / "file", format="csv", db=db)
    with pytest.raises(ConfigError, match="^target 100 is not a percentage"):
        report.write_report(tmp_path / "r.html", target=100, db=db)


def test_latency_shifts_flag_only_the_regressed_site(
    seeded: tuple[Database, HistorySummary],
) -> None:
    db, summary = seeded
    regression = next(i for i in summary.incidents if i.kind == "regression")
    shifts = analysis.latency_shifts(
        stats.load_pings(db, since="8d"), names=analysis.site_names(db)
    )
    assert shifts["site"][shifts["regressed"]].tolist() == [regression.site]
    top = shifts.iloc[0]
    assert top["ratio"] == pytest.approx(2.2, rel=0.2)
    assert abs(top["changed_at"] - regression.started_at) <= pd.Timedelta(hours=1)
    assert shifts["ratio"].iloc[1] < 1.3  # the daily rhythm cancels out


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_latency_shifts_place_the_change_within_an_hour(seed: int) -> None:
    history = synthetic_history(12, seed=seed, end=T0)
    regression = next(i for i in history.incidents if i.kind == "regression")
    shifts = analysis.latency_shifts(history.pings.rename(columns={"site": "site_id"}))
    assert shifts.index[shifts["regressed"]].tolist() == [regression.site]
    changed = shifts.loc[str(regression.site), "changed_at"]
    assert abs(changed - regression.started_at) <= pd.Timedelta(hours=1)


def pings_every_5_min(n: int, down: set[int], site: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "site_id": site,
            "checked_at": T0 + pd.to_timedelta(np.arange(n) * 5, unit="min"),
            "status": ["down" if i in down else "up" for i in range(n)],
            "response_time_ms": pd.array([100] * n, dtype="Int32"),
            "error_category": ["timeout" if i in down else None for i in range(n)],
            "location": "here",
        }
    )


def test_the_sla_table_counts_downtime_against_the_month_budget() -> None:
    a, b = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))
    pings = pd.concat(
        [pings_every_5_min(8640, {10, 11, 12}, a), pings_every_5_min(8640, set(range(10)), b)]
    )  # 30 days of April at 5 minutes: the whole month observed
    sla = analysis.sla_table(pings, target=99.9, names={a: "a"}).set_index("site_id")
    assert sla.loc[a, "month"] == "2026-04"
    assert sla.loc[a, "site"] == "a"
    assert sla.loc[b, "site"] == b
    assert sla.loc[a, "uptime_pct"] == pytest.approx(100 * 8637 / 8640)
    assert sla.loc[a, "downtime_min"] == pytest.approx(15.0)
    assert sla.loc[a, "budget_min"] == pytest.approx(43.2)
    assert sla.loc[a, "budget_used_pct"] == pytest.approx(100 * 15 / 43.2)
    assert sla.loc[a, "budget_left_min"] == pytest.approx(28.2)
    assert bool(sla.loc[a, "met"]) is True
    assert sla.loc[b, "downtime_min"] == pytest.approx(50.0)
    assert bool(sla.loc[b, "met"]) is False
    assert sla.index[0] == b  # most budget used first
    with pytest.raises(ValueError, match="between 0 and 100"):
        analysis.sla_table(pings, target=100)


@pytest.mark.parametrize("observed", [17, 288, 8640])
@pytest.mark.parametrize("down", [0, 1, 3, 16])
def test_the_sla_met_agrees_with_the_uptime_shown_however_little_of_the_month_is_observed(
    observed: int, down: int
) -> None:
    """A site up in 1 of its 17 pings did not meet 99.9 %, though its down pings x interval fit
    in the whole month's budget: met, the budget left and the uptime all say the same."""
    site = str(uuid.UUID(int=3))
    sla = analysis.sla_table(pings_every_5_min(observed, set(range(down)), site), target=99.9)
    (row,) = sla.to_dict("records")
    assert row["uptime_pct"] == pytest.approx(100 * (observed - down) / observed)
    assert bool(row["met"]) is (row["uptime_pct"] >= 99.9) is (row["budget_left_min"] >= 0)
    assert (row["budget_used_pct"] > 100) is (not row["met"])


def cycle(start_min: float, duration_min: float) -> dict[str, Any]:
    started = T0 + pd.Timedelta(minutes=start_min)
    return {
        "started_at": started,
        "finished_at": started + pd.Timedelta(minutes=duration_min),
        "location": "here",
    }


def test_collector_gaps_are_idle_time_not_overruns() -> None:
    starts = [0, 5, 10, 20, 25, 60, 65]  # 10 -> 20: an overrun skipped 15; 25 -> 60: down
    cycles = pd.DataFrame([cycle(s, 6 if s == 10 else 0.5) for s in starts])
    assert analysis.cycle_interval(cycles) == pd.Timedelta(minutes=5)
    gaps = analysis.collector_gaps(cycles)
    assert len(gaps) == 1
    assert gaps.loc[0, "started_at"] == T0 + pd.Timedelta(minutes=25.5)
    assert gaps.loc[0, "ended_at"] == T0 + pd.Timedelta(minutes=60)
    assert gaps.loc[0, "missed_cycles"] == 7
    later = analysis.collector_gaps(cycles, now=T0 + pd.Timedelta(hours=2))
    assert len(later) == 2
    assert pd.isna(later.loc[1, "ended_at"])
    assert later.loc[1, "duration"] == pd.Timedelta(minutes=120 - 65.5)


def test_only_collect_once_cycles_overrun_and_rounds_show_their_lateness() -> None:
    # Rounds of a running collector: 5 min apart, each 5 min and a bit long (by design), the
    # last one 40 s late. Then two collect --once cycles, one of 6 min: that is the overrun.
    rounds = [
        {**cycle(m, 5.05), "duration_ms": 303_000, "collector_id": "c1", "late_ms": late}
        for m, late in [(0, 0), (5, 1_500), (10, 40_000)]
    ]
    once = [
        {**cycle(m, d), "duration_ms": int(d * 60_000), "collector_id": None, "late_ms": None}
        for m, d in [(30, 6), (40, 0.5)]
    ]
    cycles = pd.DataFrame(rounds + once).assign(sites_checked=1, up=1, down=0, error=None)
    cycles["late_ms"] = cycles["late_ms"].astype("Int64")
    every = pd.Timedelta(minutes=5)
    assert overran(cycles, every).tolist() == [False, False, False, True, False]
    assert overran(cycles.drop(columns="collector_id"), every).sum() == 4  # no rounds known
    period = PeriodData(T0, T0 + pd.Timedelta(hours=1), {}, pd.DataFrame(), cycles, pd.DataFrame())
    text = str(_collector_section(period, 0.999).parts)
    assert "3 round(s) of a running collector" in text
    assert "at worst 40.0 s late" in text
    assert "1 collect --once cycle(s) overran the interval" in text
    labels = plots.cycle_durations(cycles, interval=every).axes[0].get_legend_handles_labels()[1]
    assert labels == [
        "collect --once cycle (2)",
        "overrun (1)",
        "round: how late (3)",
        "interval (5m)",
    ]


def test_perf_results_are_read_from_the_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "perf.json"
    monkeypatch.setenv(analysis.PERF_JSON_ENV, str(path))
    assert analysis.perf_results_path() == path
    assert analysis.load_perf_results() is None
    measures = [{"name": "cycle / ideal", "median": 1.22, "min": 1.15, "max": 1.28},
                {"name": "refresh", "median": 0.227, "unit": "s"}]  # fmt: skip
    path.write_text(json.dumps({"measures": measures}))
    perf = analysis.load_perf_results()
    assert perf is not None
    assert perf["measure"].tolist() == ["cycle / ideal", "refresh"]
    assert perf["unit"].tolist() == ["", "s"]
    assert np.isnan(perf.loc[1, "max"])
    path.write_text(json.dumps({"cycle_s": 2.1, "write_s": {"median": 0.015, "unit": "s"}}))
    assert analysis.load_perf_results()["median"].tolist() == [2.1, 0.015]  # type: ignore[index]
    path.write_text(json.dumps([{"name": "no median"}]))
    with pytest.raises(ValueError, match="no numeric median and no measured fields"):
        analysis.load_perf_results()


def test_perf_results_read_the_scenarios_uptimelab_perf_writes(tmp_path: Path) -> None:
    path = tmp_path / "perf.json"
    path.write_text(json.dumps(PERF_SCENARIOS))
    perf = analysis.load_perf_results(path)
    assert perf is not None
    small = perf.loc[perf["scenario"] == "small"].set_index("measure")
    # measures carry their unit in their name; sites, concurrency... describe the scenario
    assert small["unit"].to_dict() == {
        "cycle_s": "s", "ideal_s": "s", "ratio": "ratio", "pings_per_s": "per s",
        "cpu_ms_per_ping": "ms per ping", "peak_rss_mb": "MB",
    }  # fmt: skip
    assert (small.loc["cycle_s", "min"], small.loc["cycle_s", "max"]) == (0.4, 0.6)
    assert np.isnan(small.loc["ratio", "min"])
    assert plots.perf_results(perf).axes


# The shape of ``uptimelab perf --json`` (a list of its ScenarioResult records), trimmed.
PERF_SCENARIOS: Final = [
    {"name": name, "sites": sites, "concurrency": 10, "cycles": 3, "cycle_s": cycle,
     "ideal_s": cycle / 1.2, "ratio": 1.2, "pings_per_s": sites / cycle, "cpu_ms_per_ping": 1.1,
     "peak_rss_mb": 120.5, "stored_pings": 3 * sites, "cycle_times_s": [cycle - 0.1, cycle + 0.1],
     "within_interval": None}
    for name, sites, cycle in (("small", 5, 0.5), ("medium", 25, 1.5))
]  # fmt: skip


def test_html_tables_escape_values_and_mark_what_is_bad() -> None:
    frame = pd.DataFrame(
        {
            "site": ["<script>x</script>", "ok"],
            "current_status": ["down", "up"],
            "uptime_24h": [98.5, 99.95],
            "last_checked": [T0, pd.NaT],
            "mttr": [pd.Timedelta(minutes=65), pd.NaT],
        }
    )
    html = analysis.html_table(frame, percent=["uptime_24h"], target=99.9).html
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert html.count("font-weight:bold") == 2  # the down status and the uptime below target
    assert "99.950" in html
    assert "2026-04-01 00:00" in html
    assert "1h05m" in html
    assert html.count("<td>–</td>") == 2
    assert analysis.html_table(frame)._repr_html_() == analysis.html_table(frame).html


def test_figures_need_no_backend_and_are_not_kept(
    seeded: tuple[Database, HistorySummary],
) -> None:
    import matplotlib.pyplot as plt

    db, _ = seeded
    before = plt.get_fignums()
    fig = plots.uptime_heatmap(stats.load_pings(db, since=dt.timedelta(days=1)), freq="1h")
    assert fig.axes
    assert plt.get_fignums() == before


FACES: Final = {
    "stats": (
        "ERROR_CATEGORIES ERROR_DTYPE POLICIES SITE_STATS_WINDOWS STATUS_CATEGORIES "
        "STATUS_DTYPE WINDOWS certificate_expiry error_breakdown load_maintenance "
        "load_outages load_pings load_site_intervals load_site_settings load_window_stats "
        "location_stats outages phase_breakdown phase_quantiles ping_values quorum_stats "
        "quorum_uptime quorum_verdicts reliability response_time_quantiles uptime_series "
        "window_stats"
    ),
    "analysis": (
        "HtmlTable PERF_JSON_ENV collector_gaps cycle_interval fleet_table html_table "
        "latency_shifts load_cycles load_perf_results month_table perf_results_path "
        "round_lateness site_names site_summary sla_table"
    ),
    "plots": (
        "CATEGORY_COLOURS collector_timeline cycle_durations error_budget error_categories "
        "latency_shift outage_timeline perf_results phase_breakdown_chart pings_per_cycle "
        "response_time_distributions "
        "response_time_percentiles uptime_heatmap worst_sites"
    ),
}


@pytest.mark.parametrize("face", sorted(FACES))
def test_the_public_faces_export_the_same_sorted_names(face: str) -> None:
    module = {"stats": stats, "analysis": analysis, "plots": plots}[face]
    assert module.__all__ == sorted(module.__all__) == FACES[face].split()
    assert all(getattr(module, name) is not None for name in module.__all__)


@pytest.mark.parametrize(
    ("delta", "shown"),
    [
        (dt.timedelta(seconds=42), "42s"),
        (dt.timedelta(minutes=3, seconds=5), "3m05s"),
        (dt.timedelta(minutes=5), "5m"),
        (pd.Timedelta(minutes=65, seconds=59), "1h05m"),
        (dt.timedelta(hours=2), "2h"),
        (dt.timedelta(days=1, minutes=5), "1d00h05m"),
        (dt.timedelta(days=7), "7d"),
    ],
)
def test_durations_show_in_their_largest_units_without_trailing_zeros(
    delta: dt.timedelta, shown: str
) -> None:
    assert span(delta) == shown
