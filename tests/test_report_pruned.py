"""The HTML report over pruned days without an archive says which days are missing from its raw
pings, and its SLA table agrees with `stats --month` (both read the rollups for those days)."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

import uptimelab as ul
from uptimelab import analysis
from uptimelab.report import load_period
from uptimelab.report.html import render_html
from uptimelab.storage.database import Database
from uptimelab.storage.retention import prune

from .test_bad_input import run


def ping_days(db: Database, days: dict[dt.date, list[str]]) -> str:
    site = ul.add_site("https://pruned.example/", name="pruned", db=db)
    with db.connect() as conn:
        for day, statuses in days.items():
            conn.execute("SELECT uptimelab_ensure_pings_partition(%s)", (day,))
            noon = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
            for k, status in enumerate(statuses):
                conn.execute(
                    "INSERT INTO pings (site_id, checked_at, status, status_code, "
                    "response_time_ms, error_category, location, region_code) VALUES (%s, %s, "
                    "%s, 200, 5, %s, 'here', 'XX')",
                    (site.id, noon + dt.timedelta(minutes=k), status,
                     None if status == "up" else "timeout"),
                )  # fmt: skip
        conn.execute("SELECT uptimelab_advance_rollup(now())")
    return str(site.id)


def test_the_report_names_the_pruned_days_and_its_sla_agrees_with_stats_month(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARCHIVE_DIR", raising=False)
    today = dt.datetime.now(dt.UTC).date()
    first, second = today - dt.timedelta(days=20), today - dt.timedelta(days=19)
    ping_days(db, {first: ["down"] * 5 + ["up"] * 5, second: ["up"] * 10})
    start_of_second = dt.datetime.combine(second, dt.time(), tzinfo=dt.UTC)
    result = prune(
        dt.timedelta(days=10), archive=None, db=db, now=start_of_second + dt.timedelta(days=10)
    )
    pruned = {d.day for d in result.pruned}  # with the empty partitions of other tests
    assert first in pruned
    assert second not in pruned

    data = load_period(db, "30d")
    assert data.missing_days == (first,)
    assert len(data.pings) == 10  # the second day's only: the first day's raw pings are gone
    assert data.months is not None
    months = sorted(set(data.months["month"]))
    assert sum(data.months["pings"]) == 20  # the rollups count the pruned day
    for month in months:
        mine = data.months[data.months["month"] == month].to_dict("records")
        theirs = analysis.month_table(db, month).to_dict("records")
        assert [r["pings"] for r in mine] == [r["pings"] for r in theirs]
        assert [r["uptime_pct"] for r in mine] == pytest.approx([r["uptime_pct"] for r in theirs])
        shown = run("stats", "--month", month, "--format", "json")
        assert shown.returncode == 0, shown.stderr
        cli = json.loads(shown.stdout)
        assert [r["pings"] for r in cli] == [r["pings"] for r in mine]
        assert [r["uptime_pct"] for r in cli] == pytest.approx([r["uptime_pct"] for r in mine])

    page = render_html(data, target=99.9)
    assert "Missing from raw pings: 1 pruned day(s)" in page
    assert str(first) in page


def test_a_report_without_pruned_days_says_nothing_of_them(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARCHIVE_DIR", raising=False)
    ping_days(db, {dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2): ["up", "down"]})
    data = load_period(db, "30d")
    assert data.missing_days == ()
    assert "Missing from raw pings" not in render_html(data)
    assert isinstance(data.months, pd.DataFrame)
