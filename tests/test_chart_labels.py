"""Text from data is shown as typed in every chart and in the HTML report: a site named like a
mathtext formula is neither typeset nor allowed to stop a chart."""

from __future__ import annotations

import html
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from uptimelab import analysis, plots, stats
from uptimelab.domain.sites import SiteSpec
from uptimelab.storage.database import Database, connect
from uptimelab.storage.site_import import upsert_sites
from uptimelab.storage.sites import list_sites
from uptimelab.testing.history import write_history

from .test_report import PERF_SCENARIOS

# Valid mathtext (typeset unless escaped), a formula mathtext cannot parse (raises when drawn),
# and the characters that mean something inside it.
HOSTILE: Final = r"$\frac{a}{b}$ $x^2$ 50% \\ _under_ $\nosuch{$"


@pytest.fixture(scope="module")
def hostile(create_database: Any) -> Iterator[Database]:
    """A synthetic day of 8 sites, each named HOSTILE and its number (names are unique)."""
    db = connect(create_database("uptimelab_labels"))
    write_history(db, "2d", sites=8, seed=7)
    specs = [
        (SiteSpec(url=s.url, name=f"{HOSTILE} #{i}", is_active=False), frozenset({"url", "name"}))
        for i, s in enumerate(list_sites(db=db))
    ]
    upsert_sites(specs, db=db)
    yield db
    db.close()


def shown(text: Text) -> str:
    """What matplotlib draws for ``text``: the string after its mathtext rule, or a marker when
    it would be typeset. ``_preprocess_math`` is private, but it is that rule itself."""
    string, math = text._preprocess_math(text.get_text())  # type: ignore[attr-defined]
    return "<mathtext>" if math else str(string)


def charts(db: Database, tmp_path: Path) -> dict[str, Figure]:
    """Every chart that shows text from data, drawn from the hostile database."""
    pings = stats.load_pings(db, since="7d")
    names = analysis.site_names(db)
    shifts = analysis.latency_shifts(pings, names=names)
    regressed = shifts.loc[shifts["regressed"].astype(bool)].iloc[0]
    perf_file = tmp_path / "perf.json"
    scenarios = [{**s, "name": f"{HOSTILE} {s['name']}"} for s in PERF_SCENARIOS]
    perf_file.write_text(json.dumps(scenarios))
    perf = analysis.load_perf_results(perf_file)
    assert perf is not None
    return {
        "worst_sites": plots.worst_sites(analysis.fleet_table(db), target=99.9),
        "uptime_heatmap": plots.uptime_heatmap(pings, names=names),
        "response_time_distributions": plots.response_time_distributions(pings, names=names),
        "latency_shift": plots.latency_shift(pings, regressed, names=names),
        "outage_timeline": plots.outage_timeline(stats.outages(pings), names=names),
        "error_budget": plots.error_budget(analysis.sla_table(pings, names=names)),
        "perf_results": plots.perf_results(perf),
        "phase_breakdown_chart": plots.phase_breakdown_chart(
            stats.phase_breakdown(pings, names=names)
        ),
    }


# The charts whose only text is our own (axis titles, error categories, collector lanes).
WITHOUT_DATA_TEXT: Final = {
    "collector_timeline",
    "cycle_durations",
    "error_categories",
    "pings_per_cycle",
    "response_time_percentiles",
}
CHARTS: Final = [
    "error_budget",
    "latency_shift",
    "outage_timeline",
    "perf_results",
    "phase_breakdown_chart",
    "response_time_distributions",
    "uptime_heatmap",
    "worst_sites",
]


def test_every_chart_is_either_checked_here_or_shows_no_text_from_data() -> None:
    functions = {name for name in plots.__all__ if callable(getattr(plots, name))}
    assert functions == WITHOUT_DATA_TEXT | set(CHARTS)


@pytest.fixture(scope="module")
def drawn(hostile: Database, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Figure]:
    return charts(hostile, tmp_path_factory.mktemp("perf"))


@pytest.mark.parametrize("chart", CHARTS)
def test_a_chart_shows_a_mathtext_like_name_as_typed(drawn: dict[str, Figure], chart: str) -> None:
    fig = drawn[chart]
    fig.savefig(io.BytesIO(), format="png")  # raised ValueError (mathtext) before the fix
    # Our own tick labels on a log scale are mathtext; only the names must not be.
    names = [t for t in fig.findobj(Text) if "_under_" in t.get_text()]
    assert names
    assert all(HOSTILE in shown(t) for t in names), [shown(t) for t in names]


def test_a_label_with_a_control_character_is_drawn_without_a_warning() -> None:
    # pytest's filterwarnings=error turns matplotlib's "Glyph 13 missing" into a failure.
    frame = pd.DataFrame({"site": ["\r=1+1", "tab\there"], "uptime_7d": [99.0, 98.0]})
    fig = plots.worst_sites(frame)
    fig.savefig(io.BytesIO(), format="png")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert sorted(labels) == [" =1+1", "tab here"]


def test_the_html_report_shows_a_mathtext_like_name_as_typed(
    hostile: Database, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    # A process of its own, as a user runs it: the command's connection closes with it.
    done = subprocess.run(
        [sys.executable, "-m", "uptimelab", "--database-url", hostile.url, "report", "--out",
         str(out), "--since", "7d"],
        capture_output=True, text=True, timeout=120, env=os.environ.copy(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no warning either
    page = out.read_text(encoding="utf-8")
    assert html.escape(f"{HOSTILE} #0") in page
    assert page.count("data:image/png;base64,") >= 9
