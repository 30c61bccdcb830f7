"""Pings from the database as a compact pings frame (see :mod:`uptimelab.analytics.frames`), and
the outages of a period straight from the database."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeGuard

import pandas as pd
from pandas.api.types import union_categoricals

from ..config import parse_duration
from ..domain.pings import PHASES, PING_COLUMNS
from ..errors import ConfigError
from .frames import ERROR_DTYPE, STATUS_DTYPE, TimeBound, utc_timestamp
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
) -> pd.DataFrame:
    """The pings with ``since <= checked_at <= until`` (both inclusive) of ``sites``, as a frame.

    ``engine_or_db`` is a SQLAlchemy Engine using the psycopg (3) driver, or any object with a
    libpq ``url`` attribute (such as ``uptimelab.db.Database``). ``since``/``until`` are datetimes
    (naive ones are UTC), ISO strings, or a duration -- a ``timedelta`` or a string of
    number-unit pairs in w, d, h, m(in), s such as ``"7d"``, ``"90min"``, ``"1h30m"`` -- meaning
    that long before now; None means unbounded. ``sites`` is a
    list of site ids (UUIDs or their strings); None means every site.

    Rows are read through a server-side cursor ``chunksize`` rows at a time and each chunk is
    turned into typed columns at once, so memory holds the compact frame plus one chunk of Python
    objects, never the whole result as tuples. Columns: ``site_id``, ``location``, ``region_code``
    categorical (of str); ``checked_at`` datetime64[us, UTC]; ``status`` and ``error_category``
    categorical with the fixed categories ``STATUS_CATEGORIES`` / ``ERROR_CATEGORIES``;
    ``status_code``/``response_time_ms`` Int32 (milliseconds); ``error_message`` str; the phases
    ``dns_ms``, ``connect_ms``, ``tls_ms``, ``ttfb_ms``, ``transfer_ms`` Int32 (milliseconds, NA
    where a phase did not happen); ``cert_expires_at`` datetime64[us, UTC] (NaT without one).
    Rows come in no particular order.

    Raises ValueError for a malformed site id or time bound or a chunksize < 1, TypeError for an
    engine whose driver is not psycopg, and psycopg.Error when the query fails.
    """
    if chunksize < 1:
        raise ValueError(f"chunksize must be at least 1, got {chunksize}")
    now = pd.Timestamp.now(tz="UTC")
    lo = None if since is None else _time_bound(since, now)
    hi = None if until is None else _time_bound(until, now)
    site_ids = None if sites is None else [str(_as_uuid(s)) for s in sites]

    # Only fixed SQL fragments are joined here; every value travels as a bound parameter.
    conditions = []
    params: dict[str, Any] = {}
    if lo is not None:
        conditions.append("checked_at >= %(since)s")
        params["since"] = lo.to_pydatetime()
    if hi is not None:
        conditions.append("checked_at <= %(until)s")
        params["until"] = hi.to_pydatetime()
    if site_ids is not None:
        conditions.append("site_id = ANY(%(sites)s::uuid[])")
        params["sites"] = site_ids
    query = (
        "SELECT site_id::text, checked_at, status, status_code, response_time_ms,"
        " error_category, error_message, location, region_code,"
        " dns_ms, connect_ms, tls_ms, ttfb_ms, transfer_ms, cert_expires_at FROM pings"
    )
    if conditions:
        query += " WHERE " + " AND ".join(conditions)

    import sqlalchemy

    if isinstance(engine_or_db, sqlalchemy.Engine):
        raw = engine_or_db.raw_connection()
        try:
            conn = raw.driver_connection
            if not _is_psycopg_connection(conn):
                raise TypeError(
                    f"load_pings needs the psycopg driver, the engine uses {engine_or_db.driver!r}"
                )
            return _read_pings(conn, query, params, chunksize)
        finally:
            raw.close()
    url = getattr(engine_or_db, "url", None)
    if not isinstance(url, str):
        raise TypeError(
            "engine_or_db must be a SQLAlchemy Engine or have a libpq url attribute, "
            f"got {type(engine_or_db).__name__}"
        )
    import psycopg

    with psycopg.connect(url) as conn:
        return _read_pings(conn, query, params, chunksize)


def _is_psycopg_connection(conn: object) -> TypeGuard[psycopg.Connection[Any]]:
    import psycopg

    return isinstance(conn, psycopg.Connection)


def _read_pings(
    conn: psycopg.Connection[Any], query: str, params: dict[str, Any], chunksize: int
) -> pd.DataFrame:
    from psycopg.rows import tuple_row

    chunks: list[dict[str, Any]] = []
    # A named (server-side) cursor needs a transaction; transaction() opens one, or a savepoint
    # inside the caller's. SET LOCAL makes timestamps arrive in UTC and ends with the transaction.
    with conn.transaction():
        conn.execute("SET LOCAL TIME ZONE 'UTC'")
        with conn.cursor(name="uptimelab_load_pings", row_factory=tuple_row) as cur:
            cur.itersize = chunksize
            cur.execute(query, params)
            while rows := cur.fetchmany(chunksize):
                chunks.append(_typed_chunk(rows))
    return _concat_chunks(chunks)


def _typed_chunk(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """One chunk of result tuples as typed arrays (the tuples are dropped by the caller)."""
    cols = list(zip(*rows, strict=True))
    return {
        "site_id": pd.Categorical(cols[0]),
        "checked_at": pd.DatetimeIndex(pd.to_datetime(list(cols[1]), utc=True)).as_unit("us"),
        "status": pd.Categorical(cols[2], dtype=STATUS_DTYPE),
        "status_code": pd.array(cols[3], dtype="Int32"),
        "response_time_ms": pd.array(cols[4], dtype="Int32"),
        "error_category": pd.Categorical(cols[5], dtype=ERROR_DTYPE),
        "error_message": pd.array(cols[6], dtype="str"),
        "location": pd.Categorical(cols[7]),
        "region_code": pd.Categorical(cols[8]),
        **{name: pd.array(cols[k], dtype="Int32") for k, name in enumerate(_PHASE_COLUMNS, 9)},
        "cert_expires_at": pd.DatetimeIndex(pd.to_datetime(list(cols[14]), utc=True)).as_unit("us"),
    }


def _concat_chunks(chunks: list[dict[str, Any]]) -> pd.DataFrame:
    if not chunks:
        empty: dict[str, Any] = {
            "site_id": pd.Categorical([], categories=pd.Index([], dtype="str")),
            "checked_at": pd.DatetimeIndex([], dtype="datetime64[us, UTC]"),
            "status": pd.Categorical([], dtype=STATUS_DTYPE),
            "status_code": pd.array([], dtype="Int32"),
            "response_time_ms": pd.array([], dtype="Int32"),
            "error_category": pd.Categorical([], dtype=ERROR_DTYPE),
            "error_message": pd.array([], dtype="str"),
            "location": pd.Categorical([], categories=pd.Index([], dtype="str")),
            "region_code": pd.Categorical([], categories=pd.Index([], dtype="str")),
            **{name: pd.array([], dtype="Int32") for name in _PHASE_COLUMNS},
            "cert_expires_at": pd.DatetimeIndex([], dtype="datetime64[us, UTC]"),
        }
        return pd.DataFrame(empty)
    columns: dict[str, Any] = {}
    for name in PING_COLUMNS:
        parts = [chunk.pop(name) for chunk in chunks]
        if name in ("site_id", "location", "region_code"):
            # Chunks see different sets of values; a union keeps the column categorical (a plain
            # concat would fall back to object) and sorting makes the categories' order the
            # strings' order.
            columns[name] = union_categoricals(parts, sort_categories=True)
        elif name in ("checked_at", "cert_expires_at"):
            columns[name] = parts[0].append(parts[1:]) if len(parts) > 1 else parts[0]
        else:
            columns[name] = (
                pd.Series(parts[0])
                if len(parts) == 1
                else pd.concat([pd.Series(p) for p in parts], ignore_index=True)
            )
        del parts
    return pd.DataFrame({name: _values(col) for name, col in columns.items()})


def _values(col: Any) -> Any:
    return col.array if isinstance(col, pd.Series | pd.Index) else col


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
