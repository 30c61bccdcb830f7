"""Uptime policies (samples, confirmed, time), coverage and maintenance: the SQL reference, the
rollup path, the stored site_stats, pandas and a brute force agree exactly (issue 14 §4)."""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import uptimelab as ul
from uptimelab import stats
from uptimelab.api.app import create_app
from uptimelab.collector.collector import Collector
from uptimelab.config import Settings
from uptimelab.ops.health import health, status
from uptimelab.storage.database import Database
from uptimelab.storage.windows import (
    expand_maintenance,
    maintenance_windows,
    note_collector_uptime_settings,
    record_uptime_settings,
)

from .db_snapshot import empty_tables
from .test_api import running
from .test_site_stats import edges

US = dt.timedelta(microseconds=1)
MIN = dt.timedelta(minutes=1)
T = dt.datetime(2026, 6, 15, 12, 34, 56, 789012, tzinfo=dt.UTC)
T_HOUR = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
# (id, down_after, interval_ms, timeout_ms): NULLs take the defaults below.
SITES = [
    (uuid.UUID(int=1), 1, None, None),
    (uuid.UUID(int=2), 2, 60_000, 5_000),
    (uuid.UUID(int=3), 3, 120_000, None),
]
DEFAULT_INTERVAL_MS = 300_000
DEFAULT_TIMEOUT_MS = 10_000
LOCATIONS = ["eu-west", "us-east"]
WINDOWS = stats.SITE_STATS_WINDOWS
COLUMNS = [
    "site_id",
    *(f"uptime_{w}" for w in WINDOWS),
    *(f"avg_response_time_{w}" for w in WINDOWS),
    *(f"pings_{w}" for w in WINDOWS),
    *(f"coverage_{w}" for w in ("1h", "24h", "7d")),
    "current_status",
    "last_checked",
]


def settings_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "site_id": [str(s[0]) for s in SITES],
            "down_after": [s[1] for s in SITES],
            "interval_ms": pd.array([s[2] for s in SITES], dtype="Int64"),
            "timeout_ms": pd.array([s[3] for s in SITES], dtype="Int64"),
        }
    )


def reset(db: Database, policy: str = "samples", exclude: bool = False) -> None:
    with db.connect() as conn:
        empty_tables(conn, ["sites", "maintenance"])
        conn.execute(
            "UPDATE uptime_settings SET policy = %s, exclude_maintenance = %s, "
            "default_interval_ms = %s, default_timeout_ms = %s",
            (policy, exclude, DEFAULT_INTERVAL_MS, DEFAULT_TIMEOUT_MS),
        )
        for site, down_after, interval, timeout in SITES:
            conn.execute(
                "INSERT INTO sites (id, url, down_after, interval_ms, timeout_ms) "
                "VALUES (%s, %s, %s, %s, %s)",
                (site, f"http://{site}/", down_after, interval, timeout),
            )


def write(db: Database, rows: list[tuple[Any, ...]]) -> None:
    with (
        db.connect() as conn,
        conn.cursor().copy(
            "COPY pings (site_id, checked_at, status, response_time_ms, error_category, "
            "location, region_code) FROM STDIN"
        ) as copy,
    ):
        for site, at, loc, up, rt in rows:
            copy.write_row(
                (site, at, "up" if up else "down", rt, None if up else "timeout", loc, "XX")
            )


def histories(t: dt.datetime) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    # Runs need neighbours: pings on a minute grid make runs and short gaps common, random
    # instants make long gaps; edges put pings on every window and hour boundary.
    grid = st.integers(-40 * 24 * 60, 90).map(
        lambda m: t.replace(second=0, microsecond=0) + m * MIN
    )
    dense = st.integers(-200, 30).map(lambda m: t.replace(second=0, microsecond=0) + m * MIN)
    times = st.one_of(
        st.sampled_from(edges(t) + [t - dt.timedelta(days=30) + k * US for k in (-1, 0, 1)]),
        dense,
        dense,
        grid,
        st.integers(-31 * 24 * 3600 * 10**6, 2 * 3600 * 10**6).map(lambda us: t + us * US),
    )
    return st.lists(
        st.tuples(
            st.sampled_from([s[0] for s in SITES]),
            times,
            st.sampled_from(LOCATIONS),
            st.booleans(),
            st.one_of(st.none(), st.integers(0, 30_000)),
        ),
        max_size=70,
        unique_by=lambda r: (r[0], r[1], r[2]),
    )


def brute(
    rows: list[tuple[Any, ...]],
    now: dt.datetime,
    policy: str,
    windows_off: list[tuple[uuid.UUID | None, dt.datetime, dt.datetime]],
    exclude: bool,
) -> dict[str, dict[str, Any]]:
    """The definitions of sql/013, one ping at a time."""
    conf = {s[0]: s for s in SITES}
    value: dict[tuple[Any, ...], tuple[bool, int]] = {}
    for site, loc in {(r[0], r[2]) for r in rows}:
        series = sorted((r for r in rows if r[0] == site and r[2] == loc), key=lambda r: r[1])
        _, down_after, interval, timeout = conf[site]
        gap_us = 1000 * ((interval or DEFAULT_INTERVAL_MS) + (timeout or DEFAULT_TIMEOUT_MS))
        for i, r in enumerate(series):
            j = i
            while j > 0 and not series[j - 1][3]:
                j -= 1
            k = i
            while k + 1 < len(series) and not series[k + 1][3]:
                k += 1
            confirmed = not r[3] and k - j + 1 >= down_after
            following = series[i + 1][1] - r[1] if i + 1 < len(series) else None
            span = gap_us if following is None else min(gap_us, following // US)
            value[(site, r[1], loc)] = (confirmed, span)
    result: dict[str, dict[str, Any]] = {}
    for site in sorted({r[0] for r in rows if r[1] <= now}):
        mine = [r for r in rows if r[0] == site and r[1] <= now]
        interval = conf[site][2] or DEFAULT_INTERVAL_MS
        row: dict[str, Any] = {}
        for name, width in WINDOWS.items():
            received = [r for r in mine if now - width < r[1] <= now]
            inside = [
                r
                for r in received
                if not (
                    exclude
                    and any(
                        (owner is None or owner == site) and lo <= r[1] < hi
                        for owner, lo, hi in windows_off
                    )
                )
            ]
            up = [r for r in inside if r[3]]
            if policy == "samples":
                num, den = 100 * len(up), len(inside)
            elif policy == "confirmed":
                confirmed = [r for r in inside if value[(site, r[1], r[2])][0]]
                num, den = 100 * (len(inside) - len(confirmed)), len(inside)
            else:
                up_us = sum(value[(site, r[1], r[2])][1] for r in up)
                all_us = sum(value[(site, r[1], r[2])][1] for r in inside)
                num, den = 100 * up_us, all_us
            row[f"uptime_{name}"] = np.float32(float(num) / float(den)) if den else 0
            times_ms = [r[4] for r in up if r[4] is not None]
            mean = Fraction(sum(times_ms), len(times_ms)) if times_ms else Fraction(0)
            row[f"avg_response_time_{name}"] = math.floor(mean + Fraction(1, 2))
            row[f"pings_{name}"] = len(inside)
            if name != "30d":
                width_ms = width // dt.timedelta(milliseconds=1)
                share = float(100 * len(received) * interval) / float(width_ms)
                row[f"coverage_{name}"] = np.float32(min(100.0, share))
        latest = max(mine, key=lambda r: (r[1], r[2]))
        row["current_status"] = "up" if latest[3] else "down"
        row["last_checked"] = latest[1]
        result[str(site)] = row
    return result


def normalised(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for raw in rows:
        row = {k: raw[k] for k in COLUMNS}
        site = str(row.pop("site_id"))
        for key in list(row):
            if key.startswith(("uptime_", "coverage_")):
                row[key] = np.float32(row[key]).tobytes()
            elif key.startswith(("avg_", "pings_")):
                row[key] = int(row[key])
        row["current_status"] = str(row["current_status"])
        row["last_checked"] = pd.Timestamp(row["last_checked"]).tz_convert("UTC")
        out[site] = row
    return out


@pytest.fixture(autouse=True)
def default_settings(db_url: str) -> Iterator[None]:
    """Every test here sets the recorded policy; the next test file finds the defaults."""
    yield
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM uptime_settings")
        conn.execute("INSERT INTO uptime_settings DEFAULT VALUES")


@pytest.fixture(scope="module")
def partitioned(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        for day in range(-32, 2):
            conn.execute(
                "SELECT uptimelab_ensure_pings_partition(%s)", (T.date() + dt.timedelta(day),)
            )


maintenance_strategy = st.lists(
    st.tuples(
        st.sampled_from([None, SITES[0][0], SITES[1][0]]),
        st.integers(-8 * 24 * 60, 60).map(lambda m: T.replace(second=0, microsecond=0) + m * MIN),
        st.integers(1, 600).map(lambda m: m * MIN),
    ),
    max_size=3,
)


@pytest.mark.usefixtures("partitioned")
@settings(
    max_examples=12,  # each example builds and refreshes a history (seconds)
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    t=st.sampled_from([T, T_HOUR]),
    policy=st.sampled_from(["samples", "confirmed", "time"]),
    exclude=st.booleans(),
    # Where the rollup stops before the late half is written: nothing rolled up, inside the 30d,
    # 7d or 24h window, or just before t.
    rolled=st.sampled_from(
        [None, dt.timedelta(days=9), dt.timedelta(hours=30), dt.timedelta(hours=2)]
    ),
    off=maintenance_strategy,
    # How many dirty rows the settle after that advance takes: none, some, all.
    settle=st.sampled_from([0, 5, None]),
)
def test_every_policy_agrees_in_sql_rollups_pandas_and_by_brute_force(
    db: Database,
    data: st.DataObject,
    t: dt.datetime,
    policy: str,
    exclude: bool,
    rolled: dt.timedelta | None,
    off: list[tuple[uuid.UUID | None, dt.datetime, dt.timedelta]],
    settle: int | None,
) -> None:
    rows = data.draw(histories(t))
    late = data.draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    reset(db, policy, exclude)
    windows_off = [(site, lo, lo + length) for site, lo, length in off]
    with db.connect() as conn:
        for site, lo, hi in windows_off:
            conn.execute(
                "INSERT INTO maintenance (site_id, starts_at, ends_at) VALUES (%s, %s, %s)",
                (site, lo, hi),
            )
    # Half the pings before the rollup advances, the other half after it: below the watermark
    # they are late (a replay), and the rows around them become dirty.
    write(db, [r for r, later in zip(rows, late, strict=True) if not later])
    with db.connect() as conn:
        if rolled is not None:
            conn.execute("SELECT uptimelab_advance_rollup(%s)", (t - rolled,))
            conn.execute("SELECT uptimelab_settle_rollup(%s)", (settle,))
    write(db, [r for r, later in zip(rows, late, strict=True) if later])
    query = f"SELECT {', '.join(COLUMNS)} FROM {{}}(%s, %s, %s)"
    with db.connect() as conn:
        reference = conn.execute(
            query.format("uptimelab_site_stats_policy_reference"), (t, policy, exclude)
        ).fetchall()
        fast = conn.execute(
            query.format("uptimelab_site_stats_policy_at"), (t, policy, exclude)
        ).fetchall()
        conn.execute("SELECT uptimelab_refresh_site_stats(%s)", (t,))
        table = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM site_stats").fetchall()
        again = conn.execute(
            query.format("uptimelab_site_stats_policy_at"), (t, policy, exclude)
        ).fetchall()
    frame = stats.window_stats(
        stats.load_pings(db),
        t,
        policy=policy,
        windows=WINDOWS,
        coverage=True,
        sites=settings_frame(),
        default_interval_ms=DEFAULT_INTERVAL_MS,
        default_timeout_ms=DEFAULT_TIMEOUT_MS,
        maintenance=pd.DataFrame(windows_off, columns=["site_id", "starts_at", "ends_at"]),
        exclude_maintenance=exclude,
    )
    expected = normalised(
        [{"site_id": k, **v} for k, v in brute(rows, t, policy, windows_off, exclude).items()]
    )
    assert normalised(reference) == expected
    assert normalised(fast) == expected
    assert normalised(table) == expected
    assert normalised(again) == expected
    assert normalised(frame.to_dict("records")) == expected


def test_samples_counts_every_down_ping(db: Database) -> None:
    # One location, a minute apart: up, down (a retry that recovered), up, down, down, up.
    reset(db, "samples")
    site = SITES[1][0]  # down_after 2, interval 60 s, timeout 5 s
    statuses = [True, False, True, False, False, True]
    write(db, [(site, T - (6 - i) * MIN, "x", up, 100) for i, up in enumerate(statuses)])
    row = ul.stats.load_window_stats(db, window="1h", at=T, policy="samples").iloc[0]
    assert row["uptime"] == pytest.approx(100 * 3 / 6)


def test_confirmed_counts_a_single_retry_as_up(db: Database) -> None:
    reset(db, "confirmed")
    site = SITES[1][0]
    statuses = [True, False, True, False, False, True]
    write(db, [(site, T - (6 - i) * MIN, "x", up, 100) for i, up in enumerate(statuses)])
    row = ul.stats.load_window_stats(db, window="1h", at=T, policy="confirmed").iloc[0]
    # The lone down ping never became an incident; the two in a row did.
    assert row["uptime"] == pytest.approx(100 * 4 / 6)


def test_time_weighs_each_ping_by_the_time_to_the_next(db: Database) -> None:
    reset(db, "time")
    site = SITES[1][0]  # a ping answers for at most 60 + 5 s
    at = [T - 30 * MIN, T - 29 * MIN, T - 28 * MIN, T - 10 * MIN, T - 9 * MIN]
    statuses = [True, True, False, True, True]
    write(db, [(site, a, "x", up, 100) for a, up in zip(at, statuses, strict=True)])
    row = ul.stats.load_window_stats(db, window="1h", at=T, policy="time").iloc[0]
    # up: 60 s + 60 s + 60 s + 65 s (the latest, no next yet); down: 65 s (18 min to the next
    # ping: the rest of that gap is unknown).
    assert row["uptime"] == pytest.approx(100 * 245 / (245 + 65))


def test_coverage_counts_pings_received_against_pings_expected(db: Database) -> None:
    reset(db)
    site = SITES[1][0]  # every minute: 60 expected in an hour
    write(db, [(site, T - m * MIN, loc, True, 10) for m in range(30) for loc in ("a",)])
    write(db, [(SITES[0][0], T - m * MIN, loc, True, 10) for m in range(30) for loc in "ab"])
    ul.refresh_stats(at=T, db=db)
    by_site = {s.site_id: s for s in ul.site_stats(db=db)}
    assert by_site[site].coverage_1h == pytest.approx(50.0)
    # Two locations pooled, every 5 min by default: 60 pings for 12 expected, capped.
    assert by_site[SITES[0][0]].coverage_1h == pytest.approx(100.0)
    assert by_site[site].coverage_24h == pytest.approx(100 * 30 / 1440, rel=1e-6)


@pytest.mark.parametrize("recurring", [False, True])
def test_maintenance_excluded_leaves_uptime_unchanged_by_a_planned_outage(
    db: Database, recurring: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    reset(db, "samples", exclude=True)
    site = SITES[1][0]
    start = T.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=3)
    pings = [(site, start + m * MIN, "x", not 60 <= m < 90, 50) for m in range(180)]
    write(db, pings)
    with db.connect() as conn:
        if recurring:
            # Every day at the outage's hour and minute, for 30 minutes.
            conn.execute(
                "INSERT INTO maintenance (site_id, starts_at, cron, duration_ms) "
                "VALUES (%s, %s, %s, %s)",
                (
                    site,
                    start - dt.timedelta(days=3),
                    f"{start.minute} {start.hour + 1} * * *",
                    1_800_000,
                ),
            )
        else:
            conn.execute(
                "INSERT INTO maintenance (site_id, starts_at, ends_at) VALUES (%s, %s, %s)",
                (site, start + 60 * MIN, start + 90 * MIN),
            )
    expand_maintenance(T, db=db)
    windows = maintenance_windows(start, T, db=db)
    assert [(w["starts_at"], w["ends_at"]) for w in windows] == [
        (start + 60 * MIN, start + 90 * MIN)
    ]
    excluded = ul.stats.load_window_stats(db, window="24h", at=T, exclude_maintenance=True)
    counted = ul.stats.load_window_stats(db, window="24h", at=T, exclude_maintenance=False)
    assert excluded.iloc[0]["uptime"] == 100.0
    assert excluded.iloc[0]["pings"] == 150
    assert counted.iloc[0]["uptime"] == pytest.approx(100 * 150 / 180)
    monkeypatch.setenv("UPTIME_EXCLUDE_MAINTENANCE", "true")
    ul.refresh_stats(at=T, db=db)
    assert ul.site_stats(db=db)[0].uptime_24h == 100.0
    assert ul.site_stats(db=db)[0].maintenance_excluded


async def test_the_api_computes_site_stats_under_a_policy(db: Database) -> None:
    reset(db, "samples")
    site = SITES[1][0]
    statuses = [True, False, True, False, False, True]
    now = dt.datetime.now(dt.UTC)
    with db.connect() as conn:
        for day in (-1, 0, 1):
            conn.execute(
                "SELECT uptimelab_ensure_pings_partition(%s)", (now.date() + dt.timedelta(day),)
            )
    write(db, [(site, now - (6 - i) * MIN, "x", up, 100) for i, up in enumerate(statuses)])
    ul.refresh_stats(db=db)
    async with running(create_app(Settings.load(), db)) as client:
        stored = (await client.get("/site-stats")).json()
        confirmed = (await client.get("/site-stats", params={"policy": "confirmed"})).json()
        bad = await client.get("/site-stats", params={"policy": "strict"})
    assert isinstance(confirmed, list), confirmed
    assert stored[0]["policy"] == "samples"
    assert confirmed[0]["policy"] == "confirmed"
    assert confirmed[0]["pings_1h"] == stored[0]["pings_1h"]
    assert (stored[0]["uptime_1h"], confirmed[0]["uptime_1h"]) == (50.0, pytest.approx(66.66667))
    assert bad.status_code == 422


# -- the policy in force: recorded when given, adopted by collectors, shown --------------------


def recorded(db: Database) -> tuple[str, bool, str | None]:
    with db.connect() as conn:
        row = conn.execute(
            "SELECT policy, exclude_maintenance, changed_by FROM uptime_settings"
        ).fetchone()
    assert row is not None
    return row["policy"], row["exclude_maintenance"], row["changed_by"]


def recorded_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The collector's log lines saying it recorded its uptime settings."""
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("recorded ")]


def test_the_recorded_policy_changes_only_when_one_is_given(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UPTIME_POLICY", raising=False)
    monkeypatch.delenv("UPTIME_EXCLUDE_MAINTENANCE", raising=False)
    record_uptime_settings(Settings.load(uptime_policy="time"), db=db)
    policy, exclude, by = recorded(db)
    assert (policy, exclude) == ("time", False)
    assert by is not None
    assert by.startswith("refresh on ")
    # Nothing given (a `maintain` from cron, a notebook's refresh): the policy stays.
    record_uptime_settings(Settings.load(), db=db)
    ul.refresh_stats(db=db)
    assert recorded(db)[:2] == ("time", False)
    monkeypatch.setenv("UPTIME_EXCLUDE_MAINTENANCE", "true")
    ul.refresh_stats(db=db)
    assert recorded(db)[:2] == ("time", True)
    record_uptime_settings(Settings.load(uptime_policy="samples"), db=db)
    assert recorded(db)[:2] == ("samples", True)


async def test_a_collector_started_with_a_policy_records_it_and_refreshes_site_stats(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    reset(db, "samples")
    site = SITES[1][0]  # down_after 2
    now = dt.datetime.now(dt.UTC)
    with db.connect() as conn:
        for day in (-1, 0, 1):
            conn.execute(
                "SELECT uptimelab_ensure_pings_partition(%s)", (now.date() + dt.timedelta(day),)
            )
        conn.execute("UPDATE sites SET is_active = false")  # nothing for the collector to probe
    statuses = [True, False, True, False, False, True]
    write(db, [(site, now - (6 - i) * MIN, "x", up, 100) for i, up in enumerate(statuses)])
    ul.refresh_stats(db=db)
    before = ul.get_site_stats(site, db=db)
    assert before is not None
    assert (before.policy, before.uptime_1h) == ("samples", pytest.approx(50.0))

    collector = Collector(db, Settings.load(database_url=db.url, uptime_policy="confirmed"))
    with caplog.at_level(logging.INFO, logger="uptimelab.collector"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(collector.run)
            with trio.fail_after(60):  # a guard against a hang: the log line is waited on
                while not recorded_lines(caplog):  # noqa: ASYNC110
                    await trio.sleep(0.02)
            collector.stop()
    (line,) = recorded_lines(caplog)
    assert line.startswith(
        "recorded UPTIME_POLICY=confirmed, UPTIME_EXCLUDE_MAINTENANCE=false "
        "(was UPTIME_POLICY=samples, UPTIME_EXCLUDE_MAINTENANCE=false): site_stats of "
    ), line
    assert " site(s) refreshed under it in " in line
    policy, _, by = recorded(db)
    assert policy == "confirmed"
    assert by is not None
    assert by.startswith("collector ")
    after = ul.get_site_stats(site, db=db)
    assert after is not None
    # The lone down ping was a retry: under `confirmed` it counts as up.
    assert (after.policy, after.uptime_1h) == ("confirmed", pytest.approx(100 * 4 / 6))


def test_a_collector_given_no_policy_notes_nothing_and_follows_the_recorded_one(
    db: Database,
) -> None:
    reset(db, "time")
    me = uuid.uuid4()
    with db.connect() as conn:
        assert note_collector_uptime_settings(conn, me, Settings.load()) is None
        same = note_collector_uptime_settings(conn, me, Settings.load(uptime_policy="time"))
        assert same is None  # given, but what is recorded already
        noted = conn.execute("SELECT policy, exclude_maintenance FROM collector_uptime_settings")
        assert noted.fetchall() == [{"policy": "time", "exclude_maintenance": None}]
    assert recorded(db)[:2] == ("time", False)


def test_health_and_status_report_a_collector_whose_policy_was_recorded_over(
    db: Database,
) -> None:
    reset(db, "samples")
    me = uuid.uuid4()
    with db.connect() as conn:
        conn.execute(
            "INSERT INTO collectors (id, host, pid, location, region_code) "
            "VALUES (%s, 'box', 4242, 'eu-west', 'EU')",
            (me,),
        )
        change = note_collector_uptime_settings(conn, me, Settings.load(uptime_policy="time"))
    assert change is not None
    assert (change[0].policy, change[1].policy) == ("samples", "time")
    checks = {c.name: c for c in health(db=db).checks}
    assert checks["uptime"].status == "healthy", checks["uptime"].detail
    assert "UPTIME_POLICY=time" in checks["uptime"].detail

    # Another process is given its own policy explicitly and records it.
    record_uptime_settings(Settings.load(uptime_policy="samples"), db=db)
    checks = {c.name: c for c in health(db=db).checks}
    check = checks["uptime"]
    assert check.status == "degraded"
    assert "\n" not in check.detail
    assert f"collector {str(me)[:8]} on box pid 4242 (eu-west) was started with " in check.detail
    assert "UPTIME_POLICY=time" in check.detail
    assert "kept under UPTIME_POLICY=samples" in check.detail
    shown = status(db=db).database.uptime
    assert shown is not None
    assert (shown.policy, shown.exclude_maintenance) == ("samples", False)
    assert shown.changed_by is not None
    assert shown.changed_by.startswith("refresh on ")
    assert len(shown.disagreeing) == 1
    assert "UPTIME_POLICY=time" in shown.disagreeing[0]

    with db.connect() as conn:  # it stopped: nothing disagrees any more
        conn.execute("UPDATE collectors SET stopped_at = now()")
    assert {c.name: c for c in health(db=db).checks}["uptime"].status == "healthy"
