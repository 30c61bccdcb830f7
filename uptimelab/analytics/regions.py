"""Many locations probing one site: stats per location, and the quorum verdict across them.

The reference for the SQL in ``sql/006_quorum.sql``, and equal to it exactly:

* Per location: :func:`location_stats` is :func:`~uptimelab.analytics.windows.window_stats` of
  each location's pings alone, one row per (site, location) pinged in the 7 days before ``now``.
* The quorum verdict of a site at an instant T: each location's latest ping of the site with
  ``checked_at`` in (T - 2 * interval, T] -- left-open, right-closed: a ping exactly two intervals
  old no longer counts, one at T does. With n such locations, d of them down, and K = ``quorum``
  (None: a majority, n // 2 + 1), the site is down at T when d >= min(K, n): when fewer
  locations report than K asks for, it is down only if all of them are down (rather than never:
  a quorum should not go blind when collectors stop). With n = 0 there is no verdict.
* Quorum uptime: the verdict sampled at every distinct ``checked_at`` of the site's pings, from
  any location, in the window (at such an instant n >= 1); 100 * up instants / instants, float32
  (computed in float64), 0 with none.

A site's interval is ``sites.interval_ms`` (``interval_ms``, from :func:`load_site_intervals`),
or ``default_interval_ms`` (the setting MONITORING_INTERVAL_MS) where it has none. The verdict at
an instant reads pings up to two intervals before it: give pings from that far before the period.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from ..config import MAX_INTERVAL_MS
from ..storage.database import Database
from ..storage.regions import MAX_QUORUM, site_intervals_ms
from .frames import (
    checked_at,
    factorize_sites,
    is_up,
    location_rank,
    require_columns,
    utc_timestamp,
)
from .windows import WINDOWS, window_stats

if TYPE_CHECKING:
    import numpy.typing as npt

DEFAULT_INTERVAL_MS: Final = 300_000
"""The default of MONITORING_INTERVAL_MS."""

_NEVER: Final = np.iinfo(np.int64).max

Time = dt.datetime | pd.Timestamp | str


def load_site_intervals(db: Database | None = None) -> dict[str, int | None]:
    """Every site's own interval in milliseconds (None: the default), by site id as a string:
    the ``interval_ms`` of :func:`quorum_verdicts` and :func:`quorum_stats`."""
    return site_intervals_ms(db)


def location_stats(pings: pd.DataFrame, now: Time, location: str | None = None) -> pd.DataFrame:
    """:func:`window_stats` per location: one row per (site, location) with a ping in
    (now - 7d, now], columns ``site_id``, ``location``, then window_stats' columns; sorted by
    site (as window_stats), then location (string order). ``location`` keeps only that one.

    Raises ValueError as window_stats does.
    """
    require_columns(pings, "site_id", "checked_at", "status", "response_time_ms", "location")
    places = pings["location"].astype(str)
    parts = []
    for place in sorted(set(places)):
        if location is not None and place != location:
            continue
        stats = window_stats(pings.loc[(places == place).to_numpy()], now)
        stats.insert(1, "location", place)
        parts.append(stats.loc[stats["pings_7d"] > 0])
    if not parts:
        empty = window_stats(pings.iloc[:0], now)
        empty.insert(1, "location", pd.Series([], dtype=object))
        return empty
    result = pd.concat(parts, ignore_index=True)
    site_codes, _ = pd.factorize(result["site_id"].astype(object), sort=True)
    order = np.lexsort((result["location"].to_numpy(dtype=str), site_codes))
    return result.iloc[order].reset_index(drop=True)


def quorum_verdicts(
    pings: pd.DataFrame,
    *,
    since: Time | None = None,
    until: Time | None = None,
    quorum: int | None = None,
    default_interval_ms: int = DEFAULT_INTERVAL_MS,
    interval_ms: Mapping[Any, int | None] | None = None,
) -> pd.DataFrame:
    """The quorum verdict at every ping instant in (since, until] (None: unbounded), per site.

    Columns: ``site_id``, ``checked_at`` (the instant, tz-aware UTC), ``locations`` (n),
    ``locations_down`` (d), both int64, and ``status`` ('up' | 'down'); sorted by site, then time.
    ``quorum`` is K (None: majority); ``interval_ms`` maps a site id (or its string) to its own
    interval, None or absent meaning ``default_interval_ms``. Raises ValueError for a missing
    column, a bad status or time, a quorum or an interval out of range.
    """
    _check(quorum, default_interval_ms)
    lo = None if since is None else utc_timestamp(since)
    hi = None if until is None else utc_timestamp(until)
    sweep = _sweep(pings, hi, default_interval_ms, interval_ms)
    at = sweep.at
    keep = sweep.pinged.copy()
    if lo is not None:
        keep &= at > lo.value
    down = _down(sweep.n[keep], sweep.d[keep], quorum)
    return pd.DataFrame(
        {
            "site_id": sweep.sites[sweep.site[keep]],
            "checked_at": pd.DatetimeIndex(at[keep].view("datetime64[ns]")).tz_localize("UTC"),
            "locations": sweep.n[keep],
            "locations_down": sweep.d[keep],
            "status": np.where(down, "down", "up").astype(object),
        }
    )


def quorum_uptime(
    pings: pd.DataFrame,
    since: Time | None = None,
    until: Time | None = None,
    *,
    quorum: int | None = None,
    default_interval_ms: int = DEFAULT_INTERVAL_MS,
    interval_ms: Mapping[Any, int | None] | None = None,
) -> pd.DataFrame:
    """Quorum uptime over (since, until] per site: the verdicts of :func:`quorum_verdicts`
    counted. Index ``site_id``; columns ``uptime`` (percent, float32), ``instants`` and
    ``instants_down`` (int64); only sites with an instant in the period. Raises ValueError as
    quorum_verdicts does."""
    verdicts = quorum_verdicts(
        pings,
        since=since,
        until=until,
        quorum=quorum,
        default_interval_ms=default_interval_ms,
        interval_ms=interval_ms,
    )
    verdicts["down"] = (verdicts["status"] == "down").astype(np.int64)
    grouped = verdicts.groupby("site_id", sort=True)["down"]
    counts = grouped.agg(["size", "sum"]).astype(np.int64)
    uptime = (100.0 * (counts["size"] - counts["sum"]) / counts["size"]).astype(np.float32)
    return pd.DataFrame(
        {"uptime": uptime, "instants": counts["size"], "instants_down": counts["sum"]}
    )


def quorum_stats(
    pings: pd.DataFrame,
    now: Time,
    *,
    quorum: int | None = None,
    default_interval_ms: int = DEFAULT_INTERVAL_MS,
    interval_ms: Mapping[Any, int | None] | None = None,
) -> pd.DataFrame:
    """The quorum verdict at ``now`` and quorum uptime over the :data:`WINDOWS` before it, per
    site -- the SQL function ``uptimelab_quorum_stats``.

    One row per site with a ping in (now - 7d, now], sorted by ``site_id``. Columns:
    ``uptime_W`` (float32 percent), ``instants_W`` (int64: ping instants in (now - W, now]) for
    W in 1h, 24h, 7d; ``current_status``: the verdict at ``now`` ('up' | 'down', None when no
    location pinged within two intervals before it); ``locations``, ``locations_down`` (int64):
    its n and d. Raises ValueError as :func:`quorum_verdicts` does.
    """
    _check(quorum, default_interval_ms)
    t_now = utc_timestamp(now)
    sweep = _sweep(pings, t_now, default_interval_ms, interval_ms)
    n_sites = len(sweep.sites)
    instant = sweep.pinged & (sweep.at > (t_now - WINDOWS["7d"]).value)
    down = np.zeros(len(sweep.at), dtype=bool)
    down[instant] = _down(sweep.n[instant], sweep.d[instant], quorum)
    out: dict[str, Any] = {}
    counts: dict[str, Any] = {}
    for name, width in WINDOWS.items():
        inside = instant & (sweep.at > (t_now - width).value)
        n = np.bincount(sweep.site[inside], minlength=n_sites).astype(np.int64)
        n_up = np.bincount(sweep.site[inside & ~down], minlength=n_sites).astype(np.int64)
        uptime = np.zeros(n_sites, dtype=np.float64)
        np.divide(100.0 * n_up, n, out=uptime, where=n > 0)
        out[f"uptime_{name}"] = uptime.astype(np.float32)
        counts[f"instants_{name}"] = n
    out.update(counts)
    # The counts at now: the running sums at each site's last change (all are at or before now).
    n_now = np.zeros(n_sites, dtype=np.int64)
    d_now = np.zeros(n_sites, dtype=np.int64)
    is_last = np.ones(len(sweep.site), dtype=bool)
    is_last[:-1] = sweep.site[1:] != sweep.site[:-1]
    n_now[sweep.site[is_last]] = sweep.n[is_last]
    d_now[sweep.site[is_last]] = sweep.d[is_last]
    verdict = np.where(_down(n_now, d_now, quorum), "down", "up").astype(object)
    verdict[n_now == 0] = None
    out["current_status"] = pd.Series(verdict, dtype=object)
    out["locations"] = n_now
    out["locations_down"] = d_now
    frame = pd.DataFrame(out)
    frame.insert(0, "site_id", sweep.sites)
    result: pd.DataFrame = frame.loc[counts["instants_7d"] > 0].reset_index(drop=True)
    return result


# --------------------------------------------------------------------------------------------
# The sweep (the same one as uptimelab_quorum_sweep in SQL)


class _Sweep:
    """Per site and per instant where a count changes, in time order: the site's code, the
    instant (ns since the epoch), whether a ping was made then, and the running n and d."""

    def __init__(
        self,
        sites: pd.Index,
        site: npt.NDArray[np.int64],
        at: npt.NDArray[np.int64],
        pinged: npt.NDArray[np.bool_],
        n: npt.NDArray[np.int64],
        d: npt.NDArray[np.int64],
    ) -> None:
        self.sites, self.site, self.at, self.pinged, self.n, self.d = sites, site, at, pinged, n, d


def _sweep(
    pings: pd.DataFrame,
    until: pd.Timestamp | None,
    default_interval_ms: int,
    interval_ms: Mapping[Any, int | None] | None,
) -> _Sweep:
    """A location's ping at a, whose next ping of the site from there is at b, counts over
    [a, min(b, a + 2 * interval)): +1 (and +1 down) at a, -1 at the end. Pings after ``until``
    are ignored; every change of every site is kept, so each site's sums end at 0 and one
    running sum over all sites never mixes two sites."""
    require_columns(pings, "site_id", "checked_at", "status", "location")
    checked = checked_at(pings)
    seen = np.ones(len(pings), dtype=bool)
    if until is not None:
        seen = (checked <= until).to_numpy(dtype=bool, na_value=False)
    frame = pings.loc[seen]
    down = ~is_up(frame)
    site_codes, sites = factorize_sites(frame)
    t = checked.loc[seen].dt.tz_convert(None).to_numpy().astype("datetime64[ns]").view(np.int64)
    place = location_rank(frame["location"])
    own = interval_ms or {}
    reach = np.array(
        [2 * 1_000_000 * (_own_interval(own, s) or default_interval_ms) for s in sites],
        dtype=np.int64,
    )

    order = np.lexsort((t, place, site_codes))
    site, t, place, down = site_codes[order], t[order], place[order], down[order]
    same = (site[1:] == site[:-1]) & (place[1:] == place[:-1])
    following = np.full(len(t), _NEVER, dtype=np.int64)
    following[:-1] = np.where(same, t[1:], _NEVER)
    ends = np.minimum(following, t + reach[site])

    ev_site = np.concatenate([site, site])
    ev_at = np.concatenate([t, ends])
    ev_n = np.concatenate([np.ones(len(t), np.int64), -np.ones(len(t), np.int64)])
    ev_d = np.concatenate([down.astype(np.int64), -down.astype(np.int64)])
    ev_pinged = np.concatenate([np.ones(len(t), bool), np.zeros(len(t), bool)])
    order = np.lexsort((ev_at, ev_site))
    ev_site, ev_at = ev_site[order], ev_at[order]
    running_n, running_d = np.cumsum(ev_n[order]), np.cumsum(ev_d[order])
    # One row per (site, instant): its last change carries the running sums after them all.
    last = np.ones(len(ev_at), dtype=bool)
    last[:-1] = (ev_site[1:] != ev_site[:-1]) | (ev_at[1:] != ev_at[:-1])
    first = np.flatnonzero(np.concatenate([[True], last[:-1]])) if len(last) else last
    pinged = np.logical_or.reduceat(ev_pinged[order], first) if len(last) else last
    site, at, n, d = ev_site[last], ev_at[last], running_n[last], running_d[last]
    if until is not None:
        within = at <= until.value
        site, at, pinged, n, d = site[within], at[within], pinged[within], n[within], d[within]
    return _Sweep(sites, site, at, pinged, n, d)


def _own_interval(own: Mapping[Any, int | None], site: Any) -> int | None:
    value = own.get(site, own.get(str(site)))
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"interval_ms of site {site} is {value!r}, not a whole number")
    if not 1 <= value <= MAX_INTERVAL_MS:
        raise ValueError(f"interval_ms of site {site} is {value}, not 1 to {MAX_INTERVAL_MS}")
    return int(value)


def _down(
    n: npt.NDArray[np.int64], d: npt.NDArray[np.int64], quorum: int | None
) -> npt.NDArray[np.bool_]:
    """The verdict for n locations, d of them down: d >= min(K, n) (K None: n // 2 + 1)."""
    k = n // 2 + 1 if quorum is None else np.full(len(n), quorum, dtype=np.int64)
    result: npt.NDArray[np.bool_] = d >= np.minimum(k, n)
    return result


def _check(quorum: int | None, default_interval_ms: int) -> None:
    if quorum is not None and (
        isinstance(quorum, bool) or not isinstance(quorum, int) or not 1 <= quorum <= MAX_QUORUM
    ):
        raise ValueError(f"quorum {quorum!r} is not a whole number from 1 to {MAX_QUORUM}")
    if (
        isinstance(default_interval_ms, bool)
        or not isinstance(default_interval_ms, int)
        or not 1 <= default_interval_ms <= MAX_INTERVAL_MS
    ):
        raise ValueError(
            f"default_interval_ms {default_interval_ms!r} is not a whole number "
            f"from 1 to {MAX_INTERVAL_MS}"
        )
