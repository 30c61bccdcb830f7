"""The analysis tables that the notebooks and the report share, so that nothing is computed twice.

From pings (a frame of :func:`uptimelab.stats.load_pings`): :func:`site_summary` (uptime,
outages, MTTR, MTBF, response-time percentiles per site), :func:`latency_shifts` (response-time
regressions) and :func:`sla_table` (monthly SLA and error budget). From the database:
:func:`site_names`, :func:`fleet_table` (the ``site_stats`` table with names) and
:func:`load_cycles`, whose frame :func:`cycle_interval` and :func:`collector_gaps` read for the
collector's own health. :func:`load_perf_results` reads ``uptimelab perf --json`` output, and
:func:`html_table` shows any of these frames as a styled HTML table, in Jupyter and in the report
(:mod:`uptimelab.report`).
"""

from __future__ import annotations

import calendar
import datetime as dt
import html
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from ..config import Settings, parse_duration
from ..domain.redaction import redact
from ..storage.database import Database, default_db
from ..storage.site_stats import site_stats
from ..storage.sites import list_sites
from . import pings as stats

__all__ = [
    "PERF_JSON_ENV",
    "HtmlTable",
    "collector_gaps",
    "cycle_interval",
    "fleet_table",
    "html_table",
    "latency_shifts",
    "load_cycles",
    "load_perf_results",
    "perf_results_path",
    "site_names",
    "site_summary",
    "sla_table",
]

PERF_JSON_ENV: Final = "UPTIMELAB_PERF_JSON"
DEFAULT_TARGET: Final = 99.9

# -- tables shared with the notebooks -------------------------------------------------------


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
    rel = stats.reliability(pings)
    rel.index = rel.index.astype(str)
    rt = stats.response_time_quantiles(pings)
    rt.index = rt.index.astype(str)
    out = rel[["pings", "uptime_pct", "outages", "ongoing", "mttr", "mtbf"]].join(
        rt[["p50", "p95", "p99"]].rename(columns=lambda c: f"{c}_ms")
    )
    out.insert(0, "site", [(names or {}).get(s, s) for s in out.index])
    out.index.name = "site_id"
    return out.sort_values(["uptime_pct", "site"])


def latency_shifts(
    pings: pd.DataFrame,
    *,
    window: str | dt.timedelta = "24h",
    min_ratio: float = 1.5,
    names: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Each site's largest rise in response time, found by a rolling comparison.

    For every hour h, the mean of the site's hourly median response times (up pings) over the
    ``window`` after h is divided by the one over the ``window`` before h. The hour with the
    largest ratio is the candidate change point, and the site has ``regressed`` when that ratio
    is at least ``min_ratio``. Hourly medians ignore single slow pings; the mean over the window
    peaks sharply at the hour of a step change; a window of a whole day holds each daily pattern
    once on both sides, so a busy afternoon does not look like a regression. Both windows must
    have at least three quarters of their hours with data.

    One row per site with enough data, largest ratio first, indexed by ``site_id`` (str).
    Columns: ``site``, ``changed_at`` (UTC hour), ``before_ms``, ``after_ms``, ``ratio``,
    ``regressed``, ``window`` (Timedelta).
    """
    width = pd.Timedelta(_duration(window, "window"))
    hours = max(1, int(width / pd.Timedelta(hours=1)))
    up = (pings["status"] == "up").to_numpy(dtype=bool, na_value=False) & pings[
        "response_time_ms"
    ].notna().to_numpy(dtype=bool)
    frame = pd.DataFrame(
        {
            "site_id": pings.loc[up, "site_id"].astype(str).array,
            "hour": pd.DatetimeIndex(pings.loc[up, "checked_at"]).floor("1h"),
            "ms": pings.loc[up, "response_time_ms"].to_numpy(dtype=float),
        }
    )
    columns = ["site", "changed_at", "before_ms", "after_ms", "ratio", "regressed", "window"]
    if frame.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="site_id", dtype="str"))
    hourly = frame.groupby(["hour", "site_id"])["ms"].median().unstack("site_id")
    hourly = hourly.reindex(pd.date_range(hourly.index.min(), hourly.index.max(), freq="1h"))
    least = max(1, int(hours * 0.75))
    before = hourly.rolling(hours, min_periods=least).mean().shift(1)
    after = hourly.iloc[::-1].rolling(hours, min_periods=least).mean().iloc[::-1]
    ratio = after / before
    rows = []
    for site in ratio.columns:
        values = ratio[site].to_numpy(dtype=float)
        if np.isnan(values).all():
            continue
        at = int(np.nanargmax(values))
        rows.append(
            {
                "site_id": str(site),
                "site": (names or {}).get(str(site), str(site)),
                "changed_at": ratio.index[at],
                "before_ms": float(before[site].iloc[at]),
                "after_ms": float(after[site].iloc[at]),
                "ratio": float(values[at]),
                "regressed": bool(values[at] >= min_ratio),
                "window": width,
            }
        )
    if not rows:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="site_id", dtype="str"))
    return pd.DataFrame(rows).set_index("site_id").sort_values("ratio", ascending=False)


def sla_table(
    pings: pd.DataFrame, *, target: float = DEFAULT_TARGET, names: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Monthly SLA per site against ``target`` (percent uptime), with the error budget.

    Per calendar month (UTC) and site: ``uptime_pct`` = 100 x up / pings of the month so far;
    ``downtime_min`` = down pings x the site's ping interval (the median gap between its pings,
    in minutes); ``budget_min`` = (100 - target) % of the whole month; ``budget_used_pct`` =
    downtime / budget x 100 (above 100: the budget is spent); ``budget_left_min`` = budget -
    downtime (negative when overspent); ``met`` = the downtime fits in the budget, which for a
    month observed to its end is uptime >= target, and for the current month says that the
    target can still be met. Time the collector was not running counts as neither up nor down.
    Sorted by month, then most budget used first.
    Raises ValueError for a target outside (0, 100).
    """
    if not 0 < target < 100:
        raise ValueError(f"target must be a percentage between 0 and 100, got {target}")
    checked = stats.utc_series(pings["checked_at"])
    frame = pd.DataFrame(
        {
            "site_id": pings["site_id"].astype(str).array,
            "month": checked.dt.tz_localize(None).dt.strftime("%Y-%m").array,
            "up": (pings["status"] == "up").to_numpy(dtype=bool, na_value=False),
            "checked_at": checked.array,
        }
    )
    columns = [
        "month", "site_id", "site", "pings", "uptime_pct", "target_pct", "downtime_min",
        "budget_min", "budget_used_pct", "budget_left_min", "met",
    ]  # fmt: skip
    if frame.empty:
        return pd.DataFrame(columns=columns)
    gaps = frame.sort_values("checked_at").groupby("site_id")["checked_at"].diff()
    interval_min = (gaps.dt.total_seconds() / 60).groupby(frame["site_id"]).median().fillna(0.0)
    table = frame.groupby(["month", "site_id"]).agg(pings=("up", "size"), up=("up", "sum"))
    table = table.reset_index()
    table["site"] = [(names or {}).get(s, s) for s in table["site_id"]]
    table["uptime_pct"] = 100.0 * table["up"] / table["pings"]
    table["target_pct"] = float(target)
    table["downtime_min"] = (table["pings"] - table["up"]) * table["site_id"].map(interval_min)
    month_days = [calendar.monthrange(*map(int, m.split("-")))[1] for m in table["month"]]
    table["budget_min"] = (100.0 - target) / 100.0 * np.array(month_days) * 24 * 60
    table["budget_used_pct"] = 100.0 * table["downtime_min"] / table["budget_min"]
    table["budget_left_min"] = table["budget_min"] - table["downtime_min"]
    table["met"] = table["budget_left_min"] >= 0
    table = table.sort_values(["month", "budget_used_pct"], ascending=[True, False])
    return table[columns].reset_index(drop=True)


def load_cycles(
    db: Database | None = None,
    since: str | dt.timedelta | dt.datetime = "7d",
    *,
    include_dry_runs: bool = False,
) -> pd.DataFrame:
    """The ``monitoring_cycles`` rows started since ``since`` (a duration back from now, or a
    time), oldest first. ``started_at``/``finished_at`` are UTC; ``id`` is a string."""
    start = _start(since)
    with default_db(db).connect() as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        rows = conn.execute(
            "SELECT id::text AS id, started_at, finished_at, location, region_code, sites_checked,"
            " up, down, duration_ms, dry_run, error FROM monitoring_cycles"
            " WHERE started_at >= %s AND (%s OR NOT dry_run) ORDER BY started_at",
            (start.to_pydatetime(), include_dry_runs),
        ).fetchall()
    columns = ["id", "started_at", "finished_at", "location", "region_code", "sites_checked",
               "up", "down", "duration_ms", "dry_run", "error"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    for name in ("started_at", "finished_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True).dt.as_unit("us")
    for name in ("sites_checked", "up", "down"):
        frame[name] = frame[name].astype("int64")
    frame["duration_ms"] = frame["duration_ms"].astype("Int64")
    return frame


def cycle_interval(cycles: pd.DataFrame) -> pd.Timedelta:
    """The collector's interval as seen in ``cycles``: the most common gap between starts (of
    one location). Raises ValueError with fewer than two cycles."""
    starts = cycles.sort_values("started_at").groupby("location")["started_at"].diff().dropna()
    if starts.empty:
        raise ValueError("the interval needs at least two cycles of one location")
    return pd.Timedelta(starts.dt.round("1s").mode().iloc[0])


def collector_gaps(
    cycles: pd.DataFrame,
    *,
    interval: pd.Timedelta | None = None,
    now: dt.datetime | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Periods when the collector was not running (no data, as opposed to site downtime).

    A gap runs from a cycle's end to the next cycle's start, per location, when that idle time
    is longer than ``interval`` (default: :func:`cycle_interval`). On a fixed cadence the idle
    time is the interval minus the cycle, and an overrun (a cycle longer than the interval, whose
    next start is skipped) still leaves less than one interval, so neither counts. With ``now``,
    a last cycle that ended more than two intervals before ``now`` opens a gap that is still going
    on (``ended_at`` NaT). Columns: ``location``, ``started_at``, ``ended_at``, ``duration``,
    ``missed_cycles`` (about how many starts were missed).
    """
    columns = ["location", "started_at", "ended_at", "duration", "missed_cycles"]
    if len(cycles) < 2:
        return pd.DataFrame(columns=columns)
    every = interval if interval is not None else cycle_interval(cycles)
    rows = []
    for location, part in cycles.sort_values("started_at").groupby("location"):
        ended = part["finished_at"].fillna(part["started_at"])
        following = part["started_at"].shift(-1)
        idle = following - ended
        for began, until in zip(ended[idle > every], following[idle > every], strict=True):
            rows.append((location, began, until))
        if now is not None and stats.utc_timestamp(now) - ended.iloc[-1] > 2 * every:
            rows.append((location, ended.iloc[-1], pd.NaT))
    frame = pd.DataFrame(rows, columns=["location", "started_at", "ended_at"])
    for name in ("started_at", "ended_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True).dt.as_unit("us")
    until = frame["ended_at"] if now is None else frame["ended_at"].fillna(stats.utc_timestamp(now))
    frame["duration"] = until - frame["started_at"]
    missed = frame["duration"].dt.total_seconds() / every.total_seconds()
    frame["missed_cycles"] = missed.round().astype("Int64")
    return frame[columns].sort_values("started_at").reset_index(drop=True)


def perf_results_path() -> Path:
    """Where the notebooks and the report look for ``uptimelab perf --json`` output: the file
    named by ``UPTIMELAB_PERF_JSON``, else ``perf.json`` in the data directory."""
    given = os.environ.get(PERF_JSON_ENV)
    return Path(given) if given else Settings.load().data_dir / "perf.json"


def load_perf_results(path: str | Path | None = None) -> pd.DataFrame | None:
    """Performance results as a frame, or None when the file (default:
    :func:`perf_results_path`) does not exist.

    Columns: ``scenario``, ``measure``, ``unit``, ``median``, ``min``, ``max`` (NaN when not
    given). Two JSON shapes are read, either as a list or under a ``measures`` or ``results`` key:

    * measures: objects with a ``name`` (or ``measure``), a numeric ``median`` (or ``value``) and
      optionally ``min``, ``max``, ``unit`` and ``scenario``; an object of name -> number or
      name -> such a measure works too;
    * scenarios, as ``uptimelab perf --json`` writes them: objects with a ``name`` and numeric
      fields whose names carry their unit (``cycle_s``, ``cpu_ms_per_ping``, ``peak_rss_mb``,
      ``pings_per_s``, ``ratio``); each such field is a measure of that scenario, the other
      fields (``sites``, ``concurrency``...) describe it, and a ``cycle_times_s`` list gives
      ``cycle_s`` its min and max.

    Raises ValueError for a file in another shape.
    """
    file = Path(path) if path is not None else perf_results_path()
    if not file.is_file():
        return None
    data = json.loads(file.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        listed = data.get("measures", data.get("results"))
        if listed is None:
            listed = [
                {"name": k, **(v if isinstance(v, dict) else {"median": v})}
                for k, v in data.items()
            ]
        data = listed
    if not isinstance(data, list) or not all(isinstance(m, dict) for m in data):
        raise ValueError(f"{file}: expected a list of measures or scenarios (JSON objects)")
    rows = []
    for m in data:
        name = m.get("name", m.get("measure"))
        if name is None:
            raise ValueError(f"{file}: every measure or scenario needs a name: {m!r}")
        median = m.get("median", m.get("value"))
        if _number(median):
            rows.append(
                (str(m.get("scenario", "")), str(name), str(m.get("unit", "")), float(median),
                 _float(m.get("min")), _float(m.get("max")))
            )  # fmt: skip
            continue
        measured = [(k, _unit(k)) for k, v in m.items() if _number(v) and _unit(k) is not None]
        if not measured:
            raise ValueError(f"{file}: {name!r} has no numeric median and no measured fields")
        times = [t for t in m.get("cycle_times_s") or [] if _number(t)]
        for key, unit in measured:
            spread = key == "cycle_s" and times
            rows.append(
                (str(name), key, str(unit), float(m[key]),
                 float(min(times)) if spread else np.nan, float(max(times)) if spread else np.nan)
            )  # fmt: skip
    return pd.DataFrame(rows, columns=["scenario", "measure", "unit", "median", "min", "max"])


_UNITS: Final = (
    ("_ms_per_ping", "ms per ping"),
    ("_per_s", "per s"),
    ("_mb", "MB"),
    ("_ms", "ms"),
    ("_s", "s"),
    ("ratio", "ratio"),
)


def _unit(field: str) -> str | None:
    """The unit a field's name carries, or None for a field that describes a scenario."""
    return next((unit for suffix, unit in _UNITS if field.endswith(suffix)), None)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _float(value: Any) -> float:
    return float(value) if _number(value) else np.nan


# -- tables as HTML (the notebooks show them; the report embeds them) -----------------------


@dataclass(frozen=True)
class HtmlTable:
    """An HTML table with inline styles; Jupyter shows it as a table."""

    html: str

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.html


def html_table(
    frame: pd.DataFrame,
    *,
    percent: Iterable[str] = (),
    target: float = DEFAULT_TARGET,
    caption: str | None = None,
    max_rows: int | None = None,
) -> HtmlTable:
    """``frame`` as a styled HTML table (its index is not shown).

    ``percent`` columns have three decimals (as has any ``*_pct`` column) and a background: green
    at ``target`` or above, amber less than one point below it, red further below. A
    ``current_status`` or ``status`` of down, a ``met`` of False and a ``regressed`` or ``ongoing``
    of True are red. Times show as ``YYYY-MM-DD HH:MM`` UTC, durations as ``1h05m``, other floats
    with one decimal, missing values as a dash.
    """
    percent = set(percent)
    shown = frame if max_rows is None else frame.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = []
    for row in shown.itertuples(index=False):
        cells = []
        for column, value in zip(shown.columns, row, strict=True):
            style = _cell_style(str(column), value, percent, target)
            is_pct = str(column) in percent or str(column).endswith("_pct")
            text = html.escape(_cell_text(value, percent=is_pct))
            cells.append(f'<td style="{style}">{text}</td>' if style else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if max_rows is not None and len(frame) > max_rows:
        more = f'<p class="note">{len(frame) - max_rows} more row(s) not shown.</p>'
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return HtmlTable(
        f'<table class="ul-table" style="{_TABLE_STYLE}">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{more}"
    )


_TABLE_STYLE: Final = "border-collapse:collapse;font-size:0.85em;text-align:right"
_GOOD: Final = "background:#d9f2d9"
_WARN: Final = "background:#fff0c2"
_BAD: Final = "background:#f8d0d0;font-weight:bold"


def _cell_style(column: str, value: Any, percent: set[str], target: float) -> str:
    if _missing(value):
        return ""
    if column in percent:
        number = float(value)
        return _GOOD if number >= target else _WARN if number >= target - 1 else _BAD
    if column in ("current_status", "status") and value == "down":
        return _BAD
    if column in ("met", "regressed", "ongoing"):
        bad = (value is False) if column == "met" else (value is True)
        return _BAD if bad else ""
    return ""


def _cell_text(value: Any, *, percent: bool) -> str:
    if _missing(value):
        return "–"
    if isinstance(value, pd.Timestamp | dt.datetime):
        return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M")
    if isinstance(value, pd.Timedelta | dt.timedelta):
        return _span(pd.Timedelta(value))
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{value:.3f}" if percent else f"{value:,.1f}"
    return str(value)


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# -- helpers -------------------------------------------------------------------------------


def _duration(value: str | dt.timedelta, name: str) -> dt.timedelta:
    return value if isinstance(value, dt.timedelta) else parse_duration(value, name=name)


def _start(since: str | dt.timedelta | dt.datetime) -> pd.Timestamp:
    if isinstance(since, dt.datetime):
        return stats.utc_timestamp(since)
    return pd.Timestamp.now(tz="UTC") - pd.Timedelta(_duration(since, "--since"))


def _span(delta: pd.Timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h{minutes:02d}m"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
