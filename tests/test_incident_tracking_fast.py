"""The writer's incident tracking (sql/017, 018: the sites in which nothing can change set aside
first) returns the same transitions and leaves the same tables as sql/011's full judgement of
every series, batch by batch, in any order, with replays, flapping and second locations."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uptimelab.storage.copying import PingCopier
from uptimelab.storage.database import Database
from uptimelab.storage.incidents import IncidentRules, series_params
from uptimelab.storage.spool import PingRow

from .db_snapshot import empty_tables
from .test_incidents import MINUTE, T0, ping_row

SITES = [uuid.UUID(int=i) for i in (1, 2, 3)]
_FULL = "SELECT * FROM uptimelab_track_incidents(%s, %s, %s, %s, %s, %s, %s, %s, %s)"
_FAST = "SELECT * FROM uptimelab_track_incidents_fast(%s, %s, %s, %s, %s, %s, %s, %s, %s)"


def _state(conn: psycopg.Connection[Any], found: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The transitions (incident ids aside: a rolled back insert still takes one) and the
    tables incident tracking keeps."""
    return (
        [r[:4] + r[5:] for r in found],
        conn.execute(
            "SELECT site_id, location, started_at, confirmed_at, resolved_at, category, "
            "message, down_pings FROM incidents ORDER BY 1, 2 NULLS FIRST, 3"
        ).fetchall(),
        conn.execute("SELECT * FROM incident_series ORDER BY 1, 2").fetchall(),
        conn.execute(
            "SELECT site_id, started_at, ended_at FROM incident_flapping ORDER BY 1, 2"
        ).fetchall(),
    )


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    k=st.one_of(st.none(), st.integers(1, 2)),
    counts=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    flap_changes=st.integers(1, 2),
    flap_window_ms=st.sampled_from([120_000, 600_000]),
    # Mostly one location (sql/017's case set aside) or two (sql/018's: the quorum verdict's
    # reach must hold no down ping); mostly up, or nearly always.
    places=st.sampled_from([["eu-west"] * 4 + ["us-east"], ["eu-west", "us-east"]]),
    ups=st.sampled_from([[True] * 3 + [False], [True] * 12 + [False]]),
)
def test_setting_quiet_sites_aside_changes_nothing(
    db: Database,
    data: st.DataObject,
    k: int | None,
    counts: tuple[int, int],
    flap_changes: int,
    flap_window_ms: int,
    places: list[str],
    ups: list[bool],
) -> None:
    # Downs, second locations, late pings and replays mixed in.
    rows = data.draw(
        st.lists(
            st.tuples(
                st.sampled_from(SITES),
                st.integers(0, 40).map(lambda m: T0 + m * MINUTE),
                st.sampled_from(places),
                st.sampled_from(ups),
            ),
            min_size=10,
            max_size=60,
            unique_by=lambda r: (r[0], r[1], r[2]),
        )
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(rows)), max_size=10)))
    batches = [rows[a:b] for a, b in itertools.pairwise([0, *cuts, len(rows)])]
    batches = data.draw(st.permutations(batches))
    batches += data.draw(st.lists(st.sampled_from(batches), max_size=2)) if batches else []
    rules = IncidentRules(
        default_interval_ms=60_000,
        quorum=k,
        flap_changes=flap_changes,
        flap_window_ms=flap_window_ms,
    )
    with db.connect() as conn:
        empty_tables(conn, ["sites"])
        for site in SITES:
            conn.execute(
                "INSERT INTO sites (id, url, down_after, up_after) VALUES (%s, %s, %s, %s)",
                (site, f"http://{site}/", *counts),
            )
    _compare(db, [[ping_row(*r) for r in batch] for batch in batches], rules)


def _compare(db: Database, batches: list[list[PingRow]], rules: IncidentRules) -> set[str]:
    """Store each batch, track it both ways (the full judgement rolled back), compare; the
    kinds of the last batch's transitions."""
    store = PingCopier(None)
    kinds: set[str] = set()
    with psycopg.connect(db.url, autocommit=True) as conn:
        for pings in batches:
            if not pings:
                continue
            store.write(conn, None, pings, replay=True)
            params = series_params(pings, rules)
            with conn.transaction(force_rollback=True):
                full = _state(conn, conn.execute(_FULL, params).fetchall())
            with conn.transaction():
                fast = _state(conn, conn.execute(_FAST, params).fetchall())
            assert fast == full
            kinds = {t[0] for t in fast[0]}
    return kinds


@pytest.mark.parametrize(
    ("counts", "rules", "pattern", "kinds"),
    [
        # flapping (two changes within the window), then all up after it: the site is judged
        # for flapping all the same, and becomes stable
        ((1, 1), IncidentRules(flap_changes=1, flap_window_ms=120_000),
         [(0, "eu", False), (60, "eu", True), (300, "eu", True)], {"stable"}),
        # a second location's down ping makes the quorum verdict (one is enough) down at the
        # first location's up pings: all up, yet the verdict is judged
        ((2, 1), IncidentRules(quorum=1),
         [(0, "eu", True), (0, "us", True), (60, "us", False), (90, "eu", True)], {"down"}),
    ],
)  # fmt: skip
def test_what_is_judged_though_all_up(
    db: Database,
    counts: tuple[int, int],
    rules: IncidentRules,
    pattern: list[tuple[int, str, bool]],
    kinds: set[str],
) -> None:
    site = SITES[0]
    with db.connect() as conn:
        conn.execute(
            "INSERT INTO sites (id, url, down_after, up_after) VALUES (%s, %s, %s, %s)",
            (site, "http://t.example/", *counts),
        )
    batches = [[ping_row(site, T0 + dt.timedelta(seconds=s), loc, up)] for s, loc, up in pattern]
    assert kinds <= _compare(db, batches, rules)
