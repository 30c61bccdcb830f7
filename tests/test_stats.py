"""uptimelab.stats: window statistics against a brute-force model, outages, series, the loader."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uptimelab import stats
from uptimelab.domain.pings import PING_COLUMNS
from uptimelab.storage.database import Database

T = pd.Timestamp("2024-05-01 12:00:00", tz="UTC")
US = pd.Timedelta(microseconds=1)
H = pd.Timedelta(hours=1)

COLUMNS = list(PING_COLUMNS)


def frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """A pings frame from (site_id, checked_at, status, response_time_ms, error_category,
    location) tuples; the other columns are filled in."""
    return pd.DataFrame(
        {
            "site_id": [r[0] for r in rows],
            "checked_at": pd.DatetimeIndex([r[1] for r in rows], dtype="datetime64[us, UTC]"),
            "status": [r[2] for r in rows],
            "status_code": pd.array([200 if r[2] == "up" else None for r in rows], dtype="Int32"),
            "response_time_ms": pd.array([r[3] for r in rows], dtype="Int32"),
            "error_category": [r[4] for r in rows],
            "error_message": [None for _ in rows],
            "location": [r[5] for r in rows],
            "region_code": ["xx" for _ in rows],
        },
        columns=COLUMNS,
    )


# ------------------------------------------------------------------------------------------
# window_stats against a brute-force model

EDGES = [T + k * US for k in (-1, 0, 1)] + [
    T - width + k * US for width in stats.WINDOWS.values() for k in (-1, 0, 1)
]
SITES = ["11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222", "s3"]
LOCATIONS = ["us-east", "eu-west"]

# Edges twice as likely as random instants, so that ties between locations are common too.
times = st.one_of(
    st.sampled_from(EDGES),
    st.sampled_from(EDGES),
    st.integers(-8 * 24 * 3600 * 10**6, 3600 * 10**6).map(lambda us: T + us * US),
)
pings_rows = st.lists(
    st.tuples(
        st.sampled_from(SITES),
        times,
        st.sampled_from(LOCATIONS),
        st.booleans(),
        st.one_of(st.none(), st.integers(0, 60_000)),
    ),
    max_size=60,
    unique_by=lambda r: (r[0], r[1], r[2]),
)


def model(rows: list[tuple[Any, ...]], now: pd.Timestamp) -> dict[str, dict[str, Any]]:
    """window_stats written the slow, obvious way: one site and one window at a time."""
    result: dict[str, dict[str, Any]] = {}
    for site in sorted({r[0] for r in rows if r[1] <= now}):
        mine = [r for r in rows if r[0] == site and r[1] <= now]
        row: dict[str, Any] = {}
        for name, width in stats.WINDOWS.items():
            inside = [r for r in mine if now - width < r[1] <= now]
            up = [r for r in inside if r[2] == "up"]
            row[f"uptime_{name}"] = np.float32(100 * len(up) / len(inside)) if inside else 0
            times_ms = [r[3] for r in up if r[3] is not None]
            mean = Fraction(sum(times_ms), len(times_ms)) if times_ms else Fraction(0)
            row[f"avg_response_time_{name}"] = math.floor(mean + Fraction(1, 2))
            row[f"pings_{name}"] = len(inside)
        latest = max(mine, key=lambda r: (r[1], r[5]))
        row["current_status"] = latest[2]
        row["last_checked"] = latest[1]
        result[site] = row
    return result


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    drawn=pings_rows,
    as_uuid=st.booleans(),
    categorical=st.booleans(),
    now=st.sampled_from([T, T - US, T + US]),
)
def test_window_stats_matches_brute_force(
    drawn: list[tuple[Any, ...]], as_uuid: bool, categorical: bool, now: pd.Timestamp
) -> None:
    rows = [
        (site, at, "up" if up else "down", rt, None if up else "timeout", loc)
        for site, at, loc, up, rt in drawn
    ]
    pings = frame(rows)
    if as_uuid:
        pings["site_id"] = [uuid.uuid5(uuid.NAMESPACE_URL, s) for s in pings["site_id"]]
    if categorical:
        # Categories deliberately not in string order: ties must still go by the strings.
        pings["location"] = pd.Categorical(pings["location"], categories=LOCATIONS)
        pings["status"] = pings["status"].astype(stats.STATUS_DTYPE)
        pings["site_id"] = pings["site_id"].astype("category")
    got = stats.window_stats(pings, now)
    expected = model(rows, now)
    assert got.columns.tolist() == [
        "site_id",
        "uptime_1h",
        "uptime_24h",
        "uptime_7d",
        "avg_response_time_1h",
        "avg_response_time_24h",
        "avg_response_time_7d",
        "pings_1h",
        "pings_24h",
        "pings_7d",
        "current_status",
        "last_checked",
    ]

    keys = [str(s) for s in got["site_id"]]
    wanted = sorted(expected, key=lambda s: uuid.uuid5(uuid.NAMESPACE_URL, s)) if as_uuid else None
    if as_uuid:
        assert keys == [str(uuid.uuid5(uuid.NAMESPACE_URL, s)) for s in wanted or []]
    else:
        assert keys == sorted(expected)
    by_key = {
        (str(uuid.uuid5(uuid.NAMESPACE_URL, s)) if as_uuid else s): v for s, v in expected.items()
    }
    for name in stats.WINDOWS:
        assert got[f"uptime_{name}"].dtype == np.float32
    for record in got.to_dict("records"):
        want = by_key[str(record.pop("site_id"))]
        assert record == want
        for name in stats.WINDOWS:
            # Exact float32 equality, not approximate: SQL REAL must give the same bits.
            assert (
                np.float32(record[f"uptime_{name}"]).tobytes()
                == np.float32(want[f"uptime_{name}"]).tobytes()
            )


def test_window_edges_are_left_open_right_closed() -> None:
    rows = [
        ("a", T - H, "up", 10, None, "x"),  # exactly T - 1h: outside the hour
        ("a", T - H + US, "down", None, "dns", "x"),  # just inside
        ("a", T + US, "up", 10, None, "x"),  # after now: ignored everywhere
        ("a", T - pd.Timedelta(days=7), "up", 10, None, "x"),  # outside 7d
    ]
    got = stats.window_stats(frame(rows), T).iloc[0]
    assert (got["pings_1h"], got["pings_24h"], got["pings_7d"]) == (1, 2, 2)
    assert got["uptime_1h"] == 0
    assert got["uptime_24h"] == 50
    assert got["avg_response_time_1h"] == 0
    assert got["current_status"] == "down"
    assert got["last_checked"] == T - H + US


def test_average_rounds_half_away_from_zero() -> None:
    rows = [("a", T - k * US, "up", rt, None, "x") for k, rt in enumerate([1, 2, 2, 4])]
    # mean 2.25 -> 2; and 2.5 -> 3 (banker's rounding would give 2)
    assert stats.window_stats(frame(rows), T)["avg_response_time_1h"].iloc[0] == 2
    rows = [("a", T - k * US, "up", rt, None, "x") for k, rt in enumerate([2, 3])]
    assert stats.window_stats(frame(rows), T)["avg_response_time_1h"].iloc[0] == 3


def test_tie_at_latest_instant_takes_greatest_location() -> None:
    rows = [("a", T, "down", None, "dns", "b-loc"), ("a", T, "up", 5, None, "a-loc")]
    assert stats.window_stats(frame(rows), T)["current_status"].iloc[0] == "down"
    rows = [("a", T, "up", 5, None, "b-loc"), ("a", T, "down", None, "dns", "a-loc")]
    assert stats.window_stats(frame(rows), T)["current_status"].iloc[0] == "up"
    # Categories in another order than the strings': the strings decide.
    pings = frame(rows)
    pings["location"] = pd.Categorical(pings["location"], categories=["b-loc", "a-loc"])
    assert stats.window_stats(pings, T)["current_status"].iloc[0] == "up"


def test_window_stats_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="status"):
        stats.window_stats(frame([("a", T, "sideways", 1, None, "x")]), T)
    with pytest.raises(ValueError, match="lacks"):
        stats.window_stats(frame([]).drop(columns="location"), T)
    assert stats.window_stats(frame([("a", T + US, "up", 1, None, "x")]), T).empty


# ------------------------------------------------------------------------------------------
# outages and reliability


def test_outages_ongoing_at_start_interleaved_and_single() -> None:
    m = pd.Timedelta(minutes=1)
    rows = [
        # site a: down from the very first ping, two locations interleaved, then recovers,
        # then a single down ping, then up, then an outage that is still going on.
        ("a", T, "down", None, "dns", "eu"),
        ("a", T, "down", None, "timeout", "us"),
        ("a", T + m, "down", None, "dns", "eu"),
        ("a", T + 2 * m, "up", 5, None, "us"),
        ("a", T + 3 * m, "up", 5, None, "eu"),
        ("a", T + 5 * m, "down", None, "tls", "us"),
        ("a", T + 6 * m, "up", 5, None, "eu"),
        ("a", T + 10 * m, "down", None, "refused", "eu"),
        ("a", T + 11 * m, "down", None, "refused", "us"),
        # site b: never down
        ("b", T, "up", 5, None, "eu"),
    ]
    got = stats.outages(frame(rows[::-1]))  # input order must not matter
    assert got["site_id"].tolist() == ["a", "a", "a"]
    assert got["started_at"].tolist() == [T, T + 5 * m, T + 10 * m]
    assert got["ended_at"].iloc[:2].tolist() == [T + 2 * m, T + 6 * m]
    assert pd.isna(got["ended_at"].iloc[2])
    assert got["duration"].iloc[:2].tolist() == [2 * m, m]
    assert pd.isna(got["duration"].iloc[2])
    assert got["pings_down"].tolist() == [3, 1, 2]
    assert got["first_error_category"].tolist() == ["dns", "tls", "refused"]

    rel = stats.reliability(frame(rows))
    a, b = rel.loc["a"], rel.loc["b"]
    assert (a["pings"], a["outages"], bool(a["ongoing"])) == (9, 3, True)
    assert a["mttr"] == 1.5 * m
    # up time between failures: (5m - 2m) and (10m - 6m); start to start: 5m and 5m
    assert a["mtbf"] == 3.5 * m
    assert a["mtbsi"] == 5 * m
    assert a["uptime_pct"] == 100 * 3 / 9
    assert (b["outages"], bool(b["ongoing"]), b["uptime_pct"]) == (0, False, 100.0)
    assert pd.isna(b["mttr"])
    assert pd.isna(b["mtbf"])


def test_outage_tie_with_up_from_other_location_ends_at_once() -> None:
    rows = [("a", T, "down", None, "dns", "a-loc"), ("a", T, "up", 5, None, "b-loc")]
    got = stats.outages(frame(rows))
    assert got["duration"].tolist() == [pd.Timedelta(0)]


def test_reliability_now_cuts_history() -> None:
    rows = [
        ("a", T, "down", None, "dns", "x"),
        ("a", T + H, "up", 5, None, "x"),
    ]
    rel = stats.reliability(frame(rows), now=T)
    assert bool(rel.loc["a", "ongoing"])
    assert pd.isna(rel.loc["a", "mttr"])
    assert stats.reliability(frame(rows)).loc["a", "mttr"] == H


def test_outages_of_nothing() -> None:
    assert stats.outages(frame([])).empty
    assert stats.reliability(frame([])).empty


# ------------------------------------------------------------------------------------------
# series and quantiles


def test_uptime_series() -> None:
    rows = [
        ("a", T, "up", 5, None, "x"),
        ("a", T + pd.Timedelta(minutes=59), "down", None, "dns", "x"),
        ("a", T + 2 * H, "up", 5, None, "x"),
        ("b", T + pd.Timedelta(minutes=30), "up", 5, None, "x"),
    ]
    got = stats.uptime_series(frame(rows), "1h")
    assert got.index.tolist() == [T, T + H, T + 2 * H]
    assert got.columns.tolist() == ["a", "b"]
    assert got["a"].tolist()[0] == 50.0
    assert math.isnan(got["a"].tolist()[1])
    assert got["a"].tolist()[2] == 100.0
    assert got["b"].tolist()[0] == 100.0
    assert got["b"].iloc[1:].isna().all()


def test_error_breakdown() -> None:
    rows = [
        ("a", T, "down", None, "dns", "x"),
        ("b", T + pd.Timedelta(minutes=1), "down", None, "dns", "y"),
        ("a", T + pd.Timedelta(minutes=2), "down", None, "timeout", "x"),
        ("a", T + H, "up", 5, None, "x"),
        ("a", T + 2 * H, "down", None, "tls", "x"),
    ]
    got = stats.error_breakdown(frame(rows), "1h")
    assert got.columns.tolist() == list(stats.ERROR_CATEGORIES)
    assert got.index.tolist() == [T, T + H, T + 2 * H]
    assert (got.dtypes == np.int64).all()
    assert got.loc[T, "dns"] == 2
    assert got.loc[T, "timeout"] == 1
    assert got.loc[T + H].sum() == 0
    assert got.loc[T + 2 * H, "tls"] == 1
    assert got.to_numpy().sum() == 4


def test_response_time_quantiles() -> None:
    rows = [("a", T + k * US, "up", rt, None, "x") for k, rt in enumerate([10, 20, 30, 40, 1000])]
    rows += [
        ("a", T - US, "down", 99_999, "http_status", "x"),  # down: not counted
        ("a", T - 2 * US, "up", None, None, "x"),  # no time: not counted
        ("b", T, "up", 7, None, "y"),
    ]
    got = stats.response_time_quantiles(frame(rows), q=(0.5, 0.75, 0.999))
    assert got.columns.tolist() == ["count", "p50", "p75", "p99.9"]
    assert got.loc["a"].tolist() == [5, 30.0, 40.0, pytest.approx(40 + 0.996 * 960)]
    assert got.loc["b"].tolist() == [1, 7.0, 7.0, 7.0]
    by_location = stats.response_time_quantiles(frame(rows), q=(0.5,), by=["site_id", "location"])
    assert by_location.loc[("b", "y"), "p50"] == 7.0
    with pytest.raises(ValueError, match="quantiles"):
        stats.response_time_quantiles(frame(rows), q=(95,))


# ------------------------------------------------------------------------------------------
# load_pings against the real database


def _insert(db: Database) -> tuple[str, str]:
    with db.connect() as conn:
        ids = [
            str(row["id"])
            for row in conn.execute(
                "INSERT INTO sites (url) VALUES ('https://a.test'), ('https://b.test') RETURNING id"
            )
        ]
        a, b = ids
        rows = [
            (a, T - pd.Timedelta(days=2), "up", 200, 120, None, None, "eu-west", "eu"),
            (a, T - H, "down", 503, 80, "http_status", "503 Service Unavailable", "eu-west", "eu"),
            (a, T - H, "down", None, None, "timeout", "timed out", "us-east", "us"),
            (b, T, "up", 204, 5, None, None, "us-east", "us"),
        ]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO pings (site_id, checked_at, status, status_code, response_time_ms,"
                " error_category, error_message, location, region_code)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(r[0], r[1].to_pydatetime(), *r[2:]) for r in rows],
            )
    return a, b


def test_load_pings_round_trip(db: Database) -> None:
    a, b = _insert(db)
    got = stats.load_pings(db, chunksize=3)  # several chunks with differing categories
    assert len(got) == 4
    assert got.columns.tolist() == COLUMNS
    assert str(got["checked_at"].dtype) == "datetime64[us, UTC]"
    for name in ("site_id", "location", "region_code"):
        assert isinstance(got[name].dtype, pd.CategoricalDtype), name
    assert got["status"].dtype == stats.STATUS_DTYPE
    assert list(got["error_category"].dtype.categories) == list(stats.ERROR_CATEGORIES)
    assert str(got["status_code"].dtype) == "Int32"
    assert str(got["response_time_ms"].dtype) == "Int32"
    assert sorted(got["location"].cat.categories) == ["eu-west", "us-east"]

    got = got.sort_values(["site_id", "checked_at", "location"]).reset_index(drop=True)
    assert got["site_id"].astype(str).tolist() == sorted([a, a, a, b])
    row = got[(got["site_id"] == a) & (got["location"] == "eu-west")].iloc[-1]
    assert row["checked_at"] == T - H
    assert row["status_code"] == 503
    assert row["error_message"] == "503 Service Unavailable"
    timeout = got[(got["site_id"] == a) & (got["location"] == "us-east")].iloc[0]
    assert pd.isna(timeout["status_code"])
    assert pd.isna(timeout["response_time_ms"])

    # The loaded frame feeds the analytics directly.
    ws = stats.window_stats(got, T)
    assert dict(zip(ws["site_id"].astype(str), ws["pings_24h"], strict=True)) == {a: 2, b: 1}
    assert dict(zip(ws["site_id"].astype(str), ws["current_status"], strict=True)) == {
        a: "down",
        b: "up",
    }


def test_load_pings_filters(db: Database) -> None:
    a, b = _insert(db)
    assert len(stats.load_pings(db, since=T - H)) == 3  # since is inclusive
    assert len(stats.load_pings(db, until=T - H)) == 3  # until is inclusive
    assert len(stats.load_pings(db, since=T - H, until=T - H)) == 2
    assert len(stats.load_pings(db, since=dt.datetime(2024, 5, 1, 11))) == 3  # naive is UTC
    only_b = stats.load_pings(db.engine, sites=[uuid.UUID(b)])
    assert only_b["site_id"].astype(str).tolist() == [b]
    assert len(stats.load_pings(db, sites=[a, b], since="2024-04-30T00:00:00Z")) == 3
    assert len(stats.load_pings(db, sites=[])) == 0
    # A duration counts back from now: these 2024 pings are all older than a day.
    empty = stats.load_pings(db, since="1d")
    assert empty.empty
    assert str(empty["checked_at"].dtype) == "datetime64[us, UTC]"
    assert empty["status"].dtype == stats.STATUS_DTYPE
    assert len(stats.load_pings(db, since=dt.timedelta(days=100_000))) == 4
    with pytest.raises(ValueError, match="site id"):
        stats.load_pings(db, sites=["not-a-uuid"])
    with pytest.raises(ValueError, match="not a time"):
        stats.load_pings(db, since="yesterday-ish")
    with pytest.raises(TypeError):
        stats.load_pings(object())


# ------------------------------------------------------------------------------------------
# Uptime policies: ping_values and window_stats(policy=) against the definitions


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    statuses=st.lists(
        st.tuples(
            st.sampled_from(SITES), st.sampled_from(LOCATIONS), st.booleans(), st.integers(1, 900)
        ),
        max_size=40,
    ),
    down_after=st.integers(1, 4),
)
def test_ping_values_follow_runs_and_spans_within_each_location(
    statuses: list[tuple[str, str, bool, int]], down_after: int
) -> None:
    # Pings a variable number of seconds apart, per (site, location) in list order.
    clock: dict[tuple[str, str], pd.Timestamp] = {}
    rows = []
    for site, loc, up, step in statuses:
        at = clock.get((site, loc), T - 12 * H) + pd.Timedelta(seconds=step)
        clock[(site, loc)] = at
        rows.append((site, at, "up" if up else "down", 5, None if up else "timeout", loc))
    pings = frame(rows)
    sites = pd.DataFrame(
        {"site_id": SITES, "down_after": down_after, "interval_ms": 60_000, "timeout_ms": 200_000}
    )
    got = stats.ping_values(pings, sites=sites)
    gap_us = 260_000 * 1000
    for i, (site, at, status, _, _, loc) in enumerate(rows):
        series = [r for r in rows if r[0] == site and r[5] == loc]
        k = series.index(rows[i])
        lo = k
        while lo > 0 and series[lo - 1][2] == "down":
            lo -= 1
        hi = k
        while hi + 1 < len(series) and series[hi + 1][2] == "down":
            hi += 1
        assert got["confirmed"].iloc[i] == (status == "down" and hi - lo + 1 >= down_after)
        following = series[k + 1][1] - at if k + 1 < len(series) else None
        span = gap_us if following is None else min(gap_us, following // US)
        assert got["span_us"].iloc[i] == span
    assert not got["in_maintenance"].any()


def test_window_stats_defaults_keep_the_seed_columns_and_reject_bad_policies() -> None:
    pings = frame([(SITES[0], T - H / 2, "down", None, "timeout", "us-east")])
    assert (
        stats.window_stats(pings, T).columns.tolist()
        == stats.window_stats(pings, T, policy="samples").columns.tolist()
    )
    with pytest.raises(ValueError, match="policy 'strict'"):
        stats.window_stats(pings, T, policy="strict")
    with pytest.raises(ValueError, match="shorter than an hour"):
        stats.window_stats(pings, T, windows={"5m": pd.Timedelta(minutes=5)})
    confirmed = stats.window_stats(pings, T, policy="confirmed")
    assert confirmed["uptime_1h"].tolist() == [100.0]  # one down ping: no incident (yet)
