"""Retention against a concurrent replay: a spool replays pings of an old day (on a connection of
its own, through the writer's replay statement) at each step boundary of a prune of that day, for
a day pruned for the first time and for a day pruned again. Afterwards no key is in the archive
twice, and once a later prune has run, every key of the day is in the archive exactly once with
no ping lost, and the hourly rollup counts each once."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import psycopg
import psycopg.rows
import pytest

from uptimelab.domain.pings import PING_COLUMNS
from uptimelab.storage.archive import read_archive
from uptimelab.storage.copying import PingCopier
from uptimelab.storage.database import Database
from uptimelab.storage.retention import prune
from uptimelab.testing.history import write_history

from .test_retention_replay import day_rollup

KEEP = dt.timedelta(days=8)
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
DAY = dt.date(2026, 3, 1)
"""A whole day of the history that a prune at NOW keeping 8 days archives (whatever the clock)."""
_DAY_LO = dt.datetime.combine(DAY, dt.time(), dt.UTC)
_DAY_SQL = "checked_at >= %s AND checked_at < %s"
Key = tuple[str, dt.datetime, str]


@pytest.fixture
def history(db: Database) -> Database:
    """Ten days of eight sites, one ping an hour, ending at NOW; no day pruned yet."""
    with db.connect() as conn:
        conn.execute("TRUNCATE pings_pruned_days")
    write_history(db, "10d", sites=8, every="1h", seed=5, now=NOW)
    return db


def day_rows(db: Database) -> list[tuple[Any, ...]]:
    """The stored pings of DAY, in PING_COLUMNS order (a spool's rows), by key."""
    with db.connect() as conn, conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
        return cur.execute(
            f"SELECT {', '.join(PING_COLUMNS)} FROM pings WHERE {_DAY_SQL} ORDER BY 1, 2, 8",
            (_DAY_LO, _DAY_LO + dt.timedelta(days=1)),
        ).fetchall()


def key(row: tuple[Any, ...]) -> Key:
    return (str(row[0]), row[1], row[7])


def a_new_ping(like: tuple[Any, ...], location: str) -> tuple[Any, ...]:
    """A ping the prune never saw: ``like`` at another location."""
    return (*like[:7], location, *like[8:])


def archived_keys(archive: Path) -> list[Key]:
    """The keys of DAY in every file of the archive, one entry per copy, sorted."""
    rows = read_archive(archive).to_pylist()
    return sorted(
        (r["site_id"], r["checked_at"], r["location"])
        for r in rows
        if r["checked_at"].date() == DAY
    )


class Replay:
    """A spool replaying ``rows`` in a thread, on a connection of its own, through the writer's
    replay (staged, ON CONFLICT DO NOTHING); a transient fault (a deadlock with the prune's
    DETACH) is tried again, as the writer's retries do. Blocked by the prune, it ``gives_way``
    in the deadlock that follows, or the prune does."""

    def __init__(self, db: Database, rows: list[tuple[Any, ...]], *, gives_way: bool) -> None:
        self.db, self.rows = db, rows
        self.conn = psycopg.connect(db.url, autocommit=True)
        if not gives_way:
            # PostgreSQL aborts the first waiter to look for a deadlock: the replay, which waits
            # first, unless it looks much later than the prune (after 1 s, the default) does.
            try:
                self.conn.execute("SET deadlock_timeout = '30s'")
            except psycopg.errors.InsufficientPrivilege:
                self.conn.close()
                pytest.skip("setting deadlock_timeout needs a superuser")
        self.done = threading.Event()
        self.failed: list[BaseException] = []
        self.retried = 0
        self.blocked = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while True:
                try:
                    PingCopier().write(self.conn, None, self.rows, replay=True)
                    return
                except psycopg.OperationalError:
                    self.retried += 1
                    if self.retried > 20:
                        raise
        except Exception as exc:  # handed to the test's thread by finish()
            self.failed.append(exc)
        finally:
            self.done.set()

    def start_until_stored_or_blocked(self) -> None:
        """Start, and return once the replay has committed or waits on a lock of the prune."""
        self.thread.start()
        pid = self.conn.info.backend_pid
        with psycopg.connect(self.db.url, autocommit=True) as watcher:
            while not self.done.wait(0.005):
                row = watcher.execute(
                    "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", (pid,)
                ).fetchone()
                if row and row[0]:
                    self.blocked = True
                    return

    def finish(self) -> None:
        self.thread.join(timeout=120)
        self.conn.close()
        assert self.done.is_set(), "the replay never finished"
        if self.failed:
            raise self.failed[0]


CASES = [
    *(("first time", at, "replay") for at in ("written", "verified", "dropped")),
    *(
        ("again", at, "replay")
        for at in ("deduped", "deduped again", "written", "verified", "dropped")
    ),
    # Everything replayed since the first prune was archived already: no file for the part.
    *(("again, nothing new", at, "replay") for at in ("deduped", "deduped again", "dropped")),
    # A replay the prune's lock holds up, and the prune, not the replay, gives way.
    ("first time", "verified", "prune"),
    ("again", "written", "prune"),
    ("again, nothing new", "deduped again", "prune"),
]


@pytest.mark.parametrize(
    ("pruned", "at", "gives_way"),
    CASES,
    ids=[f"{p}-{a}-{g}-gives-way".replace(", ", "-").replace(" ", "-") for p, a, g in CASES],
)
def test_a_replay_at_any_step_of_a_prune_leaves_every_key_once_and_loses_none(
    history: Database, tmp_path: Path, pruned: str, at: str, gives_way: str
) -> None:
    db = history
    archive = tmp_path / "archive"
    stored = day_rows(db)
    assert len(stored) >= 4
    half = stored[: len(stored) // 2]
    expected = {key(r) for r in stored}
    if pruned != "first time":
        # The day was archived once; a spool then replayed half of it (and a ping unseen).
        prune(KEEP, archive=archive, db=db, now=NOW)
        late = [] if pruned == "again, nothing new" else [a_new_ping(stored[0], "late-1")]
        first = Replay(db, [*half, *late], gives_way=True)
        first.start_until_stored_or_blocked()
        first.finish()
        expected.update(key(r) for r in late)
    # At the step, the spool replays that half again (the copies the dedupe just removed, or
    # pings still in the table, or archived and dropped) and a ping the prune never saw.
    latest = a_new_ping(stored[-1], "late-2")
    expected.add(key(latest))
    replays: list[Replay] = []

    def step(name: str, day: dt.date) -> None:
        if name == at and day == DAY and not replays:
            replays.append(Replay(db, [*half, latest], gives_way=gives_way == "replay"))
            replays[0].start_until_stored_or_blocked()

    prune(KEEP, archive=archive, db=db, now=NOW, step=step)
    assert replays, f"the prune never reached {at!r} for {DAY}"
    replays[0].finish()
    if gives_way == "prune":  # the case is what it says: held up, and not the one aborted
        assert (replays[0].blocked, replays[0].retried) == (True, 0)

    keys = archived_keys(archive)
    assert len(keys) == len(set(keys)), "a key archived twice"
    prune(KEEP, archive=archive, db=db, now=NOW)  # the next scheduled run: the rest of the day
    assert day_rows(db) == []
    assert archived_keys(archive) == sorted(expected)  # every key once, none lost
    assert day_rollup(db, DAY)[0] == len(expected)
