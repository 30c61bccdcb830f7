"""load_pings through ADBC, over the live table and the Parquet archive as one history: the frame
is the table's rows with the compact dtypes, a prune changes nothing of what it loads (whether it
finished, stopped half-way or a late ping brought a day back), old archive files read with NULLs,
and the filters hold across both; the notebooks and the report run over a mostly archived
history."""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import tuple_row

from uptimelab import report, stats
from uptimelab.analytics.frames import ERROR_DTYPE, STATUS_DTYPE
from uptimelab.domain.pings import PHASES, PING_COLUMNS
from uptimelab.errors import StoreError
from uptimelab.storage.archive import part_path
from uptimelab.storage.database import Database, connect
from uptimelab.storage.ping_batches import adbc_conninfo
from uptimelab.storage.retention import prune
from uptimelab.testing.history import write_history

from .db_snapshot import Snapshot, written_once
from .test_notebooks import (
    kernel,  # noqa: F401 - the notebooks' kernel, over the mostly archived seeded_url below
)
from .test_notebooks import (
    test_the_notebook_runs_without_errors_or_warnings as test_the_notebook_runs_over_a_mostly_archived_history,  # noqa: E501, F401
)

END = dt.datetime(2026, 6, 15, 13, 30, tzinfo=dt.UTC)  # the history's last ping
DAYS = 10
FIRST_DAY = (END - dt.timedelta(days=DAYS)).date()
ALL_DAYS = [FIRST_DAY + dt.timedelta(days=k) for k in range(DAYS + 1)]
KEEP = dt.timedelta(days=8)  # the least prune keeps
KEY = ["site_id", "checked_at", "location"]
PHASE_COLUMNS = [f"{p}_ms" for p in PHASES]
INTS = ["status_code", "response_time_ms", *PHASE_COLUMNS]


@pytest.fixture(scope="module")
def kept() -> dict[str, Snapshot]:
    return {}


@pytest.fixture
def history(
    db: Database, monkeypatch: pytest.MonkeyPatch, kept: dict[str, Snapshot]
) -> Iterator[Database]:
    """Ten days of a small fleet (every column filled somewhere: errors, phases, certificates)
    ending at END, written through the writer; nothing pruned, no ARCHIVE_DIR. Written by the
    module's first test, put back as it was for the others (tests/db_snapshot.py)."""

    def write() -> None:
        with db.connect() as conn:
            conn.execute("TRUNCATE pings_pruned_days")
            # Only this history's days: the (empty) day partitions other tests made go.
            for row in conn.execute("SELECT day FROM uptimelab_pings_partitions()").fetchall():
                conn.execute(f"DROP TABLE pings_{row['day']:%Y%m%d}")
        write_history(db, f"{DAYS}d", sites=8, every="30m", seed=11, now=END)

    monkeypatch.delenv("ARCHIVE_DIR", raising=False)
    written_once(kept, db.url, write)
    return db


def prune_through(db: Database, archive: Path, last_day: dt.date, **kwargs: Any) -> None:
    """Prune (archive, verify, drop) every day up to ``last_day`` with the real prune."""
    now = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), dt.UTC) + KEEP
    prune(KEEP, archive=archive, db=db, now=now, **kwargs)


def partitions(db: Database) -> list[dt.date]:
    with db.connect() as conn:
        return [r["day"] for r in conn.execute("SELECT day FROM uptimelab_pings_partitions()")]


def in_order(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` in key order (site ids compared as text), for comparisons."""
    keys = pd.DataFrame({"s": frame["site_id"].astype(str), "t": frame["checked_at"]})
    keys["l"] = frame["location"].astype(str)
    return frame.loc[keys.sort_values(["s", "t", "l"]).index].reset_index(drop=True)


def assert_same_pings(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(in_order(got), in_order(expected))


def assert_compact_dtypes(frame: pd.DataFrame) -> None:
    """The dtype contract of load_pings."""
    assert frame.columns.tolist() == list(PING_COLUMNS)
    for name in ("site_id", "location", "region_code"):
        dtype = frame[name].dtype
        assert isinstance(dtype, pd.CategoricalDtype), name
        assert dtype.categories.dtype == "str", name
        assert list(dtype.categories) == sorted(dtype.categories), name
    assert frame["status"].dtype == STATUS_DTYPE
    assert frame["error_category"].dtype == ERROR_DTYPE
    for name in INTS:
        assert str(frame[name].dtype) == "Int32", name
    for name in ("checked_at", "cert_expires_at"):
        assert str(frame[name].dtype) == "datetime64[us, UTC]", name
    assert frame["error_message"].dtype == "str"


def table_rows(db: Database) -> pd.DataFrame:
    """The oracle: every row of pings through psycopg, typed by pandas' own constructors."""
    with db.connect() as conn, conn.cursor(row_factory=tuple_row) as cur:
        conn.execute("SET TIME ZONE 'UTC'")
        rows = cur.execute(
            "SELECT " + ", ".join(PING_COLUMNS) + " FROM pings ORDER BY site_id"
        ).fetchall()
    cols = list(zip(*rows, strict=True))
    frame = {
        "site_id": pd.Categorical([str(s) for s in cols[0]]),
        "checked_at": pd.DatetimeIndex(list(cols[1])).as_unit("us").tz_convert("UTC").array,
        "status": pd.Categorical(cols[2], dtype=STATUS_DTYPE),
        "status_code": pd.array(cols[3], dtype="Int32"),
        "response_time_ms": pd.array(cols[4], dtype="Int32"),
        "error_category": pd.Categorical(cols[5], dtype=ERROR_DTYPE),
        "error_message": pd.array(cols[6], dtype="str"),
        "location": pd.Categorical(cols[7]),
        "region_code": pd.Categorical(cols[8]),
        **{name: pd.array(cols[k], dtype="Int32") for k, name in enumerate(PHASE_COLUMNS, 9)},
        "cert_expires_at": pd.to_datetime(list(cols[14]), utc=True).as_unit("us").array,
    }
    return pd.DataFrame(frame)


def test_the_frame_is_the_rows_of_the_table_in_compact_dtypes(history: Database) -> None:
    got = stats.load_pings(history, chunksize=1000)  # many batches, categories met one by one
    assert_compact_dtypes(got)
    expected = table_rows(history)
    assert len(got) == len(expected) > 1000
    for name in ("cert_expires_at", "error_message", "tls_ms"):  # values and NULLs alike
        assert got[name].notna().any(), name
        assert got[name].isna().any(), name
    assert_same_pings(got, expected)
    # Through a SQLAlchemy engine (its connection's parameters) the same frame comes.
    assert_same_pings(stats.load_pings(history.engine), got)


@pytest.mark.parametrize("pruned", [1, 3, DAYS - 2, DAYS + 1], ids=lambda n: f"{n}-days")
def test_the_database_and_the_archive_load_as_the_history_before_the_prune(
    history: Database, tmp_path: Path, pruned: int
) -> None:
    before = stats.load_pings(history)
    archive = tmp_path / "archive"
    prune_through(history, archive, ALL_DAYS[pruned - 1])
    assert partitions(history) == ALL_DAYS[pruned:]

    got = stats.load_pings(history, archive_dir=archive)
    assert_compact_dtypes(got)
    assert_same_pings(got, before)
    assert len(stats.load_pings(history)) < len(before)  # without the archive: the table only


def test_archive_dir_comes_from_the_setting(
    history: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = stats.load_pings(history)
    prune_through(history, tmp_path, ALL_DAYS[4])
    monkeypatch.setenv("ARCHIVE_DIR", str(tmp_path))
    assert_same_pings(stats.load_pings(history), before)


class Stop(Exception):
    """Ends a prune at one of its steps, as a kill there would."""


@pytest.mark.parametrize("at", ["written", "verified"])
@pytest.mark.parametrize("stopped_day", [0, 2])
def test_a_day_archived_but_not_yet_dropped_counts_once(
    history: Database, tmp_path: Path, at: str, stopped_day: int
) -> None:
    before = stats.load_pings(history)
    archive = tmp_path / "archive"

    def step(name: str, day: dt.date) -> None:
        if name == at and day == ALL_DAYS[stopped_day]:
            raise Stop(name)

    with pytest.raises(Stop):
        prune_through(history, archive, ALL_DAYS[3], step=step)
    stopped = ALL_DAYS[stopped_day]
    assert part_path(archive, stopped, 0).exists()  # written, and its partition still there
    assert stopped in partitions(history)

    assert_same_pings(stats.load_pings(history, archive_dir=archive), before)
    # The same with the days after it, still in the database, read from a day window only.
    since = dt.datetime.combine(stopped, dt.time(), dt.UTC)
    until = since + dt.timedelta(days=1, microseconds=-1)
    day = stats.load_pings(history, since=since, until=until, archive_dir=archive)
    assert_same_pings(
        day, before[(before["checked_at"] >= since) & (before["checked_at"] <= until)]
    )


def late_ping(db: Database, day: dt.date) -> pd.DataFrame:
    """Insert one ping of an existing site into ``day`` (a spool replayed late); returns it as
    the loader gives it."""
    at = dt.datetime.combine(day, dt.time(12, 0, 7, 123), dt.UTC)
    with db.connect() as conn:
        site = conn.execute("SELECT id FROM sites ORDER BY id LIMIT 1").fetchone()
        assert site is not None
        conn.execute(
            "INSERT INTO pings (site_id, checked_at, status, status_code, response_time_ms,"
            " location, region_code) VALUES (%s, %s, 'up', 200, 42, 'late-replay', 'LR')",
            (site["id"], at),
        )
    return stats.load_pings(db, since=at, until=at)


@pytest.mark.parametrize("where", ["default partition", "day partition made again"])
def test_a_pruned_day_that_gets_a_late_ping_reads_the_file_and_the_ping(
    history: Database, tmp_path: Path, where: str
) -> None:
    before = stats.load_pings(history)
    archive = tmp_path / "archive"
    prune_through(history, archive, ALL_DAYS[2])
    day = ALL_DAYS[1]
    late = late_ping(history, day)
    assert len(late) == 1
    if where == "day partition made again":
        with history.connect() as conn:
            conn.execute("SELECT uptimelab_ensure_pings_partition(%s)", (day,))
        assert day in partitions(history)

    got = stats.load_pings(history, archive_dir=archive)
    expected = pd.concat([before, late], ignore_index=True)
    for name in ("site_id", "location", "region_code"):  # the union's categories, sorted
        values = expected[name].astype(str)
        expected[name] = pd.Categorical(values, categories=sorted(set(values)))
    assert_same_pings(got, expected)


@pytest.mark.parametrize(
    "missing",
    [PHASE_COLUMNS, ["cert_expires_at"], [*PHASE_COLUMNS, "cert_expires_at"], ["error_message"]],
    ids=["phases", "certificate", "all-of-008", "error_message"],
)
def test_an_archive_file_of_an_older_schema_reads_with_nulls(
    history: Database, tmp_path: Path, missing: list[str]
) -> None:
    before = stats.load_pings(history)
    archive = tmp_path / "archive"
    prune_through(history, archive, ALL_DAYS[3])
    old_day = ALL_DAYS[2]
    path = part_path(archive, old_day, 0)
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(missing), path, compression="zstd")

    got = stats.load_pings(history, archive_dir=archive)
    assert_compact_dtypes(got)
    that_day = before["checked_at"].dt.date == old_day
    assert before.loc[that_day, missing].notna().any().any()
    expected = before.copy()
    for name in missing:
        expected.loc[that_day, name] = None
    assert_same_pings(got, expected)


@pytest.fixture
def split_history(history: Database, tmp_path: Path) -> tuple[Database, Path, pd.DataFrame]:
    """The history with its first five days pruned into an archive, and the frame before."""
    before = stats.load_pings(history)
    archive = tmp_path / "archive"
    prune_through(history, archive, ALL_DAYS[4])
    return history, archive, before


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    since=st.none() | st.integers(-60, DAYS * 24 * 60 + 60),
    span=st.none() | st.integers(0, 5 * 24 * 60),
    chosen=st.none() | st.sets(st.integers(0, 7), max_size=8),
)
def test_since_until_and_sites_hold_across_the_database_and_the_archive(
    split_history: tuple[Database, Path, pd.DataFrame],
    since: int | None,
    span: int | None,
    chosen: set[int] | None,
) -> None:
    db, archive, before = split_history
    start = END - dt.timedelta(days=DAYS)
    lo = None if since is None else start + dt.timedelta(minutes=since, seconds=since % 37)
    hi = None if span is None else (lo or start) + dt.timedelta(minutes=span)
    ids = sorted(before["site_id"].cat.categories)
    sites = None if chosen is None else [uuid.UUID(ids[k]) for k in sorted(chosen)]

    got = stats.load_pings(db, since=lo, until=hi, sites=sites, archive_dir=archive)
    keep = pd.Series(True, index=before.index)
    if lo is not None:
        keep &= before["checked_at"] >= lo
    if hi is not None:
        keep &= before["checked_at"] <= hi
    if sites is not None:
        keep &= before["site_id"].astype(str).isin([str(s) for s in sites])
    assert_compact_dtypes(got)
    expected = before[keep]
    assert len(got) == len(expected)
    # The categories are those met: compare the values.
    as_text = dict.fromkeys(("site_id", "location", "region_code"), str)
    assert_same_pings(got.astype(as_text), expected.astype(as_text))


@pytest.mark.parametrize("source", ["database", "archive", "both", "nothing"])
def test_the_dtypes_are_the_same_from_every_source(
    split_history: tuple[Database, Path, pd.DataFrame], source: str
) -> None:
    db, archive, _ = split_history
    first_live = dt.datetime.combine(ALL_DAYS[5], dt.time(), dt.UTC)
    bounds = {
        "database": {"since": first_live},
        "archive": {"until": first_live - dt.timedelta(microseconds=1)},
        "both": {},
        "nothing": {"sites": []},
    }[source]
    frame = stats.load_pings(db, archive_dir=archive, **bounds)
    assert_compact_dtypes(frame)
    assert frame.empty == (source == "nothing")


def test_the_loader_connects_with_the_database_time_outs(db: Database) -> None:
    conninfo = adbc_conninfo(db.url)
    assert conninfo_to_dict(conninfo)["connect_timeout"] == "10"
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT current_setting('statement_timeout')").fetchone()
    assert row == ("5min",)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_database_is_a_store_error_that_hides_the_password() -> None:
    url = f"postgresql://someone:s3cret-pw@127.0.0.1:{closed_port()}/nothing"
    with pytest.raises(StoreError, match="cannot connect") as caught:
        stats.load_pings(Database(url=url))
    assert "s3cret-pw" not in str(caught.value)


def test_an_unreadable_archive_file_is_a_store_error(
    split_history: tuple[Database, Path, pd.DataFrame],
) -> None:
    db, archive, _ = split_history
    part_path(archive, ALL_DAYS[1], 0).write_bytes(b"not parquet")
    with pytest.raises(StoreError, match="archive"):
        stats.load_pings(db, archive_dir=archive)


# ------------------------------------------------------------------------------------------
# The notebooks and the report over a history that is mostly archived


@pytest.fixture(scope="module")
def mostly_archived(
    create_database: Callable[..., str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    """Thirty-two days of history (the report's thirty days and more), one ping an hour, of
    which all but the last two days are pruned into an archive. Not longer: writing a history
    settles its rollup hour by hour, and ninety days took a minute."""
    url = create_database("uptimelab_archived_notebooks")
    db = connect(url)
    write_history(db, "32d", sites=12, every="1h", seed=7)
    archive = tmp_path_factory.mktemp("archive")
    today = dt.datetime.now(dt.UTC).date()
    prune_through(db, archive, today - dt.timedelta(days=2))
    assert len(partitions(db)) <= 3
    db.close()
    return url, archive


@pytest.fixture(scope="module")
def seeded_url(mostly_archived: tuple[str, Path]) -> Iterator[str]:
    """The notebooks' database (see tests/test_notebooks.py), its kernel pointed at the archive."""
    url, archive = mostly_archived
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCHIVE_DIR", str(archive))
        yield url


@pytest.mark.slow
def test_the_report_covers_the_archived_days(
    mostly_archived: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, archive = mostly_archived
    db = Database(url=url)
    monkeypatch.setenv("ARCHIVE_DIR", str(archive))
    written = report.write_report(tmp_path / "out", format="csv", since="30d", db=db)
    pings = pd.read_csv(next(p for p in written if p.name.startswith("pings")))
    days = pd.to_datetime(pings["checked_at"], utc=True).dt.date.nunique()
    assert days >= 30  # thirty days, nearly all of them from the archive
    assert report.write_report(tmp_path / "report.html", since="30d", db=db)
