"""Long windows (issue 15 §2): any window from the rollups kept for ever, exact against raw pings
while they exist, from whole hours once the far edge is pruned; a run across an hour and a day
boundary; calendar months."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import uptimelab as ul
from uptimelab import analysis, stats
from uptimelab.storage.database import Database
from uptimelab.storage.retention import prune

from .test_cli import run
from .test_policies import (  # default_settings: autouse here too
    DEFAULT_INTERVAL_MS,
    DEFAULT_TIMEOUT_MS,
    SITES,
    default_settings,  # noqa: F401
    reset,
    settings_frame,
    write,
)

MIN = dt.timedelta(minutes=1)
US = dt.timedelta(microseconds=1)
# Ten days before the end of October 2026, mid-hour.
T = dt.datetime(2026, 10, 31, 18, 20, 30, 123456, tzinfo=dt.UTC)
WINDOW_COLUMNS = ["uptime", "avg_response_time", "pings", "coverage"]


@pytest.fixture(scope="module")
def partitioned(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        for day in range(-100, 2):
            conn.execute(
                "SELECT uptimelab_ensure_pings_partition(%s)", (T.date() + dt.timedelta(day),)
            )


def compare(
    db: Database,
    t: dt.datetime,
    width: dt.timedelta,
    policy: str,
    pings: pd.DataFrame | None = None,
) -> None:
    """uptimelab_window_at = uptimelab_window_reference = window_stats, digit for digit.

    ``pings`` is ``stats.load_pings(db)`` when the caller has it already (loaded when not)."""
    with db.connect() as conn:
        fast = conn.execute(
            "SELECT site_id, uptime, avg_response_time, pings, coverage, from_rollups "
            "FROM uptimelab_window_at(%s, %s, %s, false) ORDER BY site_id",
            (t, width, policy),
        ).fetchall()
        reference = conn.execute(
            "SELECT site_id, uptime, avg_response_time, pings, coverage "
            "FROM uptimelab_window_reference(%s, %s, %s, false) ORDER BY site_id",
            (t, width, policy),
        ).fetchall()
    assert not any(r.pop("from_rollups") for r in fast)
    assert fast == reference
    frame = stats.window_stats(
        stats.load_pings(db) if pings is None else pings,
        t,
        policy=policy,
        windows={"w": pd.Timedelta(width)},
        coverage=True,
        sites=settings_frame(),
        default_interval_ms=DEFAULT_INTERVAL_MS,
        default_timeout_ms=DEFAULT_TIMEOUT_MS,
    )
    frame = frame[frame["pings_w"] > 0]
    assert [str(r["site_id"]) for r in reference] == [str(s) for s in frame["site_id"]]
    for row, (_, mine) in zip(reference, frame.iterrows(), strict=True):
        # REAL in the database, float32 in pandas: the same bits.
        assert np.float32(row["uptime"]).tobytes() == np.float32(mine["uptime_w"]).tobytes()
        assert row["avg_response_time"] == mine["avg_response_time_w"]
        assert row["pings"] == mine["pings_w"]
        assert np.float32(row["coverage"]).tobytes() == np.float32(mine["coverage_w"]).tobytes()


def history(draw: Any) -> list[tuple[Any, ...]]:
    """Hourly pings over 95 days, with bursts of minute pings (runs across boundaries)."""
    rows: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    hours = draw(st.lists(st.integers(1, 95 * 24), min_size=5, max_size=60))
    for h in hours:
        site = draw(st.sampled_from([s[0] for s in SITES]))
        loc = draw(st.sampled_from(["a", "b"]))
        at = T.replace(minute=0, second=0, microsecond=0) - h * dt.timedelta(hours=1)
        statuses = draw(st.lists(st.booleans(), min_size=1, max_size=6))
        offset = draw(st.integers(-4, 2))
        for i, up in enumerate(statuses):
            when = at + (offset + i) * MIN + draw(st.sampled_from([dt.timedelta(0), 7 * US]))
            rows[(site, when, loc)] = (site, when, loc, up, draw(st.integers(0, 900)))
    return list(rows.values())


@pytest.mark.usefixtures("partitioned")
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    policy=st.sampled_from(["samples", "confirmed", "time"]),
    rolled=st.sampled_from([None, dt.timedelta(days=40), dt.timedelta(hours=5)]),
)
def test_any_window_from_rollups_is_exact_against_raw_pings(
    db: Database, data: st.DataObject, policy: str, rolled: dt.timedelta | None
) -> None:
    rows = data.draw(st.composite(lambda draw: history(draw))())
    late = data.draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    reset(db, policy)
    write(db, [r for r, later in zip(rows, late, strict=True) if not later])
    with db.connect() as conn:
        conn.execute("SELECT uptimelab_advance_rollup(%s)", (T if rolled is None else T - rolled,))
    write(db, [r for r, later in zip(rows, late, strict=True) if later])
    # The pings are all written: the advances and settles below move only the rollups, so the
    # pandas side reads the pings once (an ADBC connection and a load per compare was a third of
    # this test's time).
    pings = stats.load_pings(db)
    for width in (dt.timedelta(days=90), dt.timedelta(days=45, hours=3), dt.timedelta(hours=30)):
        compare(db, T, width, policy, pings)
    with db.connect() as conn:
        conn.execute("SELECT uptimelab_settle_rollup(NULL)")
    compare(db, T, dt.timedelta(days=90), policy, pings)
    with db.connect() as conn:
        conn.execute("SELECT uptimelab_advance_rollup(now())")
        conn.execute("SELECT uptimelab_settle_rollup(%s)", (data.draw(st.sampled_from([3, None])),))
    compare(db, T, dt.timedelta(days=90), policy, pings)
    compare(db, T - dt.timedelta(days=3, minutes=17), dt.timedelta(days=61), policy, pings)


@pytest.mark.parametrize("advance_between", [False, True])
def test_a_run_across_an_hour_and_a_day_boundary_is_confirmed_in_the_rollups(
    db: Database, advance_between: bool
) -> None:
    reset(db, "confirmed")
    site = SITES[2][0]  # down_after 3
    midnight = dt.datetime(2026, 10, 20, tzinfo=dt.UTC)
    # up, then down at 23:58 and 23:59 (a run of two: not yet an incident) ...
    first = [(site, midnight - 3 * MIN, "a", True, 10)]
    first += [(site, midnight - m * MIN, "a", False, None) for m in (2, 1)]
    # ... and the third down ping after midnight confirms it; a lone down ping later does not.
    second = [(site, midnight + MIN, "a", False, None), (site, midnight + 2 * MIN, "a", True, 9)]
    second += [(site, midnight + 70 * MIN, "a", False, None)]
    second += [(site, midnight + 71 * MIN, "a", True, 9)]
    write(db, first)
    with db.connect() as conn:
        if advance_between:
            # The rollup passes 23:00 and midnight while the run is two pings long.
            conn.execute("SELECT uptimelab_advance_rollup(%s)", (midnight + 30 * US,))
            new_rows = conn.execute("SELECT count(*) AS n FROM ping_rollup_dirty").fetchone()
            assert new_rows == {"n": 1}
            conn.execute("SELECT uptimelab_settle_rollup(NULL)")
            dirty = conn.execute("SELECT hour FROM ping_rollup_dirty").fetchall()
            assert [r["hour"] for r in dirty] == [midnight - dt.timedelta(hours=1)]
    write(db, second)
    with db.connect() as conn:
        conn.execute("SELECT uptimelab_advance_rollup(now())")
        assert conn.execute("SELECT uptimelab_settle_rollup(2)").fetchone() == {
            "uptimelab_settle_rollup": 2
        }
        conn.execute("SELECT uptimelab_settle_rollup(NULL)")
        hourly = conn.execute(
            "SELECT hour, pings, pings_down_confirmed FROM ping_rollup_hourly ORDER BY hour"
        ).fetchall()
        daily = conn.execute(
            "SELECT day, pings, pings_down_confirmed FROM ping_rollup_daily ORDER BY day"
        ).fetchall()
        dirty_after = conn.execute("SELECT count(*) AS n FROM ping_rollup_dirty").fetchone()
    assert [(r["pings"], r["pings_down_confirmed"]) for r in hourly] == [(3, 2), (2, 1), (2, 0)]
    assert [(r["day"], r["pings"], r["pings_down_confirmed"]) for r in daily] == [
        (midnight - dt.timedelta(days=1), 3, 2),
        (midnight, 4, 1),
    ]
    assert dirty_after is not None
    assert dirty_after["n"] == 0
    window = ul.stats.load_window_stats(db, "3d", at=midnight + dt.timedelta(days=1))
    assert window["pings"].tolist() == [7]
    assert window["uptime"].tolist() == [pytest.approx(100 * 4 / 7)]
    compare(db, midnight + dt.timedelta(days=1), dt.timedelta(days=3), "confirmed")


@pytest.mark.parametrize("minute", [0, 29, 59])
def test_a_window_whose_far_edge_is_pruned_comes_from_whole_hours_and_says_so(
    db: Database, tmp_path: Any, minute: int
) -> None:
    reset(db, "time")
    # At a few positions in the hour rather than wherever the clock stands (CI once ran it at a
    # minute where the window's far edge sat just before a whole hour).
    now = dt.datetime.now(dt.UTC)
    now -= dt.timedelta(minutes=(now.minute - minute) % 60)
    site = SITES[1][0]
    with db.connect() as conn:
        for day in range(-13, 2):
            conn.execute(
                "SELECT uptimelab_ensure_pings_partition(%s)", (now.date() + dt.timedelta(day),)
            )
    rows = [
        (site, now - k * 7 * MIN - 3 * US, loc, k % 11 != 0, 100 + k % 50)
        for k in range(1, 12 * 24 * 60 // 7)
        for loc in ("a", "b")
    ]
    write(db, rows)
    ul.refresh_stats(db=db)
    # The far edge at half past an hour, so that raw pings (one every 7 minutes) fall between it
    # and the first whole hour whatever the time of day: a fixed 10d30m put the edge at 23 to 30
    # minutes past, some hours, with no ping before the whole hour to lose.
    edge = (now - dt.timedelta(days=10)).replace(minute=30, second=0, microsecond=0)
    if edge > now - dt.timedelta(days=10):
        edge -= dt.timedelta(hours=1)
    window = now - edge
    before = ul.stats.load_window_stats(db, window, at=now, policy="time")
    assert not before["from_rollups"].any()
    a = (now - window).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    with db.connect() as conn:
        whole_hours = conn.execute(
            "SELECT uptime, pings FROM uptimelab_window_reference(%s, %s, 'time', false)",
            (now, now - a + US),
        ).fetchone()
    prune(dt.timedelta(days=9), archive=tmp_path / "archive", db=db, now=now)
    after = ul.stats.load_window_stats(db, window, at=now, policy="time")
    assert after["from_rollups"].tolist() == [True]
    assert after["counted_from"].tolist() == [pd.Timestamp(a)]
    assert whole_hours is not None
    assert after["pings"].tolist() == [whole_hours["pings"]]
    assert after["uptime"].iloc[0] == np.float32(whole_hours["uptime"])
    assert after["pings"].iloc[0] < before["pings"].iloc[0]
    # A window inside what is still raw stays exact and unflagged.
    recent = ul.stats.load_window_stats(db, "2d", at=now, policy="time")
    assert not recent["from_rollups"].any()
    # The CLI ends its windows at the wall clock, up to an hour after `now` and perhaps on the
    # next UTC day, where a 10d window no longer reaches the pruned days (the pings are kept
    # from midnight of now - 9d): its windows are long enough to reach them from either.
    shown = run("stats", "--window", "10d12h", "--policy", "time")
    assert shown.returncode == 0, shown.stderr
    assert "from rollups" in shown.stdout
    listed = json.loads(run("stats", "--window", "11d", "--format", "json").stdout)
    assert listed[0]["from_rollups"] is True


def test_a_calendar_month_from_the_database_and_from_pings_agree(db: Database) -> None:
    reset(db, "samples")
    site = SITES[1][0]
    start = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    rows = [(site, start + k * 97 * MIN, "a", k % 13 != 0, 120) for k in range(30 * 24 * 60 // 97)]
    rows += [
        (site, start - MIN, "a", False, None),
        (site, start + dt.timedelta(days=30), "a", False, None),
    ]
    write(db, rows)
    with db.connect() as conn:
        for day in range(-1, 32):
            conn.execute(
                "SELECT uptimelab_ensure_pings_partition(%s)", (start.date() + dt.timedelta(day),)
            )
        conn.execute("SELECT uptimelab_advance_rollup(now())")
    month = analysis.month_table(db, "2026-09", target=99.0)
    by_pings = analysis.sla_table(stats.load_pings(db), target=99.0)
    september = by_pings[by_pings["month"] == "2026-09"].reset_index(drop=True)
    assert month["pings"].tolist() == september["pings"].tolist()
    assert month["uptime_pct"].tolist() == pytest.approx(september["uptime_pct"].tolist())
    assert month["budget_min"].tolist() == september["budget_min"].tolist()
    assert month["from_rollups"].tolist() == [False]
    shown = run("stats", "--month", "2026-09", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)[0]["pings"] == month["pings"].iloc[0]
    bad = run("stats", "--month", "2026-13")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: --month: month '2026-13' is not a month")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--window", "30m"], "error: --window: window 0:30:00 is shorter than an hour"),
        (["--window", "soon"], "error: --window="),
        (["--policy", "strict"], "error: --policy: policy 'strict' is not one of"),
        (["--window", "2d", "--month", "2026-01"], "error: --window and --month"),
    ],
)
def test_bad_window_options_are_one_line_errors(
    db: Database, args: list[str], message: str
) -> None:
    done = run("stats", *args)
    assert done.returncode == 2
    assert done.stderr.startswith(message), done.stderr
    assert ul.site_stats(db=db) == []
