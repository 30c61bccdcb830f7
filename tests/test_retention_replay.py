"""Retention, two edges: a day pruned, then written again (a replayed spool) and pruned again,
keeps every key once, with its new pings; and the DETACH that waits for a lock (a reader holding
pings) is tried again, then succeeds, or gives up in one line with nothing half done."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import psycopg
import psycopg.rows
import pytest

from uptimelab import stats
from uptimelab.errors import OutputError, StoreError
from uptimelab.storage import retention
from uptimelab.storage.archive import ARCHIVE_SCHEMA, day_dir, read_archive, read_day_file
from uptimelab.storage.database import Database
from uptimelab.storage.retention import PruneResult, pruned_days
from uptimelab.storage.retention import prune as prune_now
from uptimelab.testing.history import write_history

KEEP = dt.timedelta(days=8)
# The clock of one test: every prune of a test cuts at the same instant, or one that ran past
# midnight UTC would take a day more than the one before it.
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(autouse=True)
def _one_clock_per_test() -> None:
    global NOW
    NOW = dt.datetime.now(dt.UTC)


def prune(keep: dt.timedelta, **kwargs: Any) -> PruneResult:
    return prune_now(keep, now=NOW, **kwargs)


# test_retention's helpers (imported from there, its module would import the notebooks' tests).
def partition_days(db: Database) -> list[dt.date]:
    with db.connect() as conn:
        return [r["day"] for r in conn.execute("SELECT day FROM uptimelab_pings_partitions()")]


def first_kept_day() -> dt.date:
    """The oldest UTC day a prune keeping 8 days leaves (the day of the cut-off)."""
    return (NOW - KEEP).date()


def ping_rows(db: Database, where: str = "true") -> list[tuple[Any, ...]]:
    """Every column of the pings matching ``where``, in the archive's order, sorted."""
    columns = ", ".join("site_id::text" if c == "site_id" else c for c in ARCHIVE_SCHEMA.names)
    with db.connect() as conn, conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
        return sorted(cur.execute(f"SELECT {columns} FROM pings WHERE {where}").fetchall())


def archive_rows(archive: Path) -> list[tuple[Any, ...]]:
    return sorted(tuple(r.values()) for r in read_archive(archive).to_pylist())


@pytest.fixture
def history(db: Database) -> Database:
    """test_retention's: ten days of a small fleet through the writer, no day pruned yet."""
    with db.connect() as conn:
        conn.execute("TRUNCATE pings_pruned_days")
    write_history(db, "10d", sites=8, every="30m", seed=11)
    return db


def day_rollup(db: Database, day: dt.date) -> tuple[int, int]:
    """The day's pings and up pings in the hourly rollup."""
    lo = dt.datetime.combine(day, dt.time(), dt.UTC)
    with db.connect() as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pings), 0) AS n, coalesce(sum(pings_up), 0) AS up"
            " FROM ping_rollup_hourly WHERE hour >= %s AND hour < %s",
            (lo, lo + dt.timedelta(days=1)),
        ).fetchone()
    assert row is not None
    return int(row["n"]), int(row["up"])


def replay(db: Database, rows: list[dict[str, Any]]) -> None:
    """Write archived rows into pings again, as a replayed spool would."""
    names = list(ARCHIVE_SCHEMA.names)
    with db.connect() as conn, conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO pings ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})",
            [[r[n] for n in names] for r in rows],
        )


def a_new_ping(like: dict[str, Any], location: str) -> dict[str, Any]:
    return {
        **like,
        "location": location,
        "checked_at": like["checked_at"] + dt.timedelta(microseconds=1),
    }


def keys_of(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [(r[0], r[1], r[7]) for r in rows]


def every_key(db: Database, archive: Path) -> list[tuple[Any, ...]]:
    """Every key stored, in the table or the archive, once, sorted."""
    return sorted(set(keys_of(archive_rows(archive))) | set(keys_of(ping_rows(db))))


def loaded_keys(db: Database, archive: Path) -> list[tuple[Any, ...]]:
    """The keys of every ping ``load_pings`` reads from the table and the archive, sorted."""
    frame = stats.load_pings(db, archive_dir=archive)
    return sorted(
        zip(
            frame["site_id"].astype(str),
            [t.to_pydatetime() for t in frame["checked_at"]],
            frame["location"].astype(str),
            strict=True,
        )
    )


def test_a_day_pruned_again_after_a_replay_holds_every_key_once(
    history: Database, tmp_path: Path
) -> None:
    db = history
    archive = tmp_path / "archive"
    first = prune(KEEP, archive=archive, db=db)
    # A day with pings to replay (the history's first day may hold none, by the hour it runs).
    day = next(p.day for p in first.pruned if p.pings >= 2)
    archived = read_archive(archive).to_pylist()
    of_day = [r for r in archived if r["checked_at"].date() == day]
    rollup_before = day_rollup(db, day)
    # The spool replays half the day (already archived) and two pings the prune never saw.
    new = [a_new_ping(of_day[0], "late-1"), a_new_ping(of_day[1], "late-2")]
    replay(db, of_day[: len(of_day) // 2] + new)
    assert day not in partition_days(db)  # they wait in the default partition
    # Until the next prune the table holds copies of archived pings: read once all the same.
    assert loaded_keys(db, archive) == every_key(db, archive)

    again = prune(KEEP, archive=archive, db=db)

    assert [(p.day, p.pings) for p in again.pruned] == [(day, 2)]
    assert day not in partition_days(db)
    rows = archive_rows(archive)
    keys = keys_of(rows)
    assert len(set(keys)) == len(keys)  # every key once
    assert len(rows) == len(archived) + 2  # the new pings are there
    assert {r[7] for r in rows if r[1].date() == day} >= {"late-1", "late-2"}
    assert read_day_file(day_dir(archive, day) / "part-1.parquet").pings == 2
    assert [(p.day, p.pings) for p in pruned_days(db) if p.day == day] == [
        (day, len(of_day)),
        (day, 2),
    ]
    # The rollup counted the replayed copies a second time when they came; no longer.
    assert loaded_keys(db, archive) == every_key(db, archive)
    n, up = rollup_before
    assert day_rollup(db, day) == (n + 2, up + sum(p["status"] == "up" for p in new))


def test_a_replay_of_pings_all_archived_already_leaves_no_second_file(
    history: Database, tmp_path: Path
) -> None:
    db = history
    archive = tmp_path / "archive"
    day = prune(KEEP, archive=archive, db=db).pruned[0].day
    archived = archive_rows(archive)
    of_day = [r for r in read_archive(archive).to_pylist() if r["checked_at"].date() == day]
    rollup_before = day_rollup(db, day)
    replay(db, of_day)

    again = prune(KEEP, archive=archive, db=db)

    assert [(p.day, p.pings, p.archive_file) for p in again.pruned] == [(day, 0, None)]
    assert archive_rows(archive) == archived
    assert [f.name for f in day_dir(archive, day).iterdir()] == ["part-0.parquet"]
    assert day_rollup(db, day) == rollup_before
    assert day not in partition_days(db)


def test_a_missing_earlier_file_stops_the_prune_of_that_day_in_one_line(
    history: Database, tmp_path: Path
) -> None:
    db = history
    archive = tmp_path / "archive"
    day = prune(KEEP, archive=archive, db=db).pruned[0].day
    of_day = [r for r in read_archive(archive).to_pylist() if r["checked_at"].date() == day]
    (day_dir(archive, day) / "part-0.parquet").unlink()
    replay(db, of_day[:3])

    with pytest.raises(OutputError, match="missing") as failed:
        prune(KEEP, archive=archive, db=db)

    assert "\n" not in str(failed.value)
    assert day in partition_days(db)  # moved out of the default partition, nothing dropped
    lo = f"'{day.isoformat()}'::date::timestamp AT TIME ZONE 'UTC'"
    assert len(ping_rows(db, f"checked_at >= {lo} AND checked_at < {lo} + interval '1 day'")) == 3


@pytest.fixture
def blocker(history: Database) -> Any:
    """A connection holding pings (ACCESS SHARE, as any open reader does): DETACH waits on it."""
    conn = psycopg.connect(history.url)
    conn.execute("LOCK TABLE pings IN ACCESS SHARE MODE")
    yield conn
    conn.close()


def test_a_detach_that_waits_for_a_lock_is_tried_again_and_succeeds(
    history: Database, tmp_path: Path, blocker: psycopg.Connection[Any], monkeypatch: Any
) -> None:
    db = history
    monkeypatch.setattr(retention, "DETACH_WAIT_MS", 50)
    old = f"checked_at < '{first_kept_day().isoformat()}'::date::timestamp AT TIME ZONE 'UTC'"
    before_old = ping_rows(db, old)
    archive = tmp_path / "archive"
    verified: list[dt.date] = []

    def step(name: str, day: dt.date) -> None:
        if name == "verified":
            verified.append(day)
            if len(verified) == 2:
                blocker.rollback()  # the reader ends while the second try waits

    result = prune(KEEP, archive=archive, db=db, step=step)

    assert verified[0] == verified[1] == result.pruned[0].day  # the first day, tried twice
    assert len(verified) == len(result.pruned) + 1
    assert archive_rows(archive) == before_old
    assert ping_rows(db, old) == []


def test_a_detach_that_never_gets_its_lock_gives_up_in_one_line_with_nothing_half_done(
    history: Database, tmp_path: Path, blocker: psycopg.Connection[Any], monkeypatch: Any
) -> None:
    db = history
    monkeypatch.setattr(retention, "DETACH_WAIT_MS", 20)
    old = f"checked_at < '{first_kept_day().isoformat()}'::date::timestamp AT TIME ZONE 'UTC'"
    before_old = ping_rows(db, old)
    days_before = partition_days(db)
    archive = tmp_path / "archive"
    tries: list[dt.date] = []

    with pytest.raises(StoreError) as failed:
        prune(KEEP, archive=archive, db=db, step=lambda name, day: tries.append(day))

    message = str(failed.value)
    assert "\n" not in message
    assert "could not lock" in message
    assert len(tries) == 1 + 5  # written once, verified in each of the five tries
    assert partition_days(db) == days_before  # nothing dropped
    assert pruned_days(db) == []  # nothing recorded
    assert ping_rows(db, old) == before_old
    blocker.rollback()
    prune(KEEP, archive=archive, db=db)  # run again: the file written is checked and used
    assert archive_rows(archive) == before_old
