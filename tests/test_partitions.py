"""Day partitions made by several writers at once: never an error, never a row lost or doubled."""

from __future__ import annotations

import datetime as dt
import threading

import psycopg
import pytest

import uptimelab as ul
from uptimelab.storage.database import Database


def _waiting_on_advisory_lock(db: Database, pid: int) -> bool:
    with db.connect() as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM pg_locks WHERE pid = %s AND NOT granted "
            "AND locktype = 'advisory'",
            (pid,),
        ).fetchone()
    return bool(row and row["n"])


@pytest.mark.parametrize("rows_in_default", [0, 3])
def test_two_writers_making_one_day_at_once_both_succeed(
    db: Database, rows_in_default: int
) -> None:
    """The second caller waits on the first's lock, then sees the day it committed (its catalog
    cache had not: CREATE TABLE failed with 'already exists' and the batch was quarantined)."""
    # A day no other test's pings fall on (partitions outlive a test's rows).
    day = dt.date(2031, 5, 17) + dt.timedelta(days=rows_in_default)
    part = f"pings_{day:%Y%m%d}"
    site = ul.add_site("https://a.example/", db=db)
    noon = dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC)
    with db.connect() as conn:
        for k in range(rows_in_default):  # no partition yet: the rows sit in pings_default
            conn.execute(
                "INSERT INTO pings (site_id, checked_at, status, location, region_code) "
                "VALUES (%s, %s, 'up', 'here', 'XX')",
                (site.id, noon + dt.timedelta(minutes=k)),
            )
    first = psycopg.connect(db.url, autocommit=False)
    second = psycopg.connect(db.url, autocommit=False)
    try:
        # Both have looked at the catalog before either makes the day.
        for conn in (first, second):
            conn.execute("SELECT to_regclass(%s)", (part,))
        assert first.execute("SELECT uptimelab_ensure_pings_partition(%s)", (day,)).fetchone() == (
            True,
        )
        result: list[object] = []

        def make() -> None:
            try:
                row = second.execute("SELECT uptimelab_ensure_pings_partition(%s)", (day,))
                result.append(row.fetchone())
                second.commit()
            except psycopg.Error as exc:  # the failure this test is about
                result.append(exc)

        thread = threading.Thread(target=make)
        thread.start()
        pid = second.info.backend_pid
        for _ in range(2000):  # until it waits on the first's lock (a hang guard, not a delay)
            if _waiting_on_advisory_lock(db, pid) or not thread.is_alive():
                break
            threading.Event().wait(0.01)
        first.commit()
        thread.join(30)
        assert result == [(False,)]
    finally:
        first.close()
        second.close()
    with db.connect() as conn:
        row = conn.execute(
            f"SELECT count(*) AS n FROM {part} WHERE site_id = %s", (site.id,)
        ).fetchone()
        left = conn.execute(
            "SELECT count(*) AS n FROM pings_default WHERE site_id = %s", (site.id,)
        ).fetchone()
    assert row is not None
    assert left is not None
    assert (row["n"], left["n"]) == (rows_in_default, 0)
