"""Regions: stats per location and the quorum verdict; SQL, pandas and a brute force agree."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uptimelab import stats
from uptimelab.api.app import create_app
from uptimelab.errors import ConfigError
from uptimelab.storage.database import Database
from uptimelab.storage.regions import location_stats, quorum_stats

from .db_snapshot import empty_tables
from .test_api import load_settings, running
from .test_cli import run
from .test_stats import model

US = dt.timedelta(microseconds=1)
MINUTE = dt.timedelta(minutes=1)
SITES = [uuid.UUID(int=i) for i in (1, 2, 3)]
LOCATIONS = ["eu-west", "us-east", "Zurich"]  # "Zurich" sorts first by code point
T = dt.datetime(2026, 6, 15, 12, 34, 56, 789012, tzinfo=dt.UTC)
WINDOWS = {"1h": dt.timedelta(hours=1), "24h": dt.timedelta(hours=24), "7d": dt.timedelta(days=7)}
# Intervals in whole minutes, pings on a minute grid: pings exactly 2 intervals apart are common.
INTERVALS_MS = [60_000, 120_000, 300_000]


def grid(t: dt.datetime) -> list[dt.datetime]:
    """Instants on a minute grid below t and below each window's edge, and beside the edges."""
    points = []
    for edge in (t, *(t - w for w in WINDOWS.values())):
        points += [edge - k * MINUTE for k in range(12)]
        points += [edge - US, edge + US]
    return points


Row = tuple[uuid.UUID, dt.datetime, str, bool, int | None]


def histories(t: dt.datetime) -> st.SearchStrategy[list[Row]]:
    times = st.one_of(
        st.sampled_from(grid(t)),
        st.sampled_from(grid(t)),
        st.integers(-8 * 24 * 3600 * 10**6, 3600 * 10**6).map(lambda us: t + us * US),
    )
    return st.lists(
        st.tuples(
            st.sampled_from(SITES),
            times,
            st.sampled_from(LOCATIONS),
            st.booleans(),
            st.one_of(st.none(), st.integers(0, 30_000)),
        ),
        max_size=60,
        unique_by=lambda r: (r[0], r[1], r[2]),
    )


def store(db: Database, rows: list[Row], intervals: dict[uuid.UUID, int | None]) -> None:
    with db.connect() as conn:
        empty_tables(conn, ["sites"])
        for site in SITES:
            conn.execute(
                "INSERT INTO sites (id, url, interval_ms) VALUES (%s, %s, %s)",
                (site, f"http://{site}/", intervals[site]),
            )
        with conn.cursor().copy(
            "COPY pings (site_id, checked_at, status, response_time_ms, error_category, "
            "location, region_code) FROM STDIN"
        ) as copy:
            for site, at, loc, up, rt in rows:
                copy.write_row(
                    (site, at, "up" if up else "down", rt, None if up else "timeout", loc, "XX")
                )


# ------------------------------------------------------------------------------------------
# The brute force: one site, one instant, one location at a time.


def verdict(
    rows: list[Row], site: uuid.UUID, at: dt.datetime, reach: dt.timedelta, k: int | None
) -> tuple[str | None, int, int]:
    latest: dict[str, tuple[dt.datetime, bool]] = {}
    for s, when, loc, up, _ in rows:
        if s == site and at - reach < when <= at and (loc not in latest or when > latest[loc][0]):
            latest[loc] = (when, up)
    n = len(latest)
    d = sum(not up for _, up in latest.values())
    if n == 0:
        return None, 0, 0
    quorum = n // 2 + 1 if k is None else k
    return ("down" if d >= min(quorum, n) else "up"), n, d


def brute_verdicts(
    rows: list[Row], t: dt.datetime, reach: dict[uuid.UUID, dt.timedelta], k: int | None
) -> list[tuple[str, pd.Timestamp, int, int, str]]:
    out = []
    for site, at in sorted({(r[0], r[1]) for r in rows if t - WINDOWS["7d"] < r[1] <= t}):
        status, n, d = verdict(rows, site, at, reach[site], k)
        assert status is not None
        out.append((str(site), pd.Timestamp(at), n, d, status))
    return out


def brute_quorum_stats(
    rows: list[Row], t: dt.datetime, reach: dict[uuid.UUID, dt.timedelta], k: int | None
) -> dict[str, dict[str, Any]]:
    verdicts = brute_verdicts(rows, t, reach, k)
    result: dict[str, dict[str, Any]] = {}
    for site in sorted({v[0] for v in verdicts}):
        row: dict[str, Any] = {}
        mine = [v for v in verdicts if v[0] == site]
        for name, width in WINDOWS.items():
            inside = [v for v in mine if v[1] > t - width]
            up = sum(v[4] == "up" for v in inside)
            uptime = np.float32(100 * up / len(inside)) if inside else np.float32(0)
            row[f"uptime_{name}"] = uptime.tobytes()
            row[f"instants_{name}"] = len(inside)
        status, n, d = verdict(rows, uuid.UUID(site), t, reach[uuid.UUID(site)], k)
        row.update(current_status=status, locations=n, locations_down=d)
        result[site] = row
    return result


def normalised_quorum(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for row in rows:
        row = dict(row)
        site = str(row.pop("site_id"))
        for name in WINDOWS:
            row[f"uptime_{name}"] = np.float32(row[f"uptime_{name}"]).tobytes()
            row[f"instants_{name}"] = int(row[f"instants_{name}"])
        row["locations"] = int(row["locations"])
        row["locations_down"] = int(row["locations_down"])
        out[site] = row
    return out


def normalised_locations(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for row in rows:
        row = dict(row)
        key = (str(row.pop("site_id")), str(row.pop("location")))
        for name in WINDOWS:
            row[f"uptime_{name}"] = np.float32(row[f"uptime_{name}"]).tobytes()
            row[f"avg_response_time_{name}"] = int(row[f"avg_response_time_{name}"])
            row[f"pings_{name}"] = int(row[f"pings_{name}"])
        row["current_status"] = str(row["current_status"])
        row["last_checked"] = pd.Timestamp(row["last_checked"]).tz_convert("UTC")
        out[key] = row
    return out


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    t=st.sampled_from([T, T.replace(minute=0, second=0, microsecond=0)]),
    k=st.one_of(st.none(), st.integers(1, 4)),
    default_ms=st.sampled_from(INTERVALS_MS),
    own=st.lists(st.sampled_from([None, *INTERVALS_MS]), min_size=3, max_size=3),
)
def test_quorum_and_location_stats_sql_pandas_and_brute_force_agree(
    db: Database,
    data: st.DataObject,
    t: dt.datetime,
    k: int | None,
    default_ms: int,
    own: list[int | None],
) -> None:
    rows = data.draw(histories(t))
    intervals = dict(zip(SITES, own, strict=True))
    reach = {s: 2 * dt.timedelta(milliseconds=ms or default_ms) for s, ms in intervals.items()}
    store(db, rows, intervals)
    with db.connect() as conn:
        sql_stats = conn.execute(
            "SELECT * FROM uptimelab_quorum_stats(%s, %s, %s)", (t, default_ms, k)
        ).fetchall()
        sql_verdicts = conn.execute(
            "SELECT site_id::text, checked_at, locations, locations_down, status"
            " FROM uptimelab_quorum_verdicts(%s, %s, %s, %s) ORDER BY site_id, checked_at",
            (t - WINDOWS["7d"], t, default_ms, k),
        ).fetchall()
        sql_locations = conn.execute("SELECT * FROM uptimelab_location_stats(%s)", (t,)).fetchall()
    pings = stats.load_pings(db)
    own_ms = stats.load_site_intervals(db)
    options: dict[str, Any] = {
        "quorum": k,
        "default_interval_ms": default_ms,
        "interval_ms": own_ms,
    }

    expected = brute_quorum_stats(rows, t, reach, k)
    assert normalised_quorum(sql_stats) == expected
    got = stats.quorum_stats(pings, t, **options)
    assert got["uptime_7d"].dtype == np.float32
    assert normalised_quorum(got.to_dict("records")) == expected

    verdicts = brute_verdicts(rows, t, reach, k)
    assert [tuple(r.values()) for r in sql_verdicts] == verdicts
    pandas_verdicts = stats.quorum_verdicts(pings, since=t - WINDOWS["7d"], until=t, **options)
    assert [
        (str(r[0]), r[1], int(r[2]), int(r[3]), r[4])
        for r in pandas_verdicts.itertuples(index=False)
    ] == verdicts

    # Arbitrary periods in pandas: the 24h window is one of them.
    uptime = stats.quorum_uptime(pings, t - WINDOWS["24h"], t, **options)
    day = {s: v for s, v in expected.items() if v["instants_24h"] > 0}
    assert uptime["uptime"].dtype == np.float32
    assert {str(s): np.float32(u).tobytes() for s, u in uptime["uptime"].items()} == {
        s: v["uptime_24h"] for s, v in day.items()
    }
    assert {str(s): int(n) for s, n in uptime["instants"].items()} == {
        s: v["instants_24h"] for s, v in day.items()
    }

    brute_locations = {}
    for loc in LOCATIONS:
        mine = [
            (str(s), pd.Timestamp(at), "up" if up else "down", rt, None, loc)
            for s, at, place, up, rt in rows
            if place == loc
        ]
        for site, row in model(mine, pd.Timestamp(t)).items():
            if row["pings_7d"]:
                brute_locations[(site, loc)] = row
    expected_locations = normalised_locations(
        [{"site_id": s, "location": loc, **v} for (s, loc), v in brute_locations.items()]
    )
    assert normalised_locations(sql_locations) == expected_locations
    pandas_locations = stats.location_stats(pings, t)
    assert normalised_locations(pandas_locations.to_dict("records")) == expected_locations
    sites, places = pandas_locations["site_id"].astype(str), pandas_locations["location"]
    keys = list(zip(sites, places, strict=True))
    assert keys == sorted(keys)


# ------------------------------------------------------------------------------------------
# The rules, one at a time


def frame(rows: list[tuple[str, dt.datetime, str, str]]) -> pd.DataFrame:
    """A pings frame from (site_id, checked_at, location, status) tuples."""
    return pd.DataFrame(
        {
            "site_id": [r[0] for r in rows],
            "checked_at": pd.DatetimeIndex([r[1] for r in rows], dtype="datetime64[us, UTC]"),
            "location": [r[2] for r in rows],
            "status": [r[3] for r in rows],
            "response_time_ms": pd.array([5 if r[3] == "up" else None for r in rows], "Int32"),
        }
    )


FIVE_MIN_MS = 300_000


def test_a_majority_of_reporting_locations_must_be_down() -> None:
    pings = frame([("a", T, "x", "down"), ("a", T, "y", "up"), ("a", T, "z", "down")])
    got = stats.quorum_verdicts(pings, default_interval_ms=FIVE_MIN_MS)
    assert got[["locations", "locations_down", "status"]].values.tolist() == [[3, 2, "down"]]
    pings = frame([("a", T, "x", "down"), ("a", T, "y", "up")])
    assert stats.quorum_verdicts(pings)["status"].tolist() == ["up"]  # 1 of 2 is no majority


def test_with_fewer_locations_than_the_quorum_all_of_them_must_be_down() -> None:
    one = frame([("a", T, "x", "down")])
    assert stats.quorum_verdicts(one, quorum=2)["status"].tolist() == ["down"]
    two = frame([("a", T, "x", "down"), ("a", T, "y", "up")])
    assert stats.quorum_verdicts(two, quorum=3)["status"].tolist() == ["up"]
    assert stats.quorum_verdicts(two, quorum=1)["status"].tolist() == ["down"]


def test_a_ping_two_intervals_old_no_longer_counts() -> None:
    reach = dt.timedelta(minutes=10)
    pings = frame(
        [
            ("a", T - reach, "x", "down"),  # exactly 2 intervals before T: out at T
            ("a", T - reach + US, "y", "down"),  # just inside
            ("a", T, "z", "up"),
        ]
    )
    got = stats.quorum_verdicts(pings, since=T - US, default_interval_ms=FIVE_MIN_MS)
    assert got[["locations", "locations_down", "status"]].values.tolist() == [[2, 1, "up"]]
    # The site's own interval wins over the default: 10 minutes reach 20.
    got = stats.quorum_verdicts(
        pings, since=T - US, default_interval_ms=FIVE_MIN_MS, interval_ms={"a": 600_000}
    )
    assert got[["locations", "locations_down", "status"]].values.tolist() == [[3, 2, "down"]]


def test_only_a_locations_latest_ping_counts() -> None:
    m = dt.timedelta(minutes=1)
    pings = frame([("a", T - m, "x", "down"), ("a", T, "x", "up"), ("a", T, "y", "down")])
    got = stats.quorum_verdicts(pings)
    assert got[["locations", "locations_down", "status"]].values.tolist() == [
        [1, 1, "down"],
        [2, 1, "up"],
    ]


def test_the_current_verdict_is_unknown_when_no_location_reported_lately() -> None:
    pings = frame([("a", T - dt.timedelta(hours=1), "x", "down")])
    got = stats.quorum_stats(pings, T).iloc[0]
    assert got["current_status"] is None
    assert (got["locations"], got["instants_1h"], got["instants_24h"]) == (0, 0, 1)
    assert got["uptime_24h"] == 0


def test_bad_quorum_and_intervals_are_refused() -> None:
    pings = frame([("a", T, "x", "up")])
    with pytest.raises(ValueError, match="quorum 0 is not a whole number"):
        stats.quorum_verdicts(pings, quorum=0)
    with pytest.raises(ValueError, match="default_interval_ms -1"):
        stats.quorum_stats(pings, T, default_interval_ms=-1)
    with pytest.raises(ValueError, match="interval_ms of site a"):
        stats.quorum_stats(pings, T, interval_ms={"a": 0})
    with pytest.raises(ConfigError, match="quorum 1001"):
        quorum_stats(quorum=1001, default_interval_ms=FIVE_MIN_MS)


def test_empty_frames_give_empty_results() -> None:
    empty = frame([])
    assert stats.quorum_verdicts(empty).empty
    assert stats.quorum_uptime(empty).empty
    assert stats.quorum_stats(empty, T).empty
    assert stats.location_stats(empty, T).empty


# ------------------------------------------------------------------------------------------
# The library, the CLI and the API over the database


def two_locations(db: Database) -> None:
    """Site 1: down from one location of two (up by quorum 2, down by quorum 1)."""
    now = dt.datetime.now(dt.UTC)
    rows: list[Row] = [
        (SITES[0], now - MINUTE, "eu-west", False, None),
        (SITES[0], now - MINUTE, "us-east", True, 40),
        (SITES[1], now - 2 * MINUTE, "eu-west", True, 10),
    ]
    store(db, rows, dict.fromkeys(SITES))


def test_the_library_reads_per_location_and_quorum_stats(db: Database) -> None:
    two_locations(db)
    east = location_stats("us-east", db=db)
    assert [(r.site_id, r.location, r.current_status) for r in east] == [
        (SITES[0], "us-east", "up")
    ]
    assert len(location_stats(db=db)) == 3
    assert location_stats("nowhere", db=db) == []
    by_site = {r.site_id: r for r in quorum_stats(quorum=2, default_interval_ms=FIVE_MIN_MS, db=db)}
    assert (by_site[SITES[0]].current_status, by_site[SITES[0]].locations_down) == ("up", 1)
    down = quorum_stats(quorum=1, default_interval_ms=FIVE_MIN_MS, status="down", db=db)
    assert [r.site_id for r in down] == [SITES[0]]
    assert down[0].uptime_1h == 0


def test_stats_location_and_quorum_commands(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    two_locations(db)
    shown = run("stats", "--location", "eu-west", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert sorted(r["site_id"] for r in json.loads(shown.stdout)) == sorted(
        str(s) for s in SITES[:2]
    )
    assert {r["location"] for r in json.loads(shown.stdout)} == {"eu-west"}
    table = run("stats", "--quorum", "--quorum-k", "1")
    assert table.returncode == 0, table.stderr
    assert "down 1/2" in table.stdout
    monkeypatch.setenv("QUORUM", "2")
    from_env = run("stats", "--quorum", "--format", "json")
    assert from_env.returncode == 0, from_env.stderr
    statuses = {r["site_id"]: r["current_status"] for r in json.loads(from_env.stdout)}
    assert statuses[str(SITES[0])] == "up"

    bad = run("stats", "--quorum", "--quorum-k", "0")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: --quorum-k: quorum 0 is not a whole number from 1 to 1000"
    ]
    both = run("stats", "--quorum", "--location", "x")
    assert both.returncode == 2
    assert "--location" in both.stderr
    assert len(both.stderr.strip().splitlines()) == 1
    bad_sort = run("stats", "--quorum", "--sort", "pings_1h")
    assert bad_sort.returncode == 2
    assert bad_sort.stderr.startswith("error: --sort: sort key 'pings_1h'")


async def test_the_api_serves_per_location_and_quorum_stats(db: Database) -> None:
    two_locations(db)
    config = load_settings(quorum=2)
    async with running(create_app(config, db)) as client:
        east = await client.get("/location-stats", params={"location": "us-east"})
        assert east.status_code == 200
        assert [(r["site_id"], r["location"]) for r in east.json()] == [(str(SITES[0]), "us-east")]
        every = await client.get("/location-stats", params={"sort": "-pings_7d"})
        assert len(every.json()) == 3
        # K from the QUORUM setting (2: one down of two is up), or from the query.
        by_setting = {r["site_id"]: r for r in (await client.get("/quorum-stats")).json()}
        assert by_setting[str(SITES[0])]["current_status"] == "up"
        assert by_setting[str(SITES[0])]["locations"] == 2
        one = (await client.get("/quorum-stats", params={"quorum": 1})).json()
        assert {r["site_id"]: r["current_status"] for r in one}[str(SITES[0])] == "down"
        for bad in ({"quorum": 0}, {"sort": "nope"}):
            assert (await client.get("/quorum-stats", params=bad)).status_code == 422
        nul = await client.get("/location-stats", params={"location": "a\x00b"})
        assert (nul.status_code, nul.json()) == (200, [])
