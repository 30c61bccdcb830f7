"""The per-site tables that the notebooks and the report share, so that nothing is computed twice.

From pings (a frame of :func:`uptimelab.stats.load_pings`): :func:`site_summary` (uptime,
outages, MTTR, MTBF, response-time percentiles per site) and :func:`sla_table` (monthly SLA and
error budget). From the database: :func:`site_names` and :func:`fleet_table` (the ``site_stats``
table with names).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Mapping
from typing import Final

import numpy as np
import pandas as pd

from ..domain.redaction import redact
from ..errors import ConfigError
from ..storage.database import Database
from ..storage.observed import first_pings
from ..storage.site_stats import site_stats
from ..storage.sites import list_sites
from .frames import utc_series, utc_timestamp
from .latency import response_time_quantiles
from .long_windows import load_window_stats
from .outages import reliability
from .windows import DEFAULT_INTERVAL_MS, DEFAULT_TIMEOUT_MS, POLICIES, ping_values

DEFAULT_TARGET: Final = 99.9
"""The SLA's uptime target (percent) unless one is given."""


def _check_target(target: float) -> None:
    """Raises ConfigError (a ValueError) naming ``target`` unless it is in (0, 100)."""
    if not 0 < target < 100:
        raise ConfigError(f"target={target:g}: must be a percentage between 0 and 100 (exclusive)")


def site_names(db: Database | None = None) -> dict[str, str]:
    """Site id (as a string) -> the site's name, or its URL (credentials redacted)."""
    return {str(s.id): s.name or redact(s.url) for s in list_sites(db=db)}


def fleet_table(db: Database | None = None) -> pd.DataFrame:
    """The ``site_stats`` table with each site's name, worst 24 h uptime first.

    Columns: ``site_id``, ``site``, ``current_status``, ``uptime_1h/24h/7d`` (percent),
    ``avg_response_time_1h/24h/7d`` (ms), ``pings_1h/24h/7d``, ``last_checked`` (UTC).
    """
    names = site_names(db)
    rows = [r.model_dump() for r in site_stats(sort="uptime_24h", db=db)]
    windows = ("1h", "24h", "7d")
    columns = [
        "site_id",
        "site",
        "current_status",
        *(f"uptime_{w}" for w in windows),
        *(f"avg_response_time_{w}" for w in windows),
        *(f"pings_{w}" for w in windows),
        "last_checked",
    ]
    frame = pd.DataFrame(rows, columns=[c for c in columns if c != "site"])
    frame["site_id"] = frame["site_id"].astype(str)
    frame.insert(1, "site", frame["site_id"].map(names))
    frame["last_checked"] = pd.to_datetime(frame["last_checked"], utc=True)
    for w in windows:
        frame[f"uptime_{w}"] = frame[f"uptime_{w}"].astype(float)
    return frame[columns]


def site_summary(pings: pd.DataFrame, names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per site over the pings given: uptime, outages, MTTR, MTBF and response-time percentiles.

    One row per site, sorted by uptime (worst first), indexed by ``site_id`` (str). Columns:
    ``site``, ``pings``, ``uptime_pct``, ``outages``, ``ongoing``, ``mttr``, ``mtbf``
    (Timedelta; see ``stats.reliability``), ``p50_ms``, ``p95_ms``, ``p99_ms``.
    """
    rel = reliability(pings)
    rel.index = rel.index.astype(str)
    rt = response_time_quantiles(pings)
    rt.index = rt.index.astype(str)
    out = rel[["pings", "uptime_pct", "outages", "ongoing", "mttr", "mtbf"]].join(
        rt[["p50", "p95", "p99"]].rename(columns=lambda c: f"{c}_ms")
    )
    out.insert(0, "site", [(names or {}).get(s, s) for s in out.index])
    out.index.name = "site_id"
    return out.sort_values(["uptime_pct", "site"])


def sla_table(
    pings: pd.DataFrame,
    *,
    target: float = DEFAULT_TARGET,
    names: Mapping[str, str] | None = None,
    policy: str = "samples",
    sites: pd.DataFrame | None = None,
    default_interval_ms: int = DEFAULT_INTERVAL_MS,
    default_timeout_ms: int = DEFAULT_TIMEOUT_MS,
    maintenance: pd.DataFrame | None = None,
    exclude_maintenance: bool = False,
    now: dt.datetime | None = None,
) -> pd.DataFrame:
    """Monthly SLA per site against ``target`` (percent uptime), with the error budget.

    Per calendar month (UTC) and site: ``uptime_pct`` = 100 x up / pings of the month so far
    (time the collector was not running counts as neither up nor down). The month is observed
    from the site's first ping in it (``observed_from``) to its end, or to ``now`` (default: the
    clock) for the month under way (``through``): ``observed_min``. ``downtime_min`` = (100 -
    uptime) % of ``observed_min``: the downtime observed so far (gaps in it at the observed
    rate, as in the uptime), never the future's. The budget is what the SLA promises, over the
    whole month: ``budget_min`` = (100 - target) % of it; ``budget_used_pct`` = downtime /
    budget x 100, ``budget_left_min`` = budget - downtime, ``met`` = budget_left_min >= 0 (so
    far, for the month under way). A month observed whole: ``met`` is uptime >= target.
    Under another ``policy`` (``confirmed``, ``time``; with ``sites``, ``maintenance`` and
    ``exclude_maintenance`` as :func:`uptimelab.stats.window_stats` takes them), uptime is that
    policy's.
    Sorted by month, then most budget used first. :func:`month_table` gives the same columns
    from the database, rollups included, for one month of any age.
    Raises ConfigError (a ValueError) for a target outside (0, 100), ValueError for an unknown
    policy.
    """
    _check_target(target)
    if policy not in POLICIES:
        raise ValueError(f"policy {policy!r} is not one of {', '.join(POLICIES)}")
    checked = utc_series(pings["checked_at"])
    frame = pd.DataFrame(
        {
            "site_id": pings["site_id"].astype(str).array,
            "month": checked.dt.tz_localize(None).dt.strftime("%Y-%m").array,
            "up": (pings["status"] == "up").to_numpy(dtype=bool, na_value=False),
            "checked_at": checked.array,
        }
    )
    plain = policy == "samples" and not exclude_maintenance
    if not plain and not frame.empty:
        values = ping_values(
            pings,
            sites=sites,
            default_interval_ms=default_interval_ms,
            default_timeout_ms=default_timeout_ms,
            maintenance=maintenance,
        )
        frame["confirmed"] = values["confirmed"].to_numpy()
        frame["span_us"] = values["span_us"].to_numpy()
        frame["up_us"] = np.where(frame["up"], frame["span_us"], 0)
        kept = ~(values["in_maintenance"].to_numpy() & exclude_maintenance)
        frame = frame.loc[kept]
    columns = [
        "month", "site_id", "site", "pings", "uptime_pct", "target_pct", "downtime_min",
        "budget_min", "budget_used_pct", "budget_left_min", "met", "observed_from", "through",
        "observed_min",
    ]  # fmt: skip
    if frame.empty:
        return pd.DataFrame(columns=columns)
    sums = {"pings": ("up", "size"), "up": ("up", "sum"), "first": ("checked_at", "min")}
    if not plain:
        sums |= {
            "confirmed": ("confirmed", "sum"),
            "up_us": ("up_us", "sum"),
            "span_us": ("span_us", "sum"),
        }
    table = frame.groupby(["month", "site_id"]).agg(**sums).reset_index()
    table["site"] = [(names or {}).get(s, s) for s in table["site_id"]]
    table["target_pct"] = float(target)
    if policy == "samples":
        table["uptime_pct"] = 100.0 * table["up"] / table["pings"]
    elif policy == "confirmed":
        table["uptime_pct"] = 100.0 * (table["pings"] - table["confirmed"]) / table["pings"]
    else:
        table["uptime_pct"] = 100.0 * table["up_us"] / table["span_us"]
    starts = pd.to_datetime(table["month"] + "-01", utc=True)
    days = [calendar.monthrange(t.year, t.month)[1] for t in starts]
    ends = starts + pd.to_timedelta(days, unit="D")
    clock = utc_timestamp(now or dt.datetime.now(dt.UTC))
    cut = ends.where(ends <= clock, clock)
    table["observed_from"] = table["first"]
    # Pings later than ``now`` (a synthetic month ahead of the clock): observed to its end.
    table["through"] = cut.where(cut > table["first"], ends)
    _budget(table, np.array(days) * 24 * 60.0, target)
    table = table.sort_values(["month", "budget_used_pct"], ascending=[True, False])
    return table[columns].reset_index(drop=True)


def _budget(table: pd.DataFrame, month_min: float | np.ndarray, target: float) -> None:
    """Add ``observed_min``, ``downtime_min``, ``budget_min``, ``budget_used_pct``,
    ``budget_left_min`` and ``met`` to ``table`` (with ``uptime_pct``, ``observed_from`` and
    ``through``), over months of ``month_min`` minutes: the downtime is the uptime's share of
    the span observed, the budget the target's share of the whole month, and ``met`` says the
    budget is not spent."""
    span = pd.to_datetime(table["through"], utc=True) - pd.to_datetime(
        table["observed_from"], utc=True
    )
    table["observed_min"] = span.dt.total_seconds().clip(lower=0.0).to_numpy() / 60.0
    table["downtime_min"] = (100.0 - table["uptime_pct"]) / 100.0 * table["observed_min"]
    table["budget_min"] = (100.0 - target) / 100.0 * month_min
    table["budget_used_pct"] = 100.0 * table["downtime_min"] / table["budget_min"]
    table["budget_left_min"] = table["budget_min"] - table["downtime_min"]
    table["met"] = table["budget_left_min"] >= 0


def with_target(table: pd.DataFrame, target: float) -> pd.DataFrame:
    """A table of :func:`sla_table` or :func:`month_table` with its budget columns and ``met``
    computed again for ``target``. Raises ConfigError for a target outside (0, 100)."""
    _check_target(target)
    out = table.copy()
    out["target_pct"] = float(target)
    days = [calendar.monthrange(*map(int, str(m).split("-")))[1] for m in out["month"]]
    _budget(out, np.array(days) * 24 * 60.0, target)
    return out.sort_values(["month", "budget_used_pct"], ascending=[True, False])


MONTH_COLUMNS = (
    "month", "site_id", "site", "pings", "uptime_pct", "target_pct", "downtime_min",
    "budget_min", "budget_used_pct", "budget_left_min", "met", "observed_from", "through",
    "observed_min", "avg_response_time", "coverage", "from_rollups", "counted_from",
)  # fmt: skip


def month_bounds(month: str, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a calendar month "YYYY-MM" in UTC, end cut at ``now`` (default: the
    clock) for the month under way. Raises ConfigError for text that is no month or a month
    that has not begun."""
    found = re.fullmatch(r"(\d{4})-(\d{2})", month.strip())
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise ConfigError(f"month {month!r} is not a month: use YYYY-MM, such as 2026-10")
    year, number = int(found.group(1)), int(found.group(2))
    start = dt.datetime(year, number, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=dt.UTC)
    clock = now or dt.datetime.now(dt.UTC)
    if start > clock:
        raise ConfigError(f"month {month!r} has not begun")
    return start, min(end, clock)


def month_table(
    db: Database,
    month: str,
    *,
    target: float = DEFAULT_TARGET,
    policy: str | None = None,
    exclude_maintenance: bool | None = None,
    names: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
) -> pd.DataFrame:
    """The SLA of one calendar month (UTC, "YYYY-MM") per site from the database: the columns
    of :func:`sla_table` (the downtime observed from the site's first ping in the month through
    its end or ``now``, against the whole month's budget), with
    ``avg_response_time``, ``coverage``, ``from_rollups`` and ``counted_from`` of
    ``ul.stats.load_window_stats`` (rollups kept for ever, so any month of the history;
    exact while the month's raw pings exist). ``policy`` and ``exclude_maintenance`` None: the
    recorded settings. No pings in the month: an empty frame of these columns. Raises ConfigError
    for a bad month, policy or a target outside (0, 100), or a month begun under an hour ago.
    """
    _check_target(target)
    start, end = month_bounds(month, now)
    if end - start < dt.timedelta(hours=1):  # a window is at least an hour (whole-hour rollups)
        raise ConfigError(
            f"month {month!r} began less than an hour ago: ask again from "
            f"{start + dt.timedelta(hours=1):%Y-%m-%d %H:%M} UTC"
        )
    last = end - dt.timedelta(microseconds=1)
    window = load_window_stats(
        db,
        last - start + dt.timedelta(microseconds=1),
        at=last,
        policy=policy,
        exclude_maintenance=exclude_maintenance,
    )
    if window.empty:  # no pings that month: no rows, not arithmetic on empty text columns
        return pd.DataFrame(columns=list(MONTH_COLUMNS))
    labels = names if names is not None else site_names(db)
    table = window.rename(columns={"uptime": "uptime_pct"})
    table["uptime_pct"] = table["uptime_pct"].astype(float)
    table["coverage"] = table["coverage"].astype(float)
    table.insert(0, "month", month.strip())
    table["site"] = [labels.get(s, s) for s in table["site_id"]]
    table["target_pct"] = float(target)
    # The window is (start - 1 µs, end - 1 µs]: it counts from the month's first instant.
    counted = table["counted_from"]
    table["counted_from"] = counted.where(counted >= pd.Timestamp(start), pd.Timestamp(start))
    first = first_pings(start, end, db=db)
    table["observed_from"] = pd.to_datetime(
        [first.get(s, start) for s in table["site_id"]], utc=True
    )
    table["through"] = pd.Timestamp(end)
    _budget(table, calendar.monthrange(start.year, start.month)[1] * 24 * 60.0, target)
    table = table.sort_values(["budget_used_pct", "site"], ascending=[False, True])
    return table[list(MONTH_COLUMNS)].reset_index(drop=True)
