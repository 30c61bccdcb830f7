"""site_stats: the reference view, the rollup path, window_stats and a brute force agree exactly."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import uuid
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
from uptimelab.collector import Collector
from uptimelab.config import Settings
from uptimelab.storage.database import Database
from uptimelab.testing.zoo import ZooSpec, open_zoo

from .db_snapshot import empty_tables
from .test_cli import run
from .test_stats import model

US = dt.timedelta(microseconds=1)
SITES = [uuid.UUID(int=i) for i in (1, 2, 3)]
LOCATIONS = ["eu-west", "us-east", "Zurich"]  # "Zurich" sorts first by code point, last by locale
# Refresh times: mid-hour, and exactly on an hour boundary (the rollup's edge case).
T_MID = dt.datetime(2026, 6, 15, 12, 34, 56, 789012, tzinfo=dt.UTC)
T_HOUR = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)


def edges(t: dt.datetime) -> list[dt.datetime]:
    """Instants on and beside every window edge and every hour boundary the refresh uses."""
    points = [t]
    for width in (dt.timedelta(hours=1), dt.timedelta(hours=24), dt.timedelta(days=7)):
        lo = t - width
        a = lo.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
        points += [lo, a]
    points.append(t.replace(minute=0, second=0, microsecond=0))
    return [p + k * US for p in points for k in (-1, 0, 1)]


def histories(t: dt.datetime) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    times = st.one_of(
        st.sampled_from(edges(t)),
        st.integers(-8 * 24 * 3600 * 10**6, 2 * 3600 * 10**6).map(lambda us: t + us * US),
    )
    return st.lists(
        st.tuples(
            st.sampled_from(SITES),
            times,
            st.sampled_from(LOCATIONS),
            st.booleans(),
            st.one_of(st.none(), st.integers(0, 30_000)),
        ),
        max_size=50,
        unique_by=lambda r: (r[0], r[1], r[2]),
    )


def store(db: Database, rows: list[tuple[Any, ...]]) -> None:
    with db.connect() as conn:
        empty_tables(conn, ["sites"])
        for site in SITES:
            conn.execute("INSERT INTO sites (id, url) VALUES (%s, %s)", (site, f"http://{site}/"))
        with conn.cursor().copy(
            "COPY pings (site_id, checked_at, status, response_time_ms, error_category, "
            "location, region_code) FROM STDIN"
        ) as copy:
            for site, at, loc, up, rt in rows:
                copy.write_row(
                    (site, at, "up" if up else "down", rt, None if up else "timeout", loc, "XX")
                )


def normalised(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for row in rows:
        row = dict(row)
        site = str(row.pop("site_id"))
        for window in ("1h", "24h", "7d"):
            # REAL in the database, float32 in pandas: the same bits, compared as such.
            row[f"uptime_{window}"] = np.float32(row[f"uptime_{window}"]).tobytes()
            row[f"avg_response_time_{window}"] = int(row[f"avg_response_time_{window}"])
            row[f"pings_{window}"] = int(row[f"pings_{window}"])
        row["current_status"] = str(row["current_status"])
        row["last_checked"] = pd.Timestamp(row["last_checked"]).tz_convert("UTC")
        out[site] = row
    return out


COLUMNS = (
    "site_id, uptime_1h, uptime_24h, uptime_7d, avg_response_time_1h, avg_response_time_24h, "
    "avg_response_time_7d, pings_1h, pings_24h, pings_7d, current_status, last_checked"
)


@pytest.fixture(scope="module")
def partitioned(db_url: str) -> None:
    """Daily partitions around the test's instants, so that rows spread over several of them
    and the default partition."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        for day in range(-3, 2):
            conn.execute(
                "SELECT uptimelab_ensure_pings_partition(%s)", (T_MID.date() + dt.timedelta(day),)
            )


@pytest.mark.usefixtures("partitioned")
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    t=st.sampled_from([T_MID, T_HOUR]),
    # Where the rollup stops: nothing rolled up, inside the 7d or 24h window, or past t.
    rolled_until=st.sampled_from([None, dt.timedelta(hours=30), dt.timedelta(hours=3), None]),
)
def test_reference_rollup_refresh_pandas_and_brute_force_agree(
    db: Database, data: st.DataObject, t: dt.datetime, rolled_until: dt.timedelta | None
) -> None:
    rows = data.draw(histories(t))
    store(db, rows)
    with db.connect() as conn:
        if rolled_until is not None:
            conn.execute("SELECT uptimelab_advance_rollup(%s)", (t - rolled_until,))
        reference = conn.execute(
            f"SELECT {COLUMNS} FROM uptimelab_site_stats_reference(%s)", (t,)
        ).fetchall()
        fast = conn.execute(f"SELECT {COLUMNS} FROM uptimelab_site_stats_at(%s)", (t,)).fetchall()
        # The refresh rolls up every past hour first: the rollup now covers all of t's windows.
        conn.execute("SELECT uptimelab_refresh_site_stats(%s)", (t,))
        table = conn.execute(f"SELECT {COLUMNS} FROM site_stats").fetchall()
    frame = stats.window_stats(stats.load_pings(db), t)
    pandas_rows = frame.to_dict("records")
    brute = model(
        [
            (str(site), pd.Timestamp(at), "up" if up else "down", rt, None, loc)
            for site, at, loc, up, rt in rows
        ],
        pd.Timestamp(t),
    )
    brute_rows = [{"site_id": k, **v} for k, v in brute.items()]
    expected = normalised(brute_rows)
    assert normalised(reference) == expected
    assert normalised(fast) == expected
    assert normalised(table) == expected
    assert normalised(pandas_rows) == expected
    # The columns of sql/013 (30d, coverage) under the default policy, stored as the reference
    # and window_stats give them.
    extra = ["uptime_30d", "avg_response_time_30d", "pings_30d", "coverage_1h", "coverage_24h"]
    with db.connect() as conn:
        policy_reference = conn.execute(
            f"SELECT site_id, {', '.join(extra)} "
            "FROM uptimelab_site_stats_policy_reference(%s, 'samples', false)",
            (t,),
        ).fetchall()
        stored = conn.execute(
            f"SELECT site_id, {', '.join(extra)}, policy FROM site_stats"
        ).fetchall()
    wide = stats.window_stats(
        stats.load_pings(db), t, windows=stats.SITE_STATS_WINDOWS, coverage=True
    )
    from_pandas = [
        {"site_id": r["site_id"], **{c: r[c] for c in extra}} for r in wide.to_dict("records")
    ]
    assert {r.pop("policy") for r in stored} <= {"samples"}
    assert as_bits(stored) == as_bits(policy_reference) == as_bits(from_pandas)


def as_bits(rows: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """Rows by site, REAL/float32 compared bit for bit."""
    return {
        str(r["site_id"]): tuple(
            np.float32(v).tobytes() if isinstance(v, float) else int(v)
            for k, v in sorted(r.items())
            if k != "site_id"
        )
        for r in rows
    }


def test_the_rollup_follows_inserts_updates_and_deletes(db: Database) -> None:
    rows = [
        (SITES[0], T_MID - dt.timedelta(minutes=m), "eu-west", m % 3 != 0, m) for m in range(150)
    ]
    store(db, rows)
    # The rollup holds exactly the pings before its watermark, whatever is written later.
    rollup_vs_raw = """
        SELECT (SELECT watermark = '-infinity' FROM ping_rollup_state) AS never,
               (SELECT array_agg(x ORDER BY x) FROM (
                  SELECT row(site_id, hour, pings, pings_up, up_response_ms_sum,
                             up_response_count)::text AS x
                    FROM ping_rollup_hourly WHERE pings > 0) r) AS rollup,
               (SELECT array_agg(x ORDER BY x) FROM (
                  SELECT row(site_id, date_trunc('hour', checked_at, 'UTC'), count(*),
                             count(*) FILTER (WHERE status = 'up'),
                             coalesce(sum(response_time_ms) FILTER (WHERE status = 'up'), 0),
                             count(response_time_ms) FILTER (WHERE status = 'up'))::text AS x
                    FROM pings WHERE checked_at < (SELECT watermark FROM ping_rollup_state)
                   GROUP BY site_id, date_trunc('hour', checked_at, 'UTC')) p) AS raw"""
    with db.connect() as conn:
        empty = conn.execute(rollup_vs_raw).fetchone()
        conn.execute("SELECT uptimelab_advance_rollup(now())")
        first = conn.execute(rollup_vs_raw).fetchone()
        conn.execute("UPDATE pings SET response_time_ms = response_time_ms + 7 WHERE status = 'up'")
        conn.execute(
            "UPDATE pings SET status = 'down', error_category = 'dns' WHERE checked_at > %s",
            (T_MID - dt.timedelta(minutes=20),),
        )
        conn.execute("DELETE FROM pings WHERE checked_at < %s", (T_MID - dt.timedelta(hours=2),))
        # A late ping into an hour that is already rolled up (an import, a replay).
        conn.execute(
            "INSERT INTO pings (site_id, checked_at, status, response_time_ms, location, "
            "region_code) VALUES (%s, %s, 'up', 5, 'late', 'XX')",
            (SITES[1], T_MID - dt.timedelta(minutes=30)),
        )
        second = conn.execute(rollup_vs_raw).fetchone()
    assert empty is not None
    assert first is not None
    assert second is not None
    assert empty["never"] is True
    assert empty["rollup"] is None
    assert first["rollup"] == first["raw"]
    assert second["rollup"] == second["raw"]
    assert first["rollup"] != second["rollup"]


def test_truncate_starts_the_rollup_again(db: Database) -> None:
    store(db, [(SITES[0], T_MID, "eu-west", True, 10)])
    with db.connect() as conn:
        conn.execute("SELECT uptimelab_advance_rollup(now())")
        conn.execute("TRUNCATE pings")
        state = conn.execute(
            "SELECT watermark = '-infinity' AS reset, (SELECT count(*) FROM ping_rollup_hourly) "
            "AS n FROM ping_rollup_state"
        ).fetchone()
    assert state is not None
    assert state["reset"] is True
    assert state["n"] == 0


def test_a_day_partition_that_adopts_rows_keeps_the_rollup_exact(db: Database) -> None:
    day = dt.datetime(2003, 3, 3, 10, tzinfo=dt.UTC)
    store(db, [(SITES[1], day + dt.timedelta(minutes=m), "eu-west", True, 10) for m in range(5)])
    with db.connect() as conn:
        conn.execute("SELECT uptimelab_advance_rollup(now())")
        conn.execute("SELECT uptimelab_ensure_pings_partition(%s)", (day.date(),))
        row = conn.execute("SELECT sum(pings) AS n FROM ping_rollup_hourly").fetchone()
    assert row is not None
    assert row["n"] == 5


def test_refresh_is_idempotent_and_a_site_never_pinged_has_no_row(db: Database) -> None:
    store(db, [(SITES[0], T_MID - dt.timedelta(minutes=1), "eu-west", True, 120)])
    assert ul.refresh_stats(db=db) == 1
    first = ul.site_stats(db=db)
    assert ul.refresh_stats(db=db) == 1
    again = ul.site_stats(db=db)
    assert [s.site_id for s in first] == [SITES[0]]
    strip = {"updated_at"}
    assert [s.model_dump(exclude=strip) for s in first] == [
        s.model_dump(exclude=strip) for s in again
    ]
    assert ul.get_site_stats(str(SITES[1]), db=db) is None


async def test_a_cycle_refreshes_only_its_own_sites(db: Database) -> None:
    config = Settings.load(ping_timeout_ms=1000, monitoring_interval_ms=60_000)
    async with open_zoo(ZooSpec.uniform(2, duration_s=60)) as zoo:
        a, b = (ul.add_site(t.url, db=db) for t in zoo.targets)
        await Collector(db, config).cycle()
        before = {s.site_id: s for s in ul.site_stats(db=db)}
        assert set(before) == {a.id, b.id}
        assert before[a.id].pings_1h == 1
        assert before[a.id].uptime_1h == 100
        ul.disable_site(b.id, db=db)
        await trio.sleep(0.01)
        await Collector(db, config).cycle()
    after = {s.site_id: s for s in ul.site_stats(db=db)}
    assert after[a.id].pings_1h == 2
    assert after[a.id].updated_at > before[a.id].updated_at
    assert after[b.id] == before[b.id]


def test_the_stats_commands(db: Database) -> None:
    store(
        db,
        [
            (SITES[0], dt.datetime.now(dt.UTC) - dt.timedelta(minutes=m), "x", m != 2, 100)
            for m in range(5)
        ],
    )
    assert "refreshed 1 site(s)" in run("stats", "refresh").stdout
    listed = json.loads(run("stats", "--format", "json").stdout)
    assert len(listed) == 1
    assert listed[0]["pings_1h"] == 5
    assert listed[0]["uptime_1h"] == 80.0
    assert listed[0]["url"] == f"http://{SITES[0]}/"
    csv_out = run("stats", "--format", "csv", "--sort", "-uptime_1h").stdout.splitlines()
    assert csv_out[0].startswith("name,url,site_id,uptime_1h")
    assert run("stats", "show", str(SITES[0])).returncode == 0
    unknown = run("stats", "show", "https://unknown.example/")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("error: no site with url")
    bad_sort = run("stats", "--sort", "colour")
    assert bad_sort.returncode == 2
    assert bad_sort.stderr.startswith("error: --sort: sort key 'colour' is not one of ")
    outages = json.loads(run("outages", "--format", "json", "--since", "1h").stdout)
    assert len(outages) == 1
    assert outages[0]["pings_down"] == 1
    assert run("outages", "--site", "https://unknown.example/").returncode == 2
    assert run("stats", "refresh", "--every", "soon").returncode == 2


def test_refresh_every_runs_until_a_signal(db: Database) -> None:
    store(db, [(SITES[0], dt.datetime.now(dt.UTC), "x", True, 10)])
    proc = subprocess.Popen(
        [sys.executable, "-m", "uptimelab", "stats", "refresh", "--every", "1s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert all("refreshed 1 site(s)" in line for line in lines)
