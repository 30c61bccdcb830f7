"""The pings frame: its dtypes, and the readers every function over it shares.

A *pings frame* has the columns of the ``pings`` table: ``site_id`` (str, uuid.UUID or a
categorical of either), ``checked_at`` (tz-aware datetime64; a naive column is taken as UTC),
``status`` ('up' | 'down'), ``status_code`` and ``response_time_ms`` (nullable ints, milliseconds),
``error_category``, ``error_message``, ``location`` and ``region_code``.
:func:`uptimelab.stats.load_pings` builds one from the database with compact dtypes; every other
function only reads the columns it needs.

Conventions shared by every function here:

* A window W at time T holds the pings with ``checked_at`` in (T - W, T]: left-open,
  right-closed, all locations together. ``window_stats`` is the reference for the SQL that
  fills ``site_stats`` and must agree with it exactly.
* Pings of one site are put in time order by ``(checked_at, location)``, locations compared as
  Python strings (code-point order, i.e. PostgreSQL's ``COLLATE "C"``). So among pings at the same
  instant, the one with the greatest location is the *latest*.
* Calendar series (``uptime_series``, ``error_breakdown``) bin by period *start*,
  left-closed: [start, start + freq), as ``pandas.Grouper`` does.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from ..config import parse_duration
from ..domain.pings import ERROR_CATEGORIES

if TYPE_CHECKING:
    import numpy.typing as npt

STATUS_CATEGORIES: Final = ("up", "down")

STATUS_DTYPE: Final = pd.CategoricalDtype(list(STATUS_CATEGORIES))
ERROR_DTYPE: Final = pd.CategoricalDtype(list(ERROR_CATEGORIES))

TimeBound = dt.datetime | pd.Timestamp | dt.timedelta | str


def utc_timestamp(value: dt.datetime | pd.Timestamp | str) -> pd.Timestamp:
    """``value`` as a tz-aware UTC Timestamp (naive means UTC). Raises ValueError."""
    try:
        ts: Any = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a time: {value!r}") from exc
    if not isinstance(ts, pd.Timestamp) or pd.isna(ts):
        raise ValueError(f"not a time: {value!r}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def duration(value: str | dt.timedelta, name: str) -> dt.timedelta:
    """``value`` as a timedelta: a timedelta as it is, or text such as "7d" read by
    :func:`uptimelab.config.parse_duration`. Raises ConfigError naming ``name``."""
    return value if isinstance(value, dt.timedelta) else parse_duration(value, name=name)


def period_start(since: str | dt.timedelta | dt.datetime) -> pd.Timestamp:
    """The start of a period reaching back to ``since``: a time (naive means UTC), or a duration
    back from now. Raises ConfigError for text that is not a duration, ValueError for a bad time."""
    if isinstance(since, dt.datetime):
        return utc_timestamp(since)
    return pd.Timestamp.now(tz="UTC") - pd.Timedelta(duration(since, "since"))


def require_columns(pings: pd.DataFrame, *columns: str) -> None:
    missing = [c for c in columns if c not in pings.columns]
    if missing:
        raise ValueError(f"pings frame lacks column(s) {', '.join(missing)}")


def checked_at(pings: pd.DataFrame) -> pd.Series:
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


def is_up(pings: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Whether each ping is up. Raises ValueError for a status other than 'up'/'down'."""
    status = pings["status"]
    up = (status == "up").to_numpy(dtype=bool, na_value=False)
    down = (status == "down").to_numpy(dtype=bool, na_value=False)
    if not (up | down).all():
        bad = status[~(up | down)].iloc[0]
        raise ValueError(f"status must be 'up' or 'down', found {bad!r}")
    return up


def location_rank(location: pd.Series) -> npt.NDArray[np.int64]:
    """Each ping's location as its rank among the distinct locations in string order."""
    if isinstance(location.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in location.cat.categories]
        rank = np.empty(len(cats), dtype=np.int64)
        rank[np.argsort(np.array(cats, dtype=object), kind="stable")] = np.arange(len(cats))
        codes = location.cat.codes.to_numpy()
        return np.where(codes >= 0, rank[codes], -1)
    codes, _ = pd.factorize(location.astype(str), sort=True)
    return codes.astype(np.int64)


def time_ordered(pings: pd.DataFrame) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
    """Positions that sort ``pings`` by (site, checked_at, location), and each row's site code.

    Site codes number the distinct ``site_id`` values in sorted order.
    """
    site_codes, _ = pd.factorize(pings["site_id"], sort=True)
    t = checked_at(pings).dt.tz_convert(None).to_numpy().view(np.int64)
    order = np.lexsort((location_rank(pings["location"]), t, site_codes))
    return order, site_codes.astype(np.int64)


def factorize_sites(pings: pd.DataFrame) -> tuple[npt.NDArray[np.int64], pd.Index]:
    codes, uniques = pd.factorize(pings["site_id"], sort=True)
    return codes.astype(np.int64), pd.Index(uniques, name="site_id")


def percent(up: Any, n: Any) -> Any:
    """100 * up / n in float64 (one rounding, like PostgreSQL float8 division)."""
    return 100.0 * up / n
