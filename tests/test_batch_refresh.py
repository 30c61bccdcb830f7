"""A batch's refresh (sql/020): the stats of some sites, read by site, equal the stats of all
sites, read by time, restricted to them, under every policy, with and without maintenance
exclusion, whatever the rollup has reached. test_policies shows the all-sites path equals pandas
and a brute force; this closes the loop for the path the collector takes for each batch."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uptimelab.storage.database import Database

from .test_policies import (
    COLUMNS,
    SITES,
    T_HOUR,
    T,
    histories,
    maintenance_strategy,
    normalised,
    partitioned,  # noqa: F401  (a fixture)
    reset,
    write,
)

WIDTHS = ["1 hour", "24 hours", "168 hours", "720 hours", "2160 hours"]
WINDOW_COLUMNS = "site_id, uptime, avg_response_time, pings, coverage, from_rollups, counted_from"
IDS = [s[0] for s in SITES]


def by_site(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(r["site_id"]): {k: v for k, v in r.items() if k != "site_id"} for r in rows}


@pytest.mark.usefixtures("partitioned")
@settings(
    max_examples=10,  # each example builds a history and reads it 20 ways (about a second)
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    t=st.sampled_from([T, T_HOUR]),
    policy=st.sampled_from(["samples", "confirmed", "time"]),
    exclude=st.booleans(),
    rolled=st.sampled_from([None, dt.timedelta(days=9), dt.timedelta(hours=2)]),
    off=maintenance_strategy,
    chosen=st.lists(st.sampled_from(IDS), min_size=1, max_size=3, unique=True),
)
def test_the_stats_of_chosen_sites_equal_those_of_all_sites(
    db: Database,
    data: st.DataObject,
    t: dt.datetime,
    policy: str,
    exclude: bool,
    rolled: dt.timedelta | None,
    off: list[tuple[uuid.UUID | None, dt.datetime, dt.timedelta]],
    chosen: list[uuid.UUID],
) -> None:
    rows = data.draw(histories(t))
    late = data.draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    reset(db, policy, exclude)
    with db.connect() as conn:
        for site, lo, length in off:
            conn.execute(
                "INSERT INTO maintenance (site_id, starts_at, ends_at) VALUES (%s, %s, %s)",
                (site, lo, lo + length),
            )
    # Late pings below the watermark make dirty rows, which the stats read raw.
    write(db, [r for r, later in zip(rows, late, strict=True) if not later])
    if rolled is not None:
        with db.connect() as conn:
            conn.execute("SELECT uptimelab_advance_rollup(%s)", (t - rolled,))
            conn.execute("SELECT uptimelab_settle_rollup(NULL)")
    write(db, [r for r, later in zip(rows, late, strict=True) if later])
    names = {str(s) for s in chosen}
    stats = f"SELECT {', '.join(COLUMNS)} FROM uptimelab_site_stats_policy_at(%s, %s, %s, %s)"
    window = f"SELECT {WINDOW_COLUMNS} FROM uptimelab_window_at(%s, %s::interval, %s, %s, %s)"
    with db.connect() as conn:
        everyone = normalised(conn.execute(stats, (t, policy, exclude, None)).fetchall())
        some = normalised(conn.execute(stats, (t, policy, exclude, chosen)).fetchall())
        assert some == {k: v for k, v in everyone.items() if k in names}
        for width in WIDTHS:
            whole = by_site(conn.execute(window, (t, width, policy, exclude, None)).fetchall())
            part = by_site(conn.execute(window, (t, width, policy, exclude, chosen)).fetchall())
            assert part == {k: v for k, v in whole.items() if k in names}, width
        # The collector's per-batch refresh writes exactly those rows, and only them.
        conn.execute("SELECT uptimelab_refresh_site_stats(%s, %s)", (t, chosen))
        table = normalised(conn.execute(f"SELECT {', '.join(COLUMNS)} FROM site_stats").fetchall())
    assert table == {k: v for k, v in everyone.items() if k in names}


@pytest.mark.usefixtures("partitioned")
@pytest.mark.parametrize("t", [T, T_HOUR], ids=["mid-hour", "on-the-hour"])
def test_every_boundary_row_of_a_dense_history_is_read_for_chosen_sites(
    db: Database, t: dt.datetime
) -> None:
    # A ping every hour around each window's far edge (a day and a bit either side) and in the
    # last hours, some down, rolled up to two hours before t and settled: every hourly and daily
    # row at the windows' edges exists, so a branch that misses or repeats one row of one site
    # shows. (Hours elsewhere would only make the settle longer: it works hour by hour.)
    reset(db)
    top = t.replace(minute=0, second=0, microsecond=0)
    hours = sorted(
        {top - dt.timedelta(hours=h) for h in range(4)}
        | {top - dt.timedelta(hours=edge + k) for edge in (24, 168, 720) for k in range(-26, 27)}
    )
    rows = [
        (
            site,
            hour + n * dt.timedelta(seconds=7),
            "eu-west",
            (k + n) % 7 != 0,
            100 + (k * 13 + n) % 400,
        )
        for n, site in enumerate(IDS)
        for k, hour in enumerate(hours)
    ]
    write(db, rows)
    with db.connect() as conn:
        conn.execute("SELECT uptimelab_advance_rollup(%s)", (t - dt.timedelta(hours=2),))
        conn.execute("SELECT uptimelab_settle_rollup(NULL)")
        stats = f"SELECT {', '.join(COLUMNS)} FROM uptimelab_site_stats_policy_at(%s, %s, %s, %s)"
        window = f"SELECT {WINDOW_COLUMNS} FROM uptimelab_window_at(%s, %s::interval, %s, %s, %s)"
        # samples reads raw edges plainly; confirmed and time share the per-ping path.
        for policy in ("samples", "time"):
            everyone = normalised(conn.execute(stats, (t, policy, False, None)).fetchall())
            assert len(everyone) == len(IDS)
            for chosen in ([IDS[1]], [IDS[0], IDS[2]]):
                names = {str(s) for s in chosen}
                some = normalised(conn.execute(stats, (t, policy, False, chosen)).fetchall())
                assert some == {k: v for k, v in everyone.items() if k in names}, policy
                for width in ("24 hours", "168 hours", "720 hours"):
                    whole = by_site(
                        conn.execute(window, (t, width, policy, False, None)).fetchall()
                    )
                    part = by_site(
                        conn.execute(window, (t, width, policy, False, chosen)).fetchall()
                    )
                    assert part == {k: v for k, v in whole.items() if k in names}, (
                        policy,
                        width,
                    )


@pytest.mark.usefixtures("partitioned")
@pytest.mark.parametrize("t", [T, T_HOUR], ids=["mid-hour", "on-the-hour"])
def test_a_late_ping_in_a_whole_day_of_the_week_counts_before_its_day_is_settled(
    db: Database, t: dt.datetime
) -> None:
    # A batch's week reads whole days from the daily rollup (sql/024). A late ping reaches its
    # hourly row at once and its day's row only when its hour is settled: until then the day is
    # read by the hour, and the 7-day figures equal those of all sites (read by the hour).
    reset(db)
    top = t.replace(minute=0, second=0, microsecond=0)
    rows = [
        (
            site,
            top - dt.timedelta(hours=h) + n * dt.timedelta(seconds=7),
            "eu-west",
            (h + n) % 5 != 0,
            100 + (h * 11 + n) % 300,
        )
        for n, site in enumerate(IDS)
        for h in range(1, 8 * 24)
    ]
    write(db, rows)
    with db.connect() as conn:
        conn.execute("SELECT uptimelab_advance_rollup(%s)", (t - dt.timedelta(hours=2),))
        conn.execute("SELECT uptimelab_settle_rollup(NULL)")
    # Late: down pings in a whole day three days back, for two of the three sites.
    late = [
        (site, top - dt.timedelta(days=3, minutes=m), "eu-west", False, 900 + m)
        for site in IDS[:2]
        for m in (13, 29)
    ]
    write(db, late)
    stats = f"SELECT {', '.join(COLUMNS)} FROM uptimelab_site_stats_policy_at(%s, %s, %s, %s)"
    with db.connect() as conn:
        day = (top - dt.timedelta(days=3)).replace(hour=0)
        dirty = conn.execute(
            "SELECT count(*) AS n FROM ping_rollup_dirty WHERE hour >= %s AND hour < %s",
            (day, day + dt.timedelta(days=1)),
        ).fetchone()
        assert dirty is not None
        assert dirty["n"] > 0
        for settled in (False, True):
            if settled:
                conn.execute("SELECT uptimelab_settle_rollup(NULL)")
            everyone = normalised(conn.execute(stats, (t, "samples", False, None)).fetchall())
            assert everyone[str(IDS[0])]["pings_7d"] == 7 * 24 - 1 + 2
            for chosen in ([IDS[0]], [IDS[1], IDS[2]], IDS):
                names = {str(s) for s in chosen}
                some = normalised(conn.execute(stats, (t, "samples", False, chosen)).fetchall())
                assert some == {k: v for k, v in everyone.items() if k in names}, settled
