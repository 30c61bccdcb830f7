"""Dirty rollup rows that wait (sql/019): the rows of a site that stopped in the middle of a run
shorter than its down_after stay dirty (their values may still change) but no longer come first
at every settle; a later ping of the site makes them ready again."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from uptimelab.storage.database import Database

from .test_long_windows import compare, partitioned  # noqa: F401 - the fixture
from .test_policies import SITES, default_settings, reset, write  # noqa: F401 - autouse

MIN = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
T0 = dt.datetime(2026, 10, 20, 10, tzinfo=dt.UTC)


def dirty(db: Database) -> list[tuple[Any, dt.datetime]]:
    with db.connect() as conn:
        rows = conn.execute("SELECT site_id, hour FROM ping_rollup_dirty ORDER BY hour").fetchall()
    return [(r["site_id"], r["hour"]) for r in rows]


def settle(db: Database, rows: int | None) -> int:
    with db.connect() as conn:
        row = conn.execute("SELECT uptimelab_settle_rollup(%s) AS n", (rows,)).fetchone()
    assert row is not None
    return int(row["n"])


def advance(db: Database, upto: dt.datetime) -> None:
    with db.connect() as conn:
        conn.execute("SELECT uptimelab_advance_rollup(%s)", (upto,))


@pytest.mark.usefixtures("partitioned")
def test_a_site_stopped_in_a_short_run_waits_and_does_not_hold_up_the_settle(
    db: Database,
) -> None:
    reset(db, "confirmed")
    stopped, other = SITES[2][0], SITES[0][0]  # down_after 3 and 1
    # Up, then two down pings (a run shorter than 3: not an incident yet), then nothing.
    write(db, [(stopped, T0, "a", True, 10)])
    write(db, [(stopped, T0 + m * MIN, "a", False, None) for m in (1, 2)])
    advance(db, T0 + 2 * HOUR)
    assert settle(db, None) == 1
    assert dirty(db) == [(stopped, T0)]  # its values may still change: read raw
    compare(db, T0 + 6 * HOUR, dt.timedelta(days=1), "confirmed")

    # Nothing came that could change it: the settle passes it by (it took it again, for ever).
    assert settle(db, None) == 0

    # A later hour of another site is settled with a share of one row (the stopped site's
    # older row took every share).
    write(db, [(other, T0 + 3 * HOUR + m * MIN, "a", True, 20) for m in range(3)])
    advance(db, T0 + 5 * HOUR)
    assert settle(db, 1) == 1
    assert dirty(db) == [(stopped, T0)]
    compare(db, T0 + 6 * HOUR, dt.timedelta(days=1), "confirmed")

    # The run goes on after the watermark: the third down ping confirms it, the row is ready
    # again and settled for good.
    write(db, [(stopped, T0 + 5 * HOUR + MIN, "a", False, None)])
    assert settle(db, None) == 1
    assert dirty(db) == []
    with db.connect() as conn:
        row = conn.execute(
            "SELECT pings, pings_down_confirmed FROM ping_rollup_hourly"
            " WHERE site_id = %s AND hour = %s",
            (stopped, T0),
        ).fetchone()
    assert row == {"pings": 3, "pings_down_confirmed": 2}
    compare(db, T0 + 6 * HOUR, dt.timedelta(days=1), "confirmed")


@pytest.mark.usefixtures("partitioned")
def test_a_late_ping_below_the_watermark_makes_a_waiting_row_ready(db: Database) -> None:
    reset(db, "confirmed")
    stopped = SITES[2][0]
    write(db, [(stopped, T0, "a", True, 10)])
    write(db, [(stopped, T0 + m * MIN, "a", False, None) for m in (1, 2)])
    advance(db, T0 + 2 * HOUR)
    settle(db, None)
    assert settle(db, None) == 0
    # A replayed ping inside the run (below the watermark): the trigger marks the rows again.
    write(db, [(stopped, T0 + 90 * dt.timedelta(seconds=1), "a", False, None)])
    assert settle(db, None) == 1
    with db.connect() as conn:
        row = conn.execute(
            "SELECT pings, pings_down_confirmed FROM ping_rollup_hourly WHERE site_id = %s",
            (stopped,),
        ).fetchone()
    assert row == {"pings": 4, "pings_down_confirmed": 3}
    assert dirty(db) == []
    compare(db, T0 + 6 * HOUR, dt.timedelta(days=1), "confirmed")
