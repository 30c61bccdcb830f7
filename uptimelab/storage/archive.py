"""The Parquet archive of pruned pings: its schema, writing one day, verifying it, reading it back.

The layout is hive-partitioned by UTC day, readable as it is by pyarrow, pandas, DuckDB, Spark or
Dask::

    ARCHIVE_DIR/pings/date=2026-08-01/part-0.parquet
    ARCHIVE_DIR/pings/date=2026-08-02/part-0.parquet

Each file holds one day's pings (zstd), with the columns of ``pings`` in the order of
:data:`~uptimelab.domain.pings.PING_COLUMNS` and the types of :data:`ARCHIVE_SCHEMA`: ``site_id``
is the UUID's canonical text (lowercase, hyphenated, as ``load_pings`` gives it), times are
``timestamp[us, tz=UTC]``, integers keep their widths, text is ``string``. The day itself is in
the directory name, not in the file. A later day may have more columns than an earlier one (the
pings table gains columns); :func:`archive_dataset` reads every file with the whole schema, the
columns a file lacks as NULL.

A day is written to a hidden temporary file, flushed to disk and renamed into place, so a file
named ``part-*.parquet`` is always whole. Its rows are checked against the partition by count and
by a checksum of the keys (:func:`key_checksum`, the same sum as ``uptimelab_ping_key_hash`` in
sql/014_retention.sql).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import operator
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..domain.pings import PING_COLUMNS
from ..errors import OutputError

if TYPE_CHECKING:
    import psycopg

# The Arrow type of each column of pings (PostgreSQL uuid -> its text, timestamptz ->
# timestamp[us, UTC], integer -> int32, text -> string). A column added to pings gets its type here.
_TYPES: dict[str, pa.DataType] = {
    "site_id": pa.string(),
    "checked_at": pa.timestamp("us", tz="UTC"),
    "status": pa.string(),
    "status_code": pa.int32(),
    "response_time_ms": pa.int32(),
    "error_category": pa.string(),
    "error_message": pa.string(),
    "location": pa.string(),
    "region_code": pa.string(),
    "dns_ms": pa.int32(),
    "connect_ms": pa.int32(),
    "tls_ms": pa.int32(),
    "ttfb_ms": pa.int32(),
    "transfer_ms": pa.int32(),
    "cert_expires_at": pa.timestamp("us", tz="UTC"),
}
_REQUIRED = frozenset({"site_id", "checked_at", "status", "location", "region_code"})

ARCHIVE_SCHEMA: pa.Schema = pa.schema(
    [pa.field(name, _TYPES[name], nullable=name not in _REQUIRED) for name in PING_COLUMNS]
)
"""The Arrow schema of an archived ping: the columns of pings, in order, with their types."""

PARTITIONING = ds.partitioning(pa.schema([("date", pa.string())]), flavor="hive")
"""The hive partitioning of the archive (``date=YYYY-MM-DD``), for ``pyarrow.dataset``."""

COMPRESSION = "zstd"
_BATCH_ROWS = 131_072


def pings_dir(archive_dir: Path) -> Path:
    """Where the archive's pings are: ``archive_dir/pings``."""
    return archive_dir / "pings"


def day_dir(archive_dir: Path, day: dt.date) -> Path:
    """The directory of one day's files: ``archive_dir/pings/date=YYYY-MM-DD``."""
    return pings_dir(archive_dir) / f"date={day.isoformat()}"


def part_path(archive_dir: Path, day: dt.date, part: int) -> Path:
    """The file of ``part`` (0 for the first) of ``day``."""
    return day_dir(archive_dir, day) / f"part-{part}.parquet"


def export_query(table: str) -> str:
    """A SELECT of ``table``'s pings in the archive's columns, for COPY ... CSV: uuids as text,
    times as integer microseconds since the epoch (exact, no text format to parse)."""
    columns = []
    for field in ARCHIVE_SCHEMA:
        if pa.types.is_timestamp(field.type):
            columns.append(f"(extract(epoch FROM {field.name}) * 1000000)::bigint")
        elif field.name == "site_id":
            columns.append("site_id::text")
        else:
            columns.append(field.name)
    return f"SELECT {', '.join(columns)} FROM {table}"


def _csv_types() -> dict[str, pa.DataType]:
    return {f.name: pa.int64() if pa.types.is_timestamp(f.type) else f.type for f in ARCHIVE_SCHEMA}


@dataclass(frozen=True)
class DayFile:
    """What a written (or found) archive file holds: its path, rows and key checksum."""

    path: Path
    pings: int
    key_checksum: int


def write_day(
    conn: psycopg.Connection[Any], table: str, archive_dir: Path, day: dt.date, part: int
) -> DayFile:
    """Write the pings of partition ``table`` (one UTC ``day``) to its archive file ``part``.

    The rows travel by COPY as CSV into a hidden file beside the target, are turned into Parquet
    batch by batch (memory holds one batch, not the day), and the Parquet file is flushed and
    renamed into place: a reader, or a run killed half-way, never sees half a file. Returns the
    file's rows and key checksum as read back from the written file. Raises OutputError when
    the file system refuses.
    """
    target = part_path(archive_dir, day, part)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(target.parent)
        stem = f".{target.name}.{os.getpid()}"
        csv_tmp, parquet_tmp = target.parent / f"{stem}.csv", target.parent / f"{stem}.tmp"
        try:
            with csv_tmp.open("wb") as out, conn.cursor() as cur:
                copy_sql = f"COPY ({export_query(table)}) TO STDOUT WITH (FORMAT csv)"
                with cur.copy(copy_sql) as copy:
                    for chunk in copy:
                        out.write(chunk)
            _csv_to_parquet(csv_tmp, parquet_tmp)
            os.replace(parquet_tmp, target)
            _fsync_dir(target.parent)
        finally:
            for leftover in (csv_tmp, parquet_tmp):
                leftover.unlink(missing_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write the archive file {target}: {exc.strerror or exc}") from exc
    return read_day_file(target)


def _remove_leftovers(directory: Path) -> None:
    # Hidden temporaries of a run that was killed; only one prune runs at a time (advisory lock).
    for leftover in directory.glob(".part-*"):
        leftover.unlink(missing_ok=True)


def _csv_to_parquet(csv_path: Path, parquet_path: Path) -> None:
    reader = pacsv.open_csv(
        csv_path,
        read_options=pacsv.ReadOptions(
            column_names=list(ARCHIVE_SCHEMA.names), block_size=16 << 20
        ),
        # PostgreSQL's CSV: NULL is an unquoted empty field, an empty string a quoted one.
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=_csv_types(),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    with (
        parquet_path.open("wb") as sink,
        pq.ParquetWriter(sink, ARCHIVE_SCHEMA, compression=COMPRESSION) as writer,
    ):
        wrote = False
        for batch in reader:
            writer.write_table(_typed(pa.Table.from_batches([batch])))
            wrote = True
        if not wrote:  # an empty day still makes a file with the schema
            writer.write_table(ARCHIVE_SCHEMA.empty_table())
    with parquet_path.open("rb") as done:
        os.fsync(done.fileno())


def _typed(table: pa.Table) -> pa.Table:
    columns = []
    for field in ARCHIVE_SCHEMA:
        column = table.column(field.name)
        if pa.types.is_timestamp(field.type):
            column = column.cast(pa.timestamp("us")).cast(field.type)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=ARCHIVE_SCHEMA)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_day_file(path: Path) -> DayFile:
    """The rows and key checksum of an archive file, read from the file. Raises OutputError
    when it cannot be read as Parquet."""
    try:
        parquet = pq.ParquetFile(path)
        rows = 0
        checksum = 0
        for batch in parquet.iter_batches(
            batch_size=_BATCH_ROWS, columns=["site_id", "checked_at", "location"]
        ):
            rows += batch.num_rows
            checksum += _batch_checksum(batch)
    except (OSError, pa.ArrowException) as exc:
        raise OutputError(f"cannot read the archive file {path}: {exc}") from exc
    return DayFile(path=path, pings=rows, key_checksum=checksum)


def _batch_checksum(batch: pa.RecordBatch) -> int:
    return sum(
        int.from_bytes(hashlib.md5(key.encode(), usedforsecurity=False).digest()[:8]) >> 4
        for key in batch_keys(batch).to_pylist()
    )


def batch_keys(batch: pa.RecordBatch | pa.Table) -> pa.Array:
    """Each ping's key as text, ``site_id|microseconds since the epoch|location``: what the key
    checksum hashes, and what tells two copies of one ping apart (``checked_at`` is a timestamp,
    ``site_id`` and ``location`` strings)."""
    micros = pc.cast(batch.column("checked_at"), pa.timestamp("us")).cast(pa.int64())
    keys = pc.binary_join_element_wise(
        batch.column("site_id"), pc.cast(micros, pa.string()), batch.column("location"), "|"
    )
    return keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys


def keys_in_file(path: Path, keys: pa.Array) -> list[str]:
    """Those of ``keys`` (as :func:`batch_keys` writes them) that the archive file ``path``
    holds. Raises OutputError when the file is missing or cannot be read as Parquet."""
    found: list[str] = []
    try:
        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(
            batch_size=_BATCH_ROWS, columns=["site_id", "checked_at", "location"]
        ):
            held = batch_keys(batch)
            found.extend(held.filter(pc.is_in(held, value_set=keys)).to_pylist())
    except (OSError, pa.ArrowException) as exc:
        raise OutputError(f"cannot read the archive file {path}: {exc}") from exc
    return found


def key_checksum(keys: Iterable[tuple[str, dt.datetime, str]]) -> int:
    """The key checksum of ``(site_id, checked_at, location)`` triples (aware datetimes): the sum
    of the first 60 bits of md5 of ``site_id|microseconds since the epoch|location``; the
    definition the archive's files and ``uptimelab_ping_key_hash`` share."""
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    total = 0
    for site_id, checked_at, location in keys:
        micros = (checked_at - epoch) // dt.timedelta(microseconds=1)
        key = f"{site_id}|{micros}|{location}".encode()
        total += int.from_bytes(hashlib.md5(key, usedforsecurity=False).digest()[:8]) >> 4
    return total


def archive_dataset(archive_dir: Path) -> ds.Dataset:
    """The archive as one pyarrow dataset: every day's files with :data:`ARCHIVE_SCHEMA` plus the
    ``date`` partition column (a string, ``YYYY-MM-DD``); columns a file lacks read as NULL.
    An archive with no files yet is an empty dataset."""
    root = pings_dir(archive_dir)
    schema = ARCHIVE_SCHEMA.append(pa.field("date", pa.string()))
    files = sorted(str(p) for p in root.glob("date=*/part-*.parquet")) if root.is_dir() else []
    return ds.dataset(
        files,
        schema=schema,
        format="parquet",
        partitioning=PARTITIONING,
        partition_base_dir=str(root),
    )


def read_archive(
    archive_dir: Path,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    sites: list[str] | None = None,
) -> pa.Table:
    """The archived pings with ``since <= checked_at <= until`` (aware datetimes; None is
    unbounded) of ``sites`` (UUID strings; None is every site) as a table of
    :data:`ARCHIVE_SCHEMA`. Whole days outside the bounds are not opened."""
    dataset = archive_dataset(archive_dir)
    at = ARCHIVE_SCHEMA.field("checked_at").type
    conditions = []
    if since is not None:
        conditions.append(ds.field("date") >= since.astimezone(dt.UTC).date().isoformat())
        conditions.append(ds.field("checked_at") >= pa.scalar(since, at))
    if until is not None:
        conditions.append(ds.field("date") <= until.astimezone(dt.UTC).date().isoformat())
        conditions.append(ds.field("checked_at") <= pa.scalar(until, at))
    if sites is not None:
        conditions.append(ds.field("site_id").isin(sites))
    condition = functools.reduce(operator.and_, conditions) if conditions else None
    return dataset.to_table(columns=list(ARCHIVE_SCHEMA.names), filter=condition)
