"""A month's SLA counts the downtime observed, from a site's first ping in the month through the
month's end or now, against the whole month's budget: never the future, never the time before
the site was watched."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uptimelab import analysis
from uptimelab.storage.database import Database

from .test_bad_input import run
from .test_bad_input_more import DAY, MONTH, month_of_pings

DECEMBER = pd.Timestamp("2026-12-01", tz="UTC")
DECEMBER_BUDGET_MIN = 31 * 24 * 60 * 0.001  # 44.64 min at 99.9 %


def pings(start: pd.Timestamp, statuses: list[str], every_min: float = 10.0) -> pd.DataFrame:
    n = len(statuses)
    return pd.DataFrame(
        {
            "site_id": str(uuid.UUID(int=7)),
            "checked_at": start + pd.to_timedelta(np.arange(n) * every_min, unit="min"),
            "status": statuses,
            "response_time_ms": pd.array([100] * n, dtype="Int32"),
            "error_category": [None if s == "up" else "timeout" for s in statuses],
            "location": "here",
        }
    )


def test_two_hours_into_a_month_count_two_hours_not_the_whole_month() -> None:
    """The report's case: 4 of 13 pings down, two hours into December: about 37 minutes down,
    not 30.8 % of 31 days."""
    statuses = ["down"] * 4 + ["up"] * 9
    now = DECEMBER + pd.Timedelta(hours=2)
    (row,) = analysis.sla_table(pings(DECEMBER, statuses), target=99.9, now=now).to_dict("records")
    assert row["observed_from"] == DECEMBER
    assert row["through"] == now
    assert row["observed_min"] == pytest.approx(120.0)
    assert row["downtime_min"] == pytest.approx(4 / 13 * 120)
    assert row["budget_min"] == pytest.approx(DECEMBER_BUDGET_MIN)
    assert row["budget_left_min"] == pytest.approx(DECEMBER_BUDGET_MIN - 4 / 13 * 120)
    assert bool(row["met"]) is True  # 36.9 min of a 44.6-min budget: not spent yet


def test_ten_minutes_of_data_are_at_most_ten_minutes_down() -> None:
    start = DECEMBER + pd.Timedelta(hours=1, minutes=50)
    now = DECEMBER + pd.Timedelta(hours=2)
    (row,) = analysis.sla_table(pings(start, ["down"] * 11, 1.0), now=now).to_dict("records")
    assert row["uptime_pct"] == 0
    assert row["downtime_min"] == pytest.approx(10.0)
    assert row["downtime_min"] < 44_640


def test_a_past_month_is_observed_to_its_end() -> None:
    start = pd.Timestamp("2026-04-30 12:00", tz="UTC")
    (row,) = analysis.sla_table(pings(start, ["down", "up"], 60.0)).to_dict("records")
    assert row["through"] == pd.Timestamp("2026-05-01", tz="UTC")
    assert row["observed_min"] == pytest.approx(12 * 60)
    assert row["downtime_min"] == pytest.approx(6 * 60)


@settings(max_examples=60, deadline=None)
@given(
    down=st.lists(st.booleans(), min_size=1, max_size=40),
    offset_h=st.integers(0, 24 * 30),
    now_h=st.integers(1, 24 * 40),
)
def test_met_is_the_budget_not_spent_and_downtime_never_exceeds_the_time_observed(
    down: list[bool], offset_h: int, now_h: int
) -> None:
    start = DECEMBER + pd.Timedelta(hours=offset_h)
    now = DECEMBER + pd.Timedelta(hours=now_h)
    frame = pings(start, ["down" if d else "up" for d in down])
    (row,) = analysis.sla_table(frame, target=99.9, now=now).to_dict("records")
    assert bool(row["met"]) is (row["budget_left_min"] >= 0) is (row["budget_used_pct"] <= 100)
    assert 0 <= row["downtime_min"] <= row["observed_min"] + 1e-9
    assert row["through"] <= DECEMBER + pd.Timedelta(days=31)
    assert row["observed_from"] == start
    if row["through"] < DECEMBER + pd.Timedelta(days=31):
        assert row["through"] == now


def test_the_month_from_the_database_counts_what_was_observed_and_from_the_months_start(
    db: Database,
) -> None:
    month = month_of_pings(db, ["up", "down", "down", "up"])
    now = DAY + dt.timedelta(hours=2)
    (row,) = analysis.month_table(db, month, target=99.9, now=now).to_dict("records")
    assert row["counted_from"] == pd.Timestamp("2026-10-01", tz="UTC")
    assert row["observed_from"] == DAY
    assert row["through"] == now
    assert row["observed_min"] == pytest.approx(120.0)
    assert row["downtime_min"] == pytest.approx(60.0)
    assert bool(row["met"]) is False  # 60 min > the 44.64-min budget of October
    by_pings = analysis.sla_table(
        pd.DataFrame(
            {
                "site_id": row["site_id"],
                "checked_at": [DAY + dt.timedelta(minutes=k) for k in range(4)],
                "status": ["up", "down", "down", "up"],
            }
        ),
        target=99.9,
        now=now,
    ).to_dict("records")[0]
    for column in ("uptime_pct", "observed_min", "downtime_min", "budget_left_min", "met"):
        assert row[column] == pytest.approx(by_pings[column]), column


def test_stats_month_shows_through_and_a_past_month_to_its_end(db: Database) -> None:
    month_of_pings(db, ["up"] * 3 + ["down"])
    shown = run("stats", "--month", MONTH, "--format", "json", "--target", "99.9")
    assert shown.returncode == 0, shown.stderr
    (row,) = json.loads(shown.stdout)
    assert row["through"] == "2026-11-01T00:00:00+00:00"
    assert row["counted_from"] == "2026-10-01T00:00:00+00:00"
    # from noon on the 10th to the month's end: 21.5 days, a quarter of them down
    assert row["downtime_min"] == pytest.approx(21.5 * 24 * 60 / 4)
    table = run("stats", "--month", MONTH)
    assert "through" in table.stdout
