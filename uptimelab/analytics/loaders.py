"""Pings from the database as a compact pings frame (see :mod:`uptimelab.analytics.frames`), and
the outages of a period straight from the database."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..config import Settings, parse_duration
from ..domain.pings import ERROR_CATEGORIES, PHASES, PING_COLUMNS
from ..errors import ConfigError
from ..storage.ping_batches import archived_pings, live_pings
from .frames import ERROR_DTYPE, STATUS_CATEGORIES, STATUS_DTYPE, TimeBound, utc_timestamp
from .outages import outages

if TYPE_CHECKING:
    import psycopg
    import sqlalchemy

_PHASE_COLUMNS = tuple(f"{p}_ms" for p in PHASES)


def load_pings(
    engine_or_db: sqlalchemy.Engine | Any,
    since: TimeBound | None = None,
    until: TimeBound | None = None,
    sites: Iterable[uuid.UUID | str] | None = None,
    *,
    chunksize: int = 200_000,
    archive_dir: Path | str | None = None,
) -> pd.DataFrame:
    """The pings with ``since <= checked_at <= until`` (both inclusive) of ``sites``, as a frame,
    from the live table and the Parquet archive together.

    ``engine_or_db`` is a SQLAlchemy Engine using the psycopg (3) driver, or any object with a
    libpq ``url`` attribute (such as ``uptimelab.db.Database``). ``since``/``until`` are datetimes
    (naive ones are UTC), ISO strings, or a duration -- a ``timedelta`` or a string of
    number-unit pairs in w, d, h, m(in), s such as ``"7d"``, ``"90min"``, ``"1h30m"`` -- meaning
    that long before now; None means unbounded. ``sites`` is a
    list of site ids (UUIDs or their strings); None means every site. ``archive_dir`` is the
    archive of pruned days (default: the ``ARCHIVE_DIR`` setting; none: the table only).

    An archived day is read only where the database no longer holds its rows (see
    :mod:`uptimelab.storage.ping_batches`): a day archived but not yet dropped counts once, and
    a prune running meanwhile neither doubles nor loses a day.
    Rows arrive as Arrow record batches (ADBC's binary COPY; the archive's Parquet files) and
    each batch of at most ``chunksize`` rows is made compact at once, so memory holds the compact
    frame plus one batch, never the whole result in a wide form. Columns: ``site_id``,
    ``location``, ``region_code`` categorical (of str, categories sorted); ``checked_at``
    datetime64[us, UTC]; ``status`` and ``error_category`` categorical with the fixed categories
    ``STATUS_CATEGORIES`` / ``ERROR_CATEGORIES``; ``status_code``/``response_time_ms`` Int32
    (milliseconds); ``error_message`` str; the phases ``dns_ms``, ``connect_ms``, ``tls_ms``,
    ``ttfb_ms``, ``transfer_ms`` Int32 (milliseconds, NA where a phase did not happen);
    ``cert_expires_at`` datetime64[us, UTC] (NaT without one). Rows come in no particular order.

    Raises ValueError for a malformed site id or time bound or a chunksize < 1, TypeError for an
    engine whose driver is not psycopg, StoreError when the database cannot be reached, the query
    fails or an archive file cannot be read, and ConfigError for a malformed ``ARCHIVE_DIR``.
    """
    if chunksize < 1:
        raise ValueError(f"chunksize must be at least 1, got {chunksize}")
    now = pd.Timestamp.now(tz="UTC")
    lo = None if since is None else _time_bound(since, now).to_pydatetime()
    hi = None if until is None else _time_bound(until, now).to_pydatetime()
    site_ids = None if sites is None else [_as_uuid(s) for s in sites]
    url = _libpq_url(engine_or_db)
    if archive_dir is None:
        archive_dir = Settings.load().archive_dir
    archive = None if archive_dir is None else Path(archive_dir).expanduser()

    frame = _FrameBuilder()
    if site_ids == []:
        archive = None  # no site, nothing to look for there
    with live_pings(url, lo, hi, site_ids, for_archive=archive is not None) as (batches, live):
        for batch in batches:
            frame.add(batch, chunksize)
    if archive is not None:
        for batch in archived_pings(archive, lo, hi, site_ids, live):
            frame.add(batch, chunksize)
    return frame.build()


def _libpq_url(engine_or_db: sqlalchemy.Engine | Any) -> str:
    """The libpq connection string of a Database-like object or of a psycopg Engine (its
    connection's parameters, the password included, which ``info.dsn`` leaves out)."""
    import sqlalchemy

    if isinstance(engine_or_db, sqlalchemy.Engine):
        raw = engine_or_db.raw_connection()
        try:
            conn = raw.driver_connection
            if not _is_psycopg_connection(conn):
                raise TypeError(
                    f"load_pings needs the psycopg driver, the engine uses {engine_or_db.driver!r}"
                )
            from psycopg.conninfo import make_conninfo

            password = conn.info.password
            return make_conninfo(conn.info.dsn, **({"password": password} if password else {}))
        finally:
            raw.close()
    url = getattr(engine_or_db, "url", None)
    if not isinstance(url, str):
        raise TypeError(
            "engine_or_db must be a SQLAlchemy Engine or have a libpq url attribute, "
            f"got {type(engine_or_db).__name__}"
        )
    return url


def _is_psycopg_connection(conn: object) -> TypeGuard[psycopg.Connection[Any]]:
    import psycopg

    return isinstance(conn, psycopg.Connection)


_CATEGORIES_OF_DATA = ("site_id", "location", "region_code")
_FIXED_CATEGORIES = {"status": STATUS_CATEGORIES, "error_category": ERROR_CATEGORIES}
_TIMES = ("checked_at", "cert_expires_at")
_INTS = ("status_code", "response_time_ms", *_PHASE_COLUMNS)
_UTC_US = pa.timestamp("us", tz="UTC")
_NAT = np.iinfo(np.int64).min
# Arrow's own allocator keeps what it frees for reuse; the per-batch work allocates from the
# system's, so that memory goes back between batches and the peak stays near the frame's size.
_POOL = pa.system_memory_pool()


class _Codes:
    """The categories of one column seen so far, each with the code it was given first."""

    def __init__(self, site_ids: bool) -> None:
        self.codes: dict[str, int] = {}
        self.site_ids = site_ids

    def encode(self, column: pa.Array) -> np.ndarray:
        """``column``'s values as codes (-1 for null), in the smallest integer type that holds
        the codes given so far."""
        if isinstance(column, pa.ExtensionArray):  # arrow.uuid: 16 bytes a value
            column = column.storage
        encoded = pc.dictionary_encode(column, memory_pool=_POOL)
        dictionary = encoded.dictionary.to_pylist()
        lookup = np.array(
            [self.codes.setdefault(self._name(v), len(self.codes)) for v in dictionary] + [-1],
            dtype=np.int32,
        )
        indices, missing = _values_and_nulls(encoded.indices, np.int32)
        indices[missing] = len(dictionary)  # the lookup's -1
        codes: np.ndarray = lookup[indices].astype(_code_type(len(self.codes)))
        return codes

    def _name(self, value: Any) -> str:
        if isinstance(value, bytes):
            return str(uuid.UUID(bytes=value))
        return str(uuid.UUID(value)) if self.site_ids else str(value)

    def categorical(self, parts: list[np.ndarray]) -> pd.Categorical:
        """The codes of ``parts`` (consumed) as a Categorical whose categories are sorted."""
        names = sorted(self.codes)
        rank = np.empty(len(names) + 1, dtype=_code_type(len(names)))
        rank[[self.codes[n] for n in names]] = np.arange(len(names))
        rank[-1] = -1  # code -1 (null) indexes the last slot
        codes = rank[np.concatenate(parts)] if parts else np.empty(0, dtype=np.int8)
        parts.clear()
        return pd.Categorical.from_codes(codes, categories=pd.Index(names, dtype="str"))


def _code_type(count: int) -> type[np.signedinteger[Any]]:
    if count < 127:
        return np.int8
    return np.int16 if count < 32_767 else np.int32


def _typed(column: pa.Array, kind: pa.DataType) -> pa.Array:
    """``column`` as ``kind`` (an archive file's own types may be wider or narrower)."""
    return column if column.type == kind else pc.cast(column, kind, memory_pool=_POOL)


def _values_and_nulls(column: pa.Array, dtype: type[np.generic]) -> tuple[np.ndarray, np.ndarray]:
    """A copy of a fixed-width ``column``'s values (anything where NULL) and its NULL mask, read
    straight from its buffers: no Arrow allocation on the way."""
    count, offset = len(column), column.offset
    validity, data = column.buffers()[:2]
    values = np.frombuffer(data, dtype=dtype, count=offset + count)[offset:].copy()
    if validity is None or column.null_count == 0:
        return values, np.zeros(count, dtype=bool)
    bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
    return values, ~bits[offset : offset + count].astype(bool)


def _give_back_freed_memory() -> None:
    """Hand memory freed on the heap back to the system (glibc's malloc_trim; elsewhere nothing).

    The batches' parts are many small arrays, freed column by column as the frame is built; glibc
    keeps such memory for reuse, so the process would hold the parts and the frame at once."""
    global _malloc_trim
    if _malloc_trim is None:
        import ctypes
        import ctypes.util

        try:
            _malloc_trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None


class _FrameBuilder:
    """Record batches in, a compact pings frame out. Each batch is turned at once into the
    frame's own representation (codes, numpy values and masks), so that memory holds little
    more than the final frame; :meth:`build` joins the parts column by column, letting each
    column's parts go as soon as it is built."""

    def __init__(self) -> None:
        self.names = {c: _Codes(site_ids=c == "site_id") for c in _CATEGORIES_OF_DATA}
        self.fixed = {c: pa.array(list(cats)) for c, cats in _FIXED_CATEGORIES.items()}
        self.parts: dict[str, list[np.ndarray]] = {c: [] for c in PING_COLUMNS}
        self.masks: dict[str, list[np.ndarray]] = {c: [] for c in _INTS}
        self.messages: list[pa.Array] = []

    def add(self, batch: pa.RecordBatch, chunksize: int) -> None:
        for start in range(0, batch.num_rows, chunksize):
            self._add(batch.slice(start, chunksize))

    def _add(self, batch: pa.RecordBatch) -> None:
        for name in _CATEGORIES_OF_DATA:
            self.parts[name].append(self.names[name].encode(batch.column(name)))
        for name, categories in self.fixed.items():
            found = pc.index_in(batch.column(name), value_set=categories, memory_pool=_POOL)
            codes, missing = _values_and_nulls(found, np.int32)
            codes[missing] = -1
            self.parts[name].append(codes.astype(np.int8))
        for name in _TIMES:
            micros, missing = _values_and_nulls(_typed(batch.column(name), _UTC_US), np.int64)
            micros[missing] = _NAT  # NaT is the smallest int64, as numpy and pandas have it
            self.parts[name].append(micros)
        for name in _INTS:
            values, missing = _values_and_nulls(_typed(batch.column(name), pa.int32()), np.int32)
            values[missing] = 0
            self.parts[name].append(values)
            self.masks[name].append(missing)
        # A copy: a cast to large_string keeps the text buffer, and through it the whole batch
        # (an imported batch is freed as one).
        messages = _typed(batch.column("error_message"), pa.large_string())
        empty = pa.array([], type=pa.large_string())
        self.messages.append(pa.concat_arrays([messages, empty], memory_pool=_POOL))

    def build(self) -> pd.DataFrame:
        columns: dict[str, Any] = {}
        for name in PING_COLUMNS:
            _give_back_freed_memory()
            if name in self.names:
                columns[name] = self.names[name].categorical(self.parts[name])
            elif name in _FIXED_CATEGORIES:
                dtype = STATUS_DTYPE if name == "status" else ERROR_DTYPE
                columns[name] = pd.Categorical.from_codes(self._joined(name, np.int8), dtype=dtype)
            elif name in _TIMES:
                micros = pa.array(self._joined(name, np.int64)).view(_UTC_US)
                times = micros.to_pandas(coerce_temporal_nanoseconds=False)
                columns[name] = times.array
                del micros, times
            elif name in _INTS:
                values = self._joined(name, np.int32)
                masks = self.masks.pop(name)
                mask = np.concatenate(masks) if masks else np.empty(0, dtype=bool)
                masks.clear()
                columns[name] = pd.arrays.IntegerArray(values, mask)
            else:  # error_message: mostly null, kept as Arrow strings throughout
                chunked = pa.chunked_array(self.messages, type=pa.large_string())
                self.messages = []
                columns[name] = pd.array(chunked, dtype="str")
        _give_back_freed_memory()
        return pd.DataFrame(columns, copy=False)

    def _joined(self, name: str, dtype: type[np.generic]) -> np.ndarray:
        parts = self.parts[name]
        joined = np.concatenate(parts) if parts else np.empty(0, dtype=dtype)
        parts.clear()
        return joined


def _time_bound(value: TimeBound, now: pd.Timestamp) -> pd.Timestamp:
    """``value`` as a UTC timestamp; durations count back from ``now``. Raises ValueError."""
    if isinstance(value, dt.timedelta):
        return now - pd.Timedelta(value)
    # A bare number is a year to pandas, so only text with a unit is taken as a duration.
    if isinstance(value, str) and any(c.isalpha() for c in value):
        try:
            return now - pd.Timedelta(parse_duration(value))
        except ConfigError:
            pass  # not a duration: a time, then
    return utc_timestamp(value)


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValueError(f"not a site id (UUID): {value!r}") from None


def load_outages(
    engine_or_db: sqlalchemy.Engine | Any,
    since: TimeBound | None = "7d",
    sites: Iterable[uuid.UUID | str] | None = None,
) -> pd.DataFrame:
    """:func:`outages` of the pings loaded by :func:`load_pings` since ``since``.

    An outage already under way at ``since`` starts, here, at its first ping inside the period.
    """
    return outages(load_pings(engine_or_db, since=since, sites=sites))
