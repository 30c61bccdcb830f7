"""Pings as Arrow record batches: from the live table through ADBC, and from the Parquet archive
(:mod:`uptimelab.storage.archive`) through a pyarrow dataset.

The live table is read with the ADBC PostgreSQL driver, which runs the query as a binary
``COPY ... TO STDOUT`` and parses it into Arrow in C++. It was measured against psycopg's binary
COPY parsed into Arrow by a vectorised numpy parser of ours, and was the faster
(``benchmarks/load_pings.py``). It connects with the URL and the connect and statement time-outs
of :meth:`uptimelab.storage.database.Database.connect`.

Which archive files are read, so that no ping counts twice or goes missing while ``prune`` runs:
a file whose day was recorded as pruned (``pings_pruned_days``, read before the live rows) holds
rows the table no longer has, and is read; any other file (written, its partition not yet
dropped) is read only when its day is neither among the days the live rows touch nor among the
partitions left after they were read. A day pruned and then written again (a replayed spool)
may hold live copies of archived pings until the next prune takes them out: the archived rows
whose keys the live rows of such a day hold are left out, so a key counts once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ..domain.pings import PING_COLUMNS
from ..domain.redaction import mask_url, scrub
from ..errors import StoreError
from .archive import ARCHIVE_SCHEMA, PARTITIONING, batch_keys, pings_dir
from .database import CONNECT_TIMEOUT_S, STATEMENT_TIMEOUT_MS

_DAY_US = 86_400_000_000
BATCH_BYTES = 4 << 20
"""The size of the record batches asked of ADBC's driver (``batch_size_hint_bytes``; its default
of 16 MiB made batches of about 11 MiB, which the driver's buffer and the batch being made compact
held beside the frame: 2.2x a 30 MiB frame at its peak)."""
_BATCH_HINT = "adbc.postgresql.batch_size_hint_bytes"
_UTC_US = pa.timestamp("us", tz="UTC")


def adbc_conninfo(url: str) -> str:
    """``url`` (any libpq form) with the connect and statement time-outs that
    :meth:`Database.connect` uses, as the libpq string ADBC's driver takes."""
    return make_conninfo(
        url,
        connect_timeout=str(CONNECT_TIMEOUT_S),
        options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
    )


def pings_query(
    since: dt.datetime | None, until: dt.datetime | None, sites: list[uuid.UUID] | None
) -> str:
    """The ``SELECT`` of the pings with ``since <= checked_at <= until`` of ``sites``.

    The values are quoted by psycopg's adapters (as its client-side cursors do) rather than
    bound: ADBC runs a query without parameters as a streamed binary COPY, but one with
    parameters as a prepared statement whose whole result libpq holds in memory at once.
    """
    conditions: list[sql.Composable] = []
    if since is not None:
        conditions.append(sql.SQL("checked_at >= {}").format(sql.Literal(since)))
    if until is not None:
        conditions.append(sql.SQL("checked_at <= {}").format(sql.Literal(until)))
    if sites is not None:
        conditions.append(sql.SQL("site_id = ANY({})").format(sql.Literal(sites)))
    query = sql.SQL("SELECT {} FROM pings").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in PING_COLUMNS)
    )
    if conditions:
        query = sql.SQL("{} WHERE {}").format(query, sql.SQL(" AND ").join(conditions))
    return query.as_string()


# The UTC days of pings' daily partitions (pings_YYYYMMDD, as uptimelab_ensure_pings_partition
# names them), and the archive files of the days that prune dropped (sql/014; none before it).
_PARTITION_DAYS = (
    "SELECT to_char(to_date(substr(c.relname, 7), 'YYYYMMDD'), 'YYYY-MM-DD')"
    " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
    " WHERE i.inhparent = 'pings'::regclass AND c.relname ~ '^pings_[0-9]{8}$'"
)
_HAS_PRUNED_DAYS = "SELECT to_regclass('pings_pruned_days') IS NOT NULL"
_PRUNED_FILES = "SELECT archive_file FROM pings_pruned_days WHERE archive_file IS NOT NULL"


@dataclass
class LiveRead:
    """What a read of the live table learnt besides its rows: the archive files recorded as
    pruned before it (relative to the archive directory) and the UTC days the database held."""

    pruned_files: set[str] = field(default_factory=set)
    days: set[dt.date] = field(default_factory=set)
    pruned_days: set[dt.date] = field(default_factory=set)
    """The days of ``pruned_files``."""
    keys: set[str] = field(default_factory=set)
    """The keys (:func:`~uptimelab.storage.archive.batch_keys`) of the live rows of
    ``pruned_days``: pings written again after their day was pruned."""


@contextlib.contextmanager
def live_pings(
    url: str,
    since: dt.datetime | None,
    until: dt.datetime | None,
    sites: list[uuid.UUID] | None,
    *,
    for_archive: bool = True,
) -> Iterator[tuple[Iterator[pa.RecordBatch], LiveRead]]:
    """The live pings as a stream of record batches, and a :class:`LiveRead` filled as they go
    by: ``pruned_files`` first, ``days`` with the days of the rows, completed once the rows are
    all read with the days that have a partition. Without ``for_archive`` (no archive to read
    with them) the :class:`LiveRead` stays empty, and its queries are not made.

    Raises StoreError (naming the URL masked) when the database cannot be reached or the query
    fails.
    """
    import adbc_driver_manager
    import adbc_driver_postgresql.dbapi as adbc

    def failed(what: str, exc: Exception) -> StoreError:
        lines = str(exc).strip().splitlines()
        reason = scrub(lines[0], url) if lines else type(exc).__name__
        return StoreError(f"{what} {mask_url(url)}: {reason}")

    try:
        conn = adbc.connect(adbc_conninfo(url), autocommit=True)
    except adbc_driver_manager.Error as exc:
        raise failed("cannot connect to", exc) from exc
    read = LiveRead()

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            with conn.cursor() as cur:
                if for_archive:
                    cur.execute(_HAS_PRUNED_DAYS)
                    if cur.fetchone() == (True,):
                        cur.execute(_PRUNED_FILES)
                        read.pruned_files.update(cur.fetch_arrow_table().column(0).to_pylist())
                        read.pruned_days.update(_file_days(read.pruned_files))
                cur.adbc_statement.set_options(**{_BATCH_HINT: str(BATCH_BYTES)})
                cur.execute(pings_query(since, until, sites))
                for batch in cur.fetch_record_batch():
                    if for_archive:
                        days = batch_days(batch)
                        read.days.update(days)
                        if not read.pruned_days.isdisjoint(days):
                            read.keys.update(_keys_of_days(batch, read.pruned_days))
                    yield batch
                if for_archive:
                    cur.execute(_PARTITION_DAYS)
                    listed = cur.fetch_arrow_table().column(0).to_pylist()
                    read.days.update(dt.date.fromisoformat(d) for d in listed)
        except adbc_driver_manager.Error as exc:
            raise failed("cannot read the pings of", exc) from exc

    try:
        yield batches(), read
    finally:
        conn.close()


def batch_days(batch: pa.RecordBatch) -> set[dt.date]:
    """The UTC days of a batch's ``checked_at``."""
    import numpy as np

    times = batch.column("checked_at")
    if times.type != _UTC_US:
        times = pc.cast(times, _UTC_US, memory_pool=pa.system_memory_pool())
    micros = times.view(pa.int64()).to_numpy(zero_copy_only=False)
    epoch = dt.date(1970, 1, 1)
    return {epoch + dt.timedelta(days=int(d)) for d in np.unique(micros // _DAY_US)}


def _file_days(files: set[str]) -> set[dt.date]:
    days = set()
    for name in files:
        folder = Path(name).parent.name
        with contextlib.suppress(ValueError):
            days.add(dt.date.fromisoformat(folder.removeprefix("date=")))
    return days


def _keys_of_days(batch: pa.RecordBatch, days: set[dt.date]) -> list[str]:
    """The keys of the batch's rows on ``days`` (a rare few: pings written again after their
    day was pruned), as ``site_id|microseconds|location``."""
    import numpy as np

    times = pc.cast(batch.column("checked_at"), _UTC_US, memory_pool=pa.system_memory_pool())
    micros = times.view(pa.int64()).to_numpy(zero_copy_only=False)
    epoch = dt.date(1970, 1, 1)
    wanted = np.array([(d - epoch).days for d in days], dtype=np.int64)
    rows = np.flatnonzero(np.isin(micros // _DAY_US, wanted))
    sites = batch.column("site_id").take(pa.array(rows)).to_pylist()
    locations = batch.column("location").take(pa.array(rows)).to_pylist()
    return [
        f"{_site_text(site)}|{int(micros[k])}|{location}"
        for site, k, location in zip(sites, rows, locations, strict=True)
    ]


def _site_text(value: object) -> str:
    if isinstance(value, bytes):
        return str(uuid.UUID(bytes=value))
    return str(uuid.UUID(str(value)))


def archived_pings(
    archive_dir: Path,
    since: dt.datetime | None,
    until: dt.datetime | None,
    sites: list[uuid.UUID] | None,
    live: LiveRead,
) -> Iterator[pa.RecordBatch]:
    """The archived pings with ``since <= checked_at <= until`` of ``sites`` that the live read
    ``live`` did not give (see the module's docstring), as record batches of
    :data:`~uptimelab.storage.archive.ARCHIVE_SCHEMA`.

    Only the files of the days within the bounds are opened (hive partitions); the times and
    sites are pushed down to the Parquet row groups. A file written before a column existed
    reads with NULLs in it. Raises StoreError for a file that cannot be read.
    """
    root = pings_dir(archive_dir)
    if not root.is_dir():
        return
    lo = since.astimezone(dt.UTC).date().isoformat() if since is not None else ""
    hi = until.astimezone(dt.UTC).date().isoformat() if until is not None else "9999"
    files = []
    for path in sorted(root.glob("date=*/part-*.parquet")):
        day = path.parent.name.removeprefix("date=")
        relative = path.relative_to(archive_dir).as_posix()
        if not lo <= day <= hi:
            continue
        try:
            gone = dt.date.fromisoformat(day) not in live.days
        except ValueError:
            continue  # not a day: not the archive's
        if relative in live.pruned_files or gone:
            files.append(str(path))
    if not files:
        return
    try:
        dataset = ds.dataset(
            files,
            schema=ARCHIVE_SCHEMA.append(pa.field("date", pa.string())),
            format="parquet",
            partitioning=PARTITIONING,
            partition_base_dir=str(root),
        )
        condition = (ds.field("date") >= lo) & (ds.field("date") <= hi)
        if since is not None:
            condition &= ds.field("checked_at") >= pa.scalar(since, _UTC_US)
        if until is not None:
            condition &= ds.field("checked_at") <= pa.scalar(until, _UTC_US)
        if sites is not None:
            condition &= ds.field("site_id").isin(pa.array([str(s) for s in sites], pa.string()))
        # One file and one batch read ahead, from the system's allocator: the default readahead
        # held about twice the frame in decoded batches (4.8 M pings: peak 2.9x the frame, now
        # 1.8x), for no gain in time here.
        scanner = dataset.scanner(
            columns=list(PING_COLUMNS),
            filter=condition,
            batch_readahead=1,
            fragment_readahead=1,
            memory_pool=pa.system_memory_pool(),
        )
        if not live.keys:
            yield from scanner.to_batches()
            return
        written_again = pa.array(sorted(live.keys), pa.string())
        for batch in scanner.to_batches():
            yield batch.filter(pc.invert(pc.is_in(batch_keys(batch), value_set=written_again)))
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"cannot read the pings archive in {archive_dir}: {exc}") from exc
