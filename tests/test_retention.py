"""Retention: prune into the Parquet archive (and the checks before a drop), crash safety between
the steps, the maintenance run and its schedule in the collector, and reading the archive back."""

from __future__ import annotations

import datetime as dt
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uptimelab.collector import Collector
from uptimelab.config import Settings, parse_duration
from uptimelab.errors import ConfigError, UptimelabError
from uptimelab.ops.maintain import maintain_every
from uptimelab.storage.archive import (
    ARCHIVE_SCHEMA,
    day_dir,
    key_checksum,
    read_archive,
    read_day_file,
)
from uptimelab.storage.database import Database, connect
from uptimelab.storage.maintenance import MaintenanceReport, RetentionPolicy, maintain_once
from uptimelab.storage.retention import MAINTENANCE_LOCK, prune, pruned_days
from uptimelab.storage.site_stats import refresh_stats
from uptimelab.testing.history import write_history

from .db_snapshot import Snapshot, written_once
from .test_notebooks import (
    kernel,  # noqa: F401 - the notebooks' kernel, over the pruned history of seeded_url below
)
from .test_notebooks import (
    test_the_notebook_runs_without_errors_or_warnings as test_the_notebook_runs_over_a_pruned_history,  # noqa: E501, F401
)

KEEP_DAYS = 8


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "uptimelab", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def kept() -> dict[str, Snapshot]:
    return {}


@pytest.fixture
def history(db: Database, kept: dict[str, Snapshot]) -> Iterator[Database]:
    """Ten days of a small fleet up to now, written through the writer, and no day pruned yet;
    written once a quarter of an hour (and each UTC day), put back as it was for the other
    tests (tests/db_snapshot.py)."""

    def write() -> None:
        with db.connect() as conn:
            conn.execute("TRUNCATE pings_pruned_days")
        write_history(db, "10d", sites=8, every="30m", seed=11)

    written_once(kept, db.url, write, max_age=dt.timedelta(minutes=15))
    # Day partitions other tests of this worker left (empty: the db fixture emptied pings) would
    # be pruned with the history's days: a day without pings is dropped without a file.
    first = (dt.datetime.now(dt.UTC) - dt.timedelta(days=11)).date()
    with db.connect() as conn:
        for day in partition_days(db):
            if day < first:
                conn.execute(f"DROP TABLE pings_{day:%Y%m%d}")
    return db


def partition_days(db: Database) -> list[dt.date]:
    with db.connect() as conn:
        return [r["day"] for r in conn.execute("SELECT day FROM uptimelab_pings_partitions()")]


def first_kept_day(now: dt.datetime | None = None) -> dt.date:
    """The oldest UTC day a prune keeping 8 days leaves (the day of the cut-off)."""
    return ((now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=KEEP_DAYS)).date()


def ping_rows(db: Database, where: str = "true") -> list[tuple[Any, ...]]:
    """Every column of the pings matching ``where``, in the archive's order, sorted."""
    columns = ", ".join("site_id::text" if c == "site_id" else c for c in ARCHIVE_SCHEMA.names)
    with db.connect() as conn, conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
        return sorted(cur.execute(f"SELECT {columns} FROM pings WHERE {where}").fetchall())


def archive_rows(archive: Path) -> list[tuple[Any, ...]]:
    table = read_archive(archive)
    return sorted(tuple(r.values()) for r in table.to_pylist())


def stats_snapshot(db: Database) -> tuple[list[Any], ...]:
    """site_stats (every window to 30 days, refreshed at one fixed time) and the rollups."""
    with db.connect() as conn:
        mark = conn.execute("SELECT max(last_checked) AS t FROM site_stats").fetchone()
        assert mark is not None
        refresh_stats(at=mark["t"], db=db)
        stats = conn.execute("SELECT * FROM site_stats ORDER BY site_id").fetchall()
        rollup = conn.execute("SELECT * FROM ping_rollup_hourly ORDER BY site_id, hour").fetchall()
        daily = conn.execute("SELECT * FROM ping_rollup_daily ORDER BY site_id, day").fetchall()
    for row in stats:
        row.pop("updated_at"), row.pop("created_at"), row.pop("id")
    return stats, rollup, daily


def test_prune_keep_8d_archives_the_old_days_and_drops_their_partitions(
    history: Database, tmp_path: Path
) -> None:
    db = history
    kept = first_kept_day()
    old = f"checked_at < '{kept.isoformat()}'::date::timestamp AT TIME ZONE 'UTC'"
    before_old, before_kept = ping_rows(db, old), ping_rows(db, f"NOT ({old})")
    stats_before = stats_snapshot(db)
    archive = tmp_path / "archive"

    done = run("prune", "--keep", "8d", "--archive", str(archive))

    assert done.returncode == 0, done.stderr
    assert "pruned" in done.stdout
    assert min(partition_days(db)) >= kept  # the old partitions are gone
    assert ping_rows(db, old) == []
    assert ping_rows(db, f"NOT ({old})") == before_kept
    in_archive = archive_rows(archive)
    assert len(before_old) > 0
    assert in_archive == before_old  # archive rows = dropped rows, column for column
    keys = [(r[0], r[1], r[7]) for r in in_archive]
    assert len(set(keys)) == len(keys)  # every key once
    days = {r[1].date() for r in before_old}
    assert [p.day for p in pruned_days(db) if p.archive_file] == sorted(days)
    for day in days:  # one file per day, with the schema, zstd
        files = list(day_dir(archive, day).iterdir())
        assert [f.name for f in files] == ["part-0.parquet"]
        meta = pq.ParquetFile(files[0]).metadata
        assert meta.row_group(0).column(0).compression == "ZSTD"
        assert pq.read_schema(files[0]).remove_metadata() == ARCHIVE_SCHEMA
    assert stats_snapshot(db) == stats_before  # site_stats and the hourly rollup stay


def test_a_second_prune_finds_nothing_more_to_do(history: Database, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    first = prune(dt.timedelta(days=KEEP_DAYS), archive=archive, db=history)
    again = prune(dt.timedelta(days=KEEP_DAYS), archive=archive, db=history)
    assert first.pruned
    assert again.pruned == []
    assert len(archive_rows(archive)) == first.pings


class Killed(Exception):
    """Stands for the process dying at a step."""


@pytest.mark.parametrize("at", ["written", "verified", "dropped"])
@pytest.mark.parametrize("nth", [1, 2])
def test_a_prune_killed_after_a_step_resumes_without_loss_or_double(
    history: Database, tmp_path: Path, at: str, nth: int
) -> None:
    db = history
    kept = first_kept_day()
    old = f"checked_at < '{kept.isoformat()}'::date::timestamp AT TIME ZONE 'UTC'"
    before_old = ping_rows(db, old)
    archive = tmp_path / "archive"
    seen: list[dt.date] = []

    def step(name: str, day: dt.date) -> None:
        if name == at:
            seen.append(day)
            if len(seen) == nth:
                raise Killed(day)

    with pytest.raises(Killed) as killed:
        prune(dt.timedelta(days=KEEP_DAYS), archive=archive, db=db, step=step)
    day = killed.value.args[0]
    still_there = day in partition_days(db)
    # Killed before the commit, the day is still in pings; after it, it is gone and recorded.
    assert still_there == (at != "dropped")
    assert (day in [p.day for p in pruned_days(db)]) == (at == "dropped")
    assert (day_dir(archive, day) / "part-0.parquet").exists()  # written before any drop

    prune(dt.timedelta(days=KEEP_DAYS), archive=archive, db=db)

    assert archive_rows(archive) == before_old
    assert ping_rows(db, old) == []
    archived = [p.day for p in pruned_days(db) if p.archive_file]
    assert archived == sorted({r[1].date() for r in before_old})  # each day once
    for directory in (archive / "pings").iterdir():
        assert [f.name for f in directory.iterdir()] == ["part-0.parquet"]  # no temporaries


KILL_SCRIPT = """
import datetime as dt, os, signal, sys
from pathlib import Path
from uptimelab.storage.database import Database
from uptimelab.storage.retention import prune

def step(name, day):
    if name == sys.argv[3]:
        print(day.isoformat(), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

prune(dt.timedelta(days=8), archive=Path(sys.argv[2]), db=Database(url=sys.argv[1]), step=step)
"""


def wait_for_the_lock_to_go(db: Database) -> None:
    """The killed process's session (and its advisory lock) ends when the server sees the
    socket close; wait for that, with a guard."""
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    with db.connect(autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = %s",
                (MAINTENANCE_LOCK & 0xFFFFFFFF,),
            ).fetchone()
            if row is not None and row["n"] == 0:
                return
            assert dt.datetime.now(dt.UTC) < deadline, "the killed prune's lock never went"
            conn.execute("SELECT pg_sleep(0.05)")


@pytest.mark.parametrize("at", ["written", "verified"])
def test_a_prune_killed_with_sigkill_resumes(history: Database, tmp_path: Path, at: str) -> None:
    db = history
    old = f"checked_at < '{first_kept_day().isoformat()}'::date::timestamp AT TIME ZONE 'UTC'"
    before_old = ping_rows(db, old)
    archive = tmp_path / "archive"
    killed = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, db.url, str(archive), at],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    day = dt.date.fromisoformat(killed.stdout.split()[0])
    assert day in partition_days(db)  # the drop's transaction never committed
    wait_for_the_lock_to_go(db)

    prune(dt.timedelta(days=KEEP_DAYS), archive=archive, db=db)

    assert archive_rows(archive) == before_old
    assert day not in partition_days(db)
    assert [f.name for f in day_dir(archive, day).iterdir()] == ["part-0.parquet"]


def test_a_file_that_does_not_match_the_partition_is_written_again(
    history: Database, tmp_path: Path
) -> None:
    """A file left by a killed run, after which rows came for the day: never dropped as is."""
    db = history
    archive = tmp_path / "archive"
    oldest = min(partition_days(db))

    def kill_after_writing(name: str, day: dt.date) -> None:
        if name == "written":
            raise Killed(day)

    with pytest.raises(Killed):
        prune(dt.timedelta(days=KEEP_DAYS), archive=archive, db=db, step=kill_after_writing)
    with db.connect() as conn:  # a late ping of that day (a replayed spool)
        site = conn.execute("SELECT site_id FROM pings LIMIT 1").fetchone()
        assert site is not None
        conn.execute(
            "INSERT INTO pings (site_id, checked_at, status, status_code, response_time_ms,"
            " location, region_code) VALUES (%s, %s, 'up', 200, 5, 'late', 'XX')",
            (site["site_id"], dt.datetime.combine(oldest, dt.time(12, 0, 0, 1), dt.UTC)),
        )
    before_old = ping_rows(
        db, f"checked_at < '{first_kept_day().isoformat()}'::date::timestamp AT TIME ZONE 'UTC'"
    )

    prune(dt.timedelta(days=KEEP_DAYS), archive=archive, db=db)

    assert archive_rows(archive) == before_old
    assert read_day_file(day_dir(archive, oldest) / "part-0.parquet").pings == sum(
        1 for r in before_old if r[1].date() == oldest
    )


def test_pings_in_the_default_partition_are_moved_into_days_and_archived(
    db: Database, tmp_path: Path
) -> None:
    with db.connect() as conn:
        conn.execute("TRUNCATE pings_pruned_days")
    write_history(db, "2d", sites=8, every="1h", seed=3)
    long_ago = dt.datetime(2001, 2, 3, 4, 5, 6, 789, tzinfo=dt.UTC)
    with db.connect() as conn:
        site = conn.execute("SELECT id FROM sites LIMIT 1").fetchone()
        assert site is not None
        conn.execute(
            "INSERT INTO pings (site_id, checked_at, status, error_category, error_message,"
            " location, region_code) VALUES (%s, %s, 'down', 'timeout', 'a \"quoted\",\nline',"
            " 'Z|here', 'XX')",
            (site["id"], long_ago),
        )
        assert conn.execute("SELECT count(*) AS n FROM pings_default").fetchone() == {"n": 1}
    archive = tmp_path / "archive"

    result = prune(dt.timedelta(days=KEEP_DAYS), archive=archive, db=db)

    assert result.default_days_moved == 1
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) AS n FROM pings_default").fetchone() == {"n": 0}
    (row,) = read_archive(archive).to_pylist()
    assert (row["checked_at"], row["error_message"], row["location"]) == (
        long_ago,
        'a "quoted",\nline',
        "Z|here",
    )
    assert row["status_code"] is None
    assert row["dns_ms"] is None


def test_an_empty_old_day_is_dropped_without_a_file(db: Database, tmp_path: Path) -> None:
    with db.connect() as conn:
        conn.execute("TRUNCATE pings_pruned_days")
        conn.execute("SELECT uptimelab_ensure_pings_partition('2003-04-05')")
    archive = tmp_path / "archive"

    result = prune(dt.timedelta(days=KEEP_DAYS), archive=archive, db=db)

    assert dt.date(2003, 4, 5) not in partition_days(db)
    assert dt.date(2003, 4, 5) in [p.day for p in result.pruned]
    assert {(p.pings, p.archive_file) for p in result.pruned} == {(0, None)}  # all were empty
    assert not archive.exists()


@pytest.mark.parametrize("keep", ["7d", "1w", "191h", "3d", "0.5d"])
def test_prune_refuses_a_cut_off_inside_the_7_day_stats_window(
    db: Database, tmp_path: Path, keep: str
) -> None:
    before = partition_days(db)
    done = run("prune", "--keep", keep, "--archive", str(tmp_path / "a"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: --keep=")
    assert done.stderr.count("\n") == 1
    assert partition_days(db) == before
    assert not (tmp_path / "a").exists()
    with pytest.raises(ConfigError, match="at least 8 days"):
        prune(parse_duration(keep), archive=tmp_path / "a", db=db)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--keep", "ninety days"], "error: --keep='ninety days': use a positive duration"),
        (["--keep", "-9d"], "error: --keep='-9d'"),
        (["--keep", "90d", "--archive", "{file}"], "error: --archive={file}: is a file"),
        (["maintain", "--every", "0.5s"], "error: --every=0.5s: at least 1s"),
    ],
)
def test_bad_input_is_one_line_and_nothing_is_dropped(
    history: Database, tmp_path: Path, args: list[str], said: str
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    before = partition_days(history)
    argv = [a.replace("{file}", str(a_file)) for a in args]
    done = run(*(argv if argv[0] == "maintain" else ["prune", *argv]))
    assert done.returncode == 2
    assert done.stderr.startswith(said.replace("{file}", str(a_file)))
    assert done.stderr.count("\n") == 1
    assert partition_days(history) == before


def test_a_dry_run_lists_the_days_and_changes_nothing(history: Database, tmp_path: Path) -> None:
    before = partition_days(history)
    done = run("prune", "--keep", "8d", "--dry-run", "--archive", str(tmp_path / "a"))
    assert done.returncode == 0, done.stderr
    old = [d for d in before if d < first_kept_day()]
    assert all(d.isoformat() in done.stdout for d in old)
    assert old
    assert partition_days(history) == before
    assert not (tmp_path / "a").exists()


def test_prune_without_archive_and_without_a_terminal_refuses_unless_yes(
    history: Database,
) -> None:
    before = partition_days(history)
    refused = run("prune", "--keep", "8d")
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: --archive not given")
    assert refused.stderr.count("\n") == 1
    assert partition_days(history) == before

    dropped = run("prune", "--keep", "8d", "--yes")
    assert dropped.returncode == 0, dropped.stderr
    assert min(partition_days(history)) >= first_kept_day()
    assert all(p.archive_file is None for p in pruned_days(history))


def answer_on_a_terminal(args: list[str], answer: str) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin and stdout, answer its question."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uptimelab", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=os.environ.copy(),
    )
    os.close(follower)
    out = b""
    answered = False
    while True:
        ready, _, _ = select.select([leader], [], [], 120)  # a hang guard
        assert ready, f"the command neither asked nor ended: {out!r}"
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        out += chunk
        if not answered and b"[y/N]" in out:
            os.write(leader, answer.encode() + b"\n")
            answered = True
    os.close(leader)
    return proc.wait(timeout=120), out.decode(errors="replace")


def test_prune_without_archive_asks_first_on_a_terminal(history: Database) -> None:
    before = partition_days(history)
    code, shown = answer_on_a_terminal(["prune", "--keep", "8d"], "n")
    assert "without archiving them? [y/N]" in shown
    assert code == 1
    assert "nothing dropped" in shown
    assert partition_days(history) == before

    code, shown = answer_on_a_terminal(["prune", "--keep", "8d"], "y")
    assert code == 0, shown
    assert min(partition_days(history)) >= first_kept_day()


def test_maintain_makes_partitions_prunes_into_the_archive_and_refreshes(
    history: Database, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    done = run("maintain", env={"RETENTION_DAYS": "8", "ARCHIVE_DIR": str(archive)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "partitions",
        "prune",
        "notifications",
        "stats",
    ]
    today = dt.datetime.now(dt.UTC).date()
    days = partition_days(history)
    assert {today + dt.timedelta(days=k) for k in range(8)} <= set(days)
    assert min(days) >= first_kept_day()
    assert archive_rows(archive)
    assert "archived to" in lines[1]


@pytest.mark.parametrize(
    ("env", "drops"),
    [
        ({}, False),  # RETENTION_DAYS unset: keep everything
        ({"RETENTION_DAYS": "8"}, False),  # no ARCHIVE_DIR and no permission to drop
        ({"RETENTION_DAYS": "8", "RETENTION_DROP_UNARCHIVED": "true"}, True),
        ({"RETENTION_DAYS": "30", "RETENTION_DROP_UNARCHIVED": "true"}, False),  # all is newer
    ],
)
def test_maintain_prunes_only_what_the_settings_ask(
    history: Database, env: dict[str, str], drops: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("RETENTION_DAYS", "ARCHIVE_DIR", "RETENTION_DROP_UNARCHIVED"):
        monkeypatch.delenv(name, raising=False)
    before = partition_days(history)
    done = run("maintain", env=env)
    assert done.returncode == 0, done.stderr
    gone = set(before) - set(partition_days(history))
    assert bool(gone) == drops, done.stdout
    assert (min(partition_days(history)) >= first_kept_day()) == drops


def test_one_maintenance_at_a_time_per_database(history: Database, tmp_path: Path) -> None:
    before = partition_days(history)
    with history.connect(autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MAINTENANCE_LOCK,))
        report = maintain_once(RetentionPolicy(8, tmp_path / "archive"), db=history)
        refused = run("prune", "--keep", "8d", "--archive", str(tmp_path / "archive"))
    assert report.skipped
    assert report.lines == ["skipped: another process is maintaining this database"]
    assert refused.returncode == 1
    assert "another prune or maintenance" in refused.stderr
    assert partition_days(history) == before


async def test_the_collector_runs_the_maintenance_on_its_schedule(
    history: Database, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    config = Settings.load(
        retention_days=8,
        archive_dir=archive,
        maintain_interval_ms=1000,
        monitoring_interval_ms=60_000,
    )
    collector = Collector(history, config)

    def pruned() -> int:
        with history.connect() as conn:
            row = conn.execute("SELECT count(*) AS n FROM pings_pruned_days").fetchone()
        return int(row["n"]) if row else 0

    old_days = [d for d in partition_days(history) if d < first_kept_day()]
    with trio.fail_after(120):  # a hang guard, not a measure
        async with trio.open_nursery() as nursery:
            nursery.start_soon(collector.run)
            # The recorded effect, polled: the prune commits each day as it drops it.
            while True:
                if await trio.to_thread.run_sync(pruned) >= len(old_days):
                    break
                await trio.sleep(0.05)
            collector.stop()
    assert old_days
    assert min(partition_days(history)) >= first_kept_day()
    assert sorted(p.day for p in pruned_days(history)) == old_days


def test_a_file_with_fewer_columns_reads_back_with_nulls(tmp_path: Path) -> None:
    """A day archived before pings had the phase and certificate columns."""
    older = pa.schema(list(ARCHIVE_SCHEMA)[:9])
    site = str(uuid.uuid4())
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    table = pa.Table.from_pylist(
        [
            {
                "site_id": site,
                "checked_at": at,
                "status": "up",
                "status_code": 200,
                "response_time_ms": 12,
                "error_category": None,
                "error_message": None,
                "location": "here",
                "region_code": "XX",
            }
        ],
        schema=older,
    )
    path = day_dir(tmp_path, at.date()) / "part-0.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path, compression="zstd")
    newer = day_dir(tmp_path, at.date() + dt.timedelta(days=1)) / "part-0.parquet"
    newer.parent.mkdir(parents=True)
    pq.write_table(ARCHIVE_SCHEMA.empty_table(), newer)

    back = read_archive(tmp_path)

    assert back.schema == ARCHIVE_SCHEMA
    (row,) = back.to_pylist()
    assert row["site_id"] == site
    assert row["checked_at"] == at
    assert all(row[c] is None for c in ARCHIVE_SCHEMA.names[9:])
    assert read_archive(tmp_path, since=at + dt.timedelta(seconds=1)).num_rows == 0


def test_the_archive_schema_is_the_pings_table(db: Database) -> None:
    arrow_of = {
        "uuid": pa.string(),
        "timestamp with time zone": pa.timestamp("us", tz="UTC"),
        "integer": pa.int32(),
        "text": pa.string(),
    }
    with db.connect() as conn:
        columns = conn.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
            " WHERE table_name = 'pings' ORDER BY ordinal_position"
        ).fetchall()
    assert [
        (c["column_name"], arrow_of[c["data_type"]], c["is_nullable"] == "YES") for c in columns
    ] == [(f.name, f.type, f.nullable) for f in ARCHIVE_SCHEMA]


keys = st.tuples(
    st.uuids().map(str),
    st.datetimes(
        min_value=dt.datetime(1990, 1, 1),
        max_value=dt.datetime(2100, 1, 1),
        timezones=st.just(dt.UTC),
    ),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), min_size=1),
)


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(keys, max_size=20, unique_by=lambda k: k))
def test_the_key_checksum_is_the_same_in_postgresql_python_and_the_file(
    db: Database, tmp_path: Path, triples: list[tuple[str, dt.datetime, str]]
) -> None:
    with db.connect() as conn:
        row = conn.execute(
            "SELECT coalesce(sum(uptimelab_ping_key_hash(s::uuid, t, l)), 0) AS sum"
            " FROM unnest(%s::text[], %s::timestamptz[], %s::text[]) AS k (s, t, l)",
            ([k[0] for k in triples], [k[1] for k in triples], [k[2] for k in triples]),
        ).fetchone()
    assert row is not None
    path = tmp_path / f"{uuid.uuid4()}.parquet"
    table = pa.table(
        {
            "site_id": [k[0] for k in triples],
            "checked_at": pa.array([k[1] for k in triples], pa.timestamp("us", tz="UTC")),
            "location": [k[2] for k in triples],
        }
    )
    pq.write_table(table, path)
    assert int(row["sum"]) == key_checksum(triples) == read_day_file(path).key_checksum


# -- the notebooks over a history mostly pruned ---------------------------------------------------


@pytest.fixture(scope="module")
def seeded_url(
    create_database: Callable[..., str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The notebooks' database, ten days of history of which the old days are pruned into an
    archive that the notebooks' kernel is pointed at (ARCHIVE_DIR)."""
    url = create_database("uptimelab_pruned_notebooks")
    db = connect(url)
    write_history(db, "10d", sites=12, seed=7)
    archive = tmp_path_factory.mktemp("archive")
    result = prune(dt.timedelta(days=KEEP_DAYS), archive=archive, db=db)
    assert result.pruned
    db.close()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCHIVE_DIR", str(archive))
        yield url


# -- the README's queries over an archive ---------------------------------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(language: str) -> str:
    """The ``language`` code block of the README's Retention and archive section."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Retention and archive") :]
    section = section[: section.index("\n## ", 3)]
    return section.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_the_readme_duckdb_and_pandas_queries_read_a_pruned_archive(
    history: Database, tmp_path: Path
) -> None:
    import duckdb

    db = history
    old = f"checked_at < '{first_kept_day().isoformat()}'::date::timestamp AT TIME ZONE 'UTC'"
    with db.connect() as conn:
        expected = {
            (str(r["site_id"]), r["day"]): r["n"]
            for r in conn.execute(
                "SELECT site_id, (checked_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n"
                f" FROM pings WHERE {old} GROUP BY 1, 2"
            )
        }
    archive = tmp_path / "archive"
    prune(dt.timedelta(days=KEEP_DAYS), archive=archive, db=db)
    # A day archived before pings had phases: its files lack those columns.
    older = day_dir(archive, dt.date(2020, 1, 1)) / "part-0.parquet"
    older.parent.mkdir(parents=True)
    site = str(uuid.uuid4())
    pq.write_table(
        pa.Table.from_pylist(
            [
                {
                    "site_id": site,
                    "checked_at": dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC),
                    "status": "up",
                    "status_code": 200,
                    "response_time_ms": 7,
                    "location": "here",
                    "region_code": "XX",
                }
            ],
            schema=pa.schema(list(ARCHIVE_SCHEMA)[:9]),
        ),
        older,
    )
    expected[(site, dt.date(2020, 1, 1))] = 1

    query = readme_block("sql").replace("/srv/uptimelab-archive", str(archive))
    query = query.replace("2026-08-01", "2000-01-01")
    found = duckdb.sql(query).fetchall()
    assert {(r[0], r[1]): r[2] for r in found} == expected
    tls = duckdb.execute(
        f"SELECT tls_ms FROM read_parquet('{archive}/pings/*/*.parquet', hive_partitioning = true,"
        " union_by_name = true) WHERE site_id = ?",
        [site],
    ).fetchall()
    assert tls == [(None,)]

    code = readme_block("python").replace("/srv/uptimelab-archive", str(archive))
    names: dict[str, Any] = {}
    exec(code.replace("2026-08-01", "2000-01-01"), names)
    pings = names["pings"]
    assert len(pings) == sum(expected.values())
    assert list(pings.columns) == [*ARCHIVE_SCHEMA.names, "date"]
    assert pings.loc[pings["site_id"] == site, "tls_ms"].isna().all()
    assert len(names["daily"]) == len(expected)


def test_maintain_every_runs_again_until_stopped(history: Database, tmp_path: Path) -> None:
    stop = threading.Event()
    reports: list[MaintenanceReport] = []
    errors: list[UptimelabError] = []

    def on_report(report: MaintenanceReport) -> None:
        reports.append(report)
        if len(reports) == 2:
            stop.set()

    maintain_every(
        dt.timedelta(seconds=1),
        db=history,
        settings=Settings.load(retention_days=8, archive_dir=tmp_path / "archive"),
        on_report=on_report,
        on_error=errors.append,
        stop=stop,
    )

    assert errors == []
    first, second = (r.prune for r in reports)
    assert first is not None
    assert second is not None
    assert first.pruned
    assert second.pruned == []  # the second run found nothing left to do


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        ({"retention_days": 7}, "RETENTION_DAYS=7: must be from 8 to 36500"),
        ({"retention_days": 36_501}, "RETENTION_DAYS=36501: must be from 8 to 36500"),
        ({"maintain_interval_ms": 999}, "MAINTAIN_INTERVAL_MS=999: must be from 1000 to"),
        ({"archive_dir": "{file}"}, "ARCHIVE_DIR='{file}': is a file, not a directory"),
    ],
)
def test_the_retention_settings_have_bounds(
    tmp_path: Path, overrides: dict[str, object], said: str
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    given = {k: str(a_file) if v == "{file}" else v for k, v in overrides.items()}
    with pytest.raises(ConfigError) as info:
        Settings.load(**given)
    # A long value is shortened in the message (a worker's tmp_path under xdist is long enough).
    before, _, after = said.partition("{file}")
    assert str(info.value).startswith(before)
    assert after.lstrip("'") in str(info.value)


def test_the_retention_settings_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETENTION_DAYS", "90")
    monkeypatch.setenv("ARCHIVE_DIR", str(tmp_path / "archive"))
    monkeypatch.setenv("RETENTION_DROP_UNARCHIVED", "true")
    monkeypatch.setenv("MAINTAIN_INTERVAL_MS", "60000")
    s = Settings.load()
    assert (s.retention_days, s.archive_dir, s.retention_drop_unarchived) == (
        90,
        tmp_path / "archive",
        True,
    )
    assert s.maintain_interval_ms == 60_000
    monkeypatch.setenv("ARCHIVE_DIR", " ")
    # Not "unset", unlike other variables: it would be the current directory, or with
    # RETENTION_DROP_UNARCHIVED an archive meant and pings dropped (tests/test_empty_paths.py).
    with pytest.raises(ConfigError, match="ARCHIVE_DIR=' ': is empty"):
        Settings.load()
