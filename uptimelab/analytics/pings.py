"""Reliability analytics on pings: pure DataFrame-in, DataFrame-out functions, plus one loader.

A *pings frame* has the columns of the ``pings`` table: ``site_id`` (str, uuid.UUID or a
categorical of either), ``checked_at`` (tz-aware datetime64; a naive column is taken as UTC),
``status`` ('up' | 'down'), ``status_code`` and ``response_time_ms`` (nullable ints, milliseconds),
``error_category``, ``error_message``, ``location`` and ``region_code``. :func:`load_pings` builds
one from the database with compact dtypes; every other function only reads the columns it needs.

Conventions shared by every function here:

* A window W at time T holds the pings with ``checked_at`` in (T - W, T]: left-open,
  right-closed, all locations together. :func:`window_stats` is the reference for the SQL that
  fills ``site_stats`` and must agree with it exactly.
* Pings of one site are put in time order by ``(checked_at, location)``, locations compared as
  Python strings (code-point order, i.e. PostgreSQL's ``COLLATE "C"``). So among pings at the same
  instant, the one with the greatest location is the *latest*.
* Calendar series (:func:`uptime_series`, :func:`error_breakdown`) bin by period *start*,
  left-closed: [start, start + freq), as ``pandas.Grouper`` does.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeGuard

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from ..config import parse_duration
from ..domain.pings import ERROR_CATEGORIES, PING_COLUMNS
from ..errors import ConfigError

if TYPE_CHECKING:
    import numpy.typing as npt
    import psycopg
    import sqlalchemy

__all__ = [
    "ERROR_CATEGORIES",
    "ERROR_DTYPE",
    "STATUS_DTYPE",
    "STATUS_CATEGORIES",
    "WINDOWS",
    "error_breakdown",
    "load_outages",
    "load_pings",
    "outages",
    "reliability",
    "response_time_quantiles",
    "uptime_series",
    "window_stats",
]

WINDOWS: Final[dict[str, pd.Timedelta]] = {
    "1h": pd.Timedelta(hours=1),
    "24h": pd.Timedelta(hours=24),
    "7d": pd.Timedelta(days=7),
}
STATUS_CATEGORIES: Final = ("up", "down")

STATUS_DTYPE: Final = pd.CategoricalDtype(list(STATUS_CATEGORIES))
ERROR_DTYPE: Final = pd.CategoricalDtype(list(ERROR_CATEGORIES))


TimeBound = dt.datetime | pd.Timestamp | dt.timedelta | str


# --------------------------------------------------------------------------------------------
# Loading


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
    categorical with the fixed categories :data:`STATUS_CATEGORIES` / ``ERROR_CATEGORIES``;
    ``status_code``/``response_time_ms`` Int32 (milliseconds); ``error_message`` str. Rows come
    in no particular order.

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
        " error_category, error_message, location, region_code FROM pings"
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
        elif name == "checked_at":
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


def utc_timestamp(value: dt.datetime | pd.Timestamp | str) -> pd.Timestamp:
    """``value`` as a tz-aware UTC Timestamp (naive means UTC). Raises ValueError."""
    try:
        ts: Any = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a time: {value!r}") from exc
    if not isinstance(ts, pd.Timestamp) or pd.isna(ts):
        raise ValueError(f"not a time: {value!r}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


# --------------------------------------------------------------------------------------------
# Helpers on pings frames


def _require(pings: pd.DataFrame, *columns: str) -> None:
    missing = [c for c in columns if c not in pings.columns]
    if missing:
        raise ValueError(f"pings frame lacks column(s) {', '.join(missing)}")


def _checked_at(pings: pd.DataFrame) -> pd.Series:
    """``checked_at`` as tz-aware UTC. Raises ValueError when it is not datetime64."""
    col = pings["checked_at"]
    if not pd.api.types.is_datetime64_any_dtype(col.dtype):
        raise ValueError(f"checked_at must be datetime64, not {col.dtype}")
    return utc_series(col)


def utc_series(column: pd.Series) -> pd.Series:
    """A datetime64 column as tz-aware UTC (a naive column is taken as UTC)."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        converted: pd.Series = column.dt.tz_convert("UTC")
    else:
        converted = column.dt.tz_localize("UTC")
    return converted


def _is_up(pings: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Whether each ping is up. Raises ValueError for a status other than 'up'/'down'."""
    status = pings["status"]
    up = (status == "up").to_numpy(dtype=bool, na_value=False)
    down = (status == "down").to_numpy(dtype=bool, na_value=False)
    if not (up | down).all():
        bad = status[~(up | down)].iloc[0]
        raise ValueError(f"status must be 'up' or 'down', found {bad!r}")
    return up


def _location_rank(location: pd.Series) -> npt.NDArray[np.int64]:
    """Each ping's location as its rank among the distinct locations in string order."""
    if isinstance(location.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in location.cat.categories]
        rank = np.empty(len(cats), dtype=np.int64)
        rank[np.argsort(np.array(cats, dtype=object), kind="stable")] = np.arange(len(cats))
        codes = location.cat.codes.to_numpy()
        return np.where(codes >= 0, rank[codes], -1)
    codes, _ = pd.factorize(location.astype(str), sort=True)
    return codes.astype(np.int64)


def _time_ordered(pings: pd.DataFrame) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
    """Positions that sort ``pings`` by (site, checked_at, location), and each row's site code.

    Site codes number the distinct ``site_id`` values in sorted order.
    """
    site_codes, _ = pd.factorize(pings["site_id"], sort=True)
    t = _checked_at(pings).dt.tz_convert(None).to_numpy().view(np.int64)
    order = np.lexsort((_location_rank(pings["location"]), t, site_codes))
    return order, site_codes.astype(np.int64)


def _site_uniques(pings: pd.DataFrame) -> tuple[npt.NDArray[np.int64], pd.Index]:
    codes, uniques = pd.factorize(pings["site_id"], sort=True)
    return codes.astype(np.int64), pd.Index(uniques, name="site_id")


def _round_half_away(total: npt.NDArray[np.int64], count: npt.NDArray[np.int64]) -> Any:
    """round(total / count) half away from zero, exactly in integers; 0 where count is 0."""
    safe = np.where(count > 0, count, 1)
    magnitude = (2 * np.abs(total) + safe) // (2 * safe)
    return np.where(count > 0, np.sign(total) * magnitude, 0)


def _pct(up: Any, n: Any) -> Any:
    """100 * up / n in float64 (one rounding, like PostgreSQL float8 division)."""
    return 100.0 * up / n


# --------------------------------------------------------------------------------------------
# Windows (must agree with the SQL that fills site_stats)


def window_stats(pings: pd.DataFrame, now: dt.datetime | pd.Timestamp | str) -> pd.DataFrame:
    """Per-site uptime, mean response time and ping counts over the :data:`WINDOWS` at ``now``.

    One row per site with at least one ping at or before ``now`` (naive means UTC), sorted by
    ``site_id``. For each window W (1h, 24h, 7d) the pings counted have ``checked_at`` in
    (now - W, now], from every location:

    * ``uptime_W``: 100 * up pings / pings, float32 (percent; computed in float64, then
      rounded once to float32, as PostgreSQL ``(100 * up)::float8 / n)::real``); 0 when the
      window is empty.
    * ``avg_response_time_W``: mean ``response_time_ms`` of the window's up pings with a response
      time, rounded half away from zero, int64 milliseconds; 0 when there are none.
    * ``pings_W``: number of pings in the window, int64.
    * ``current_status``, ``last_checked``: status and time of the latest ping at or before
      ``now``; among pings at that same instant, the one with the greatest location (string
      order) wins -- SQL: ``ORDER BY checked_at DESC, location COLLATE "C" DESC LIMIT 1``.
      ``current_status`` has the dtype of ``pings.status``.

    Pings after ``now`` are ignored. Raises ValueError when a column is missing, ``checked_at`` is
    not datetime64, a status is not 'up'/'down', or ``now`` is not a time.
    """
    _require(pings, "site_id", "checked_at", "status", "response_time_ms", "location")
    t_now = utc_timestamp(now)
    checked = _checked_at(pings)
    seen = (checked <= t_now).to_numpy(dtype=bool, na_value=False)
    frame = pings.loc[seen]
    checked = checked.loc[seen]
    up = _is_up(frame)
    site_codes, sites = _site_uniques(frame)
    n_sites = len(sites)
    rt = frame["response_time_ms"]
    has_rt = up & rt.notna().to_numpy(dtype=bool)
    rt_values = np.where(has_rt, rt.fillna(0).to_numpy(dtype=np.int64), 0)

    out: dict[str, Any] = {"site_id": sites}
    counts: dict[str, npt.NDArray[np.int64]] = {}
    for name, width in WINDOWS.items():
        inside = (checked > t_now - width).to_numpy(dtype=bool, na_value=False)
        n = np.bincount(site_codes[inside], minlength=n_sites).astype(np.int64)
        n_up = np.bincount(site_codes[inside & up], minlength=n_sites).astype(np.int64)
        with_rt = inside & has_rt
        rt_n = np.bincount(site_codes[with_rt], minlength=n_sites).astype(np.int64)
        # Integer sums (bincount's weights would go through float64 and could lose digits).
        rt_sum = np.zeros(n_sites, dtype=np.int64)
        np.add.at(rt_sum, site_codes[with_rt], rt_values[with_rt])
        uptime = np.zeros(n_sites, dtype=np.float64)
        np.divide(100.0 * n_up, n, out=uptime, where=n > 0)
        out[f"uptime_{name}"] = uptime.astype(np.float32)
        out[f"avg_response_time_{name}"] = _round_half_away(rt_sum, rt_n).astype(np.int64)
        counts[f"pings_{name}"] = n
    out.update(counts)

    # The latest ping per site: order by (site, checked_at, location) and take each site's last.
    t = checked.dt.tz_convert(None).to_numpy().view(np.int64)
    order = np.lexsort((_location_rank(frame["location"]), t, site_codes))
    is_last = np.ones(len(order), dtype=bool)
    is_last[:-1] = site_codes[order][1:] != site_codes[order][:-1]
    latest = order[is_last]
    out["current_status"] = frame["status"].iloc[latest].array
    out["last_checked"] = checked.iloc[latest].array
    columns = [
        "site_id",
        *(f"uptime_{name}" for name in WINDOWS),
        *(f"avg_response_time_{name}" for name in WINDOWS),
        *(f"pings_{name}" for name in WINDOWS),
        "current_status",
        "last_checked",
    ]
    return pd.DataFrame(out)[columns].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Calendar series


def uptime_series(pings: pd.DataFrame, freq: str | pd.DateOffset = "1h") -> pd.DataFrame:
    """Uptime percent per site per calendar period, as a wide frame.

    Index: period start (tz-aware UTC, named ``period``; periods are [start, start + freq), every
    period from the first ping's to the last ping's, including empty ones); columns: one per
    ``site_id``, sorted; values: 100 * up / pings, float64 percent, NaN where the site had no ping
    in that period (no data is not 0 % uptime). ``freq`` is a pandas offset alias ("15min",
    "1h", "1D"; for weeks and months use start-anchored ones such as "W-MON" and "MS").
    Raises ValueError for a missing column, a bad status or an invalid ``freq``.
    """
    _require(pings, "site_id", "checked_at", "status")
    frame = pd.DataFrame(
        {
            "site_id": pings["site_id"].array,
            "checked_at": _checked_at(pings).array,
            "up": _is_up(pings).astype(np.int64),
        }
    )
    grouped = frame.groupby(["site_id", _period_grouper(freq)], observed=True)["up"]
    counts = grouped.agg(["sum", "count"])
    wide_up = counts["sum"].unstack("site_id")
    wide_n = counts["count"].unstack("site_id")
    result = _pct(wide_up, wide_n.where(wide_n > 0))
    result = _full_periods(result, frame["checked_at"], freq)
    result.index.name = "period"
    result.columns.name = "site_id"
    return result.astype(np.float64)


def _period_grouper(freq: str | pd.DateOffset) -> pd.Grouper:
    # Explicit: pandas closes end-anchored offsets ("W", "ME") on the right and labels them by
    # their end, while these series promise [start, start + freq) labelled by the start.
    return pd.Grouper(key="checked_at", freq=freq, closed="left", label="left")


def _full_periods(
    frame: pd.DataFrame, checked: pd.Series, freq: str | pd.DateOffset
) -> pd.DataFrame:
    """``frame`` reindexed to every period between the first and last ping's."""
    if checked.empty:
        empty = pd.DatetimeIndex([], dtype="datetime64[us, UTC]")
        return frame.reindex(empty)
    series = pd.Series(0, index=pd.DatetimeIndex(checked))
    periods = series.resample(freq, closed="left", label="left").size().index
    return frame.reindex(periods)


def error_breakdown(pings: pd.DataFrame, freq: str | pd.DateOffset = "1h") -> pd.DataFrame:
    """Number of down pings per error category per calendar period, all sites and locations.

    Index: period start (tz-aware UTC, named ``period``; [start, start + freq), every period from
    the first ping's to the last ping's, up pings included in that span); columns: the eight
    ``ERROR_CATEGORIES`` in their fixed order, int64 counts, 0 where none. Raises ValueError for
    a missing column, an unknown error category, or an invalid ``freq``.
    """
    _require(pings, "checked_at", "error_category")
    category = pings["error_category"]
    known = category.isna() | category.isin(ERROR_CATEGORIES)
    if not known.all():
        raise ValueError(f"unknown error_category {category[~known].iloc[0]!r}")
    checked = _checked_at(pings)
    frame = pd.DataFrame(
        {
            "checked_at": checked.array,
            "error_category": pd.Categorical(category.astype(object), dtype=ERROR_DTYPE),
            "one": np.ones(len(pings), dtype=np.int64),
        }
    )
    result = frame.pivot_table(
        index=_period_grouper(freq),
        columns="error_category",
        values="one",
        aggfunc="sum",
        fill_value=0,
        observed=False,
        dropna=True,
    )
    result = result.reindex(columns=list(ERROR_CATEGORIES), fill_value=0)
    result = _full_periods(result, frame["checked_at"], freq).fillna(0).astype(np.int64)
    result.index.name = "period"
    result.columns = pd.Index(list(ERROR_CATEGORIES), name="error_category")
    return result


# --------------------------------------------------------------------------------------------
# Response times


def response_time_quantiles(
    pings: pd.DataFrame,
    q: Sequence[float] = (0.5, 0.95, 0.99),
    by: str | Sequence[str] = "site_id",
) -> pd.DataFrame:
    """Quantiles of ``response_time_ms`` over up pings with a response time, per group.

    Index: the ``by`` column(s), sorted; columns: ``count`` (int64 pings used) then one float64
    column per quantile, named ``p`` + percent (0.5 -> ``p50``, 0.999 -> ``p99.9``), in
    milliseconds. Quantiles interpolate linearly between order statistics, like PostgreSQL
    ``percentile_cont``. Groups with no such ping are absent. Raises ValueError for a missing
    column, a bad status, or a quantile outside [0, 1].
    """
    keys = [by] if isinstance(by, str) else list(by)
    qs = [float(x) for x in q]
    if not all(0.0 <= x <= 1.0 for x in qs):
        raise ValueError(f"quantiles must be within [0, 1], got {qs}")
    _require(pings, "status", "response_time_ms", *keys)
    rt = pings["response_time_ms"]
    used = _is_up(pings) & rt.notna().to_numpy(dtype=bool)
    frame = pings.loc[used, keys].copy()
    frame["rt"] = rt[used].astype(np.float64)
    grouped = frame.groupby(keys, observed=True, sort=True)["rt"]
    names = [f"p{x * 100:g}" for x in qs]
    result = pd.DataFrame({"count": grouped.size().astype(np.int64)})
    if qs:
        # reindex: an empty selection unstacks to no columns at all.
        table = grouped.quantile(np.array(qs)).unstack(-1).reindex(columns=qs)
        table.columns = pd.Index(names)
        result = result.join(table)
    return result


# --------------------------------------------------------------------------------------------
# Outages and reliability


def outages(pings: pd.DataFrame) -> pd.DataFrame:
    """One row per outage: a maximal run of a site's consecutive down pings.

    Pings of a site are merged across locations and ordered by (checked_at, location). Columns:
    ``site_id``; ``started_at`` (the run's first down ping); ``ended_at`` (the first up ping after
    the run; NaT while the outage lasts); ``duration`` (ended_at - started_at, Timedelta; NaT while
    ongoing, and 0 when an up ping from another location has the same instant); ``pings_down``
    (int64); ``first_error_category`` (the first down ping's). Sorted by site_id, started_at.
    Raises ValueError for a missing column, a non-datetime ``checked_at`` or a bad status.
    """
    _require(pings, "site_id", "checked_at", "status", "error_category", "location")
    order, site_codes = _time_ordered(pings)
    site = site_codes[order]
    down = ~_is_up(pings)[order]
    checked = _checked_at(pings).iloc[order].reset_index(drop=True)
    n = len(order)
    new_site = np.ones(n, dtype=bool)
    new_site[1:] = site[1:] != site[:-1]
    prev_down = np.zeros(n, dtype=bool)
    prev_down[1:] = down[:-1]
    starts = np.flatnonzero(down & (new_site | ~prev_down))
    ends_last = np.ones(n, dtype=bool)  # a run's last ping: the next row is up or another site
    ends_last[:-1] = ~down[1:] | new_site[1:]
    lasts = np.flatnonzero(down & ends_last)
    after = lasts + 1
    ended = np.zeros(len(lasts), dtype=bool)
    ended[after < n] = ~new_site[after[after < n]]
    started_at = checked.iloc[starts].reset_index(drop=True)
    ended_at = pd.Series(pd.NaT, index=started_at.index, dtype=started_at.dtype)
    ended_at[ended] = checked.iloc[after[ended]].array
    return pd.DataFrame(
        {
            "site_id": pings["site_id"].iloc[order[starts]].reset_index(drop=True),
            "started_at": started_at,
            "ended_at": ended_at,
            "duration": ended_at - started_at,
            "pings_down": (lasts - starts + 1).astype(np.int64),
            "first_error_category": pings["error_category"]
            .iloc[order[starts]]
            .reset_index(drop=True),
        }
    )


def reliability(
    pings: pd.DataFrame, now: dt.datetime | pd.Timestamp | str | None = None
) -> pd.DataFrame:
    """Per-site reliability over the pings at or before ``now`` (None: all pings).

    One row per site with pings, indexed by ``site_id`` (sorted). Columns:

    * ``pings`` (int64) and ``uptime_pct``: 100 * up / pings, float64 percent.
    * ``outages``: number of outages (see :func:`outages`), int64; ``ongoing``: whether the last
      one has not ended (bool).
    * ``mttr``: mean time to recovery, the mean duration of the ended outages (Timedelta; NaT
      when none ended).
    * ``mtbf``: mean time between failures in the ITIL sense, the mean *up* time between an
      outage's end and the next outage's start (Timedelta; NaT with fewer than two outages).
    * ``mtbsi``: mean time between the starts of consecutive outages (= mttr + mtbf over the
      same pairs; Timedelta; NaT with fewer than two outages).

    Raises ValueError for a missing column, a non-datetime ``checked_at``, a bad status, or a
    ``now`` that is not a time.
    """
    _require(pings, "site_id", "checked_at", "status", "error_category", "location")
    if now is not None:
        keep = (_checked_at(pings) <= utc_timestamp(now)).to_numpy(dtype=bool, na_value=False)
        pings = pings.loc[keep]
    codes, sites = _site_uniques(pings)
    n = np.bincount(codes, minlength=len(sites)).astype(np.int64)
    n_up = np.bincount(codes[_is_up(pings)], minlength=len(sites)).astype(np.int64)
    base = pd.DataFrame({"pings": n, "uptime_pct": _pct(n_up, n)}, index=sites)

    found = outages(pings)
    found["site_id"] = pd.Index(found["site_id"]).astype(sites.dtype)
    same_site = found["site_id"].eq(found["site_id"].shift(-1)).to_numpy(dtype=bool)
    found["up_after"] = (found["started_at"].shift(-1) - found["ended_at"]).where(same_site)
    found["start_gap"] = (found["started_at"].shift(-1) - found["started_at"]).where(same_site)
    grouped = found.groupby("site_id", observed=True, sort=True)
    per_site = pd.DataFrame(
        {
            "outages": grouped.size().astype(np.int64),
            # Only a site's last outage can lack an end.
            "ongoing": found["ended_at"].isna().groupby(found["site_id"], observed=True).any(),
            "mttr": grouped["duration"].mean(),
            "mtbf": grouped["up_after"].mean(),
            "mtbsi": grouped["start_gap"].mean(),
        }
    )
    result = base.join(per_site.reindex(sites))
    result["outages"] = result["outages"].fillna(0).astype(np.int64)
    result["ongoing"] = result["ongoing"].fillna(False).astype(bool)
    for name in ("mttr", "mtbf", "mtbsi"):
        result[name] = pd.to_timedelta(result[name])
    return result[["pings", "outages", "ongoing", "mttr", "mtbf", "mtbsi", "uptime_pct"]]


def load_outages(
    engine_or_db: sqlalchemy.Engine | Any,
    since: TimeBound | None = "7d",
    sites: Iterable[uuid.UUID | str] | None = None,
) -> pd.DataFrame:
    """:func:`outages` of the pings loaded by :func:`load_pings` since ``since``.

    An outage already under way at ``since`` starts, here, at its first ping inside the period.
    """
    return outages(load_pings(engine_or_db, since=since, sites=sites))
