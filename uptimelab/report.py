"""The report: the notebooks' content as one self-contained HTML file, or a period's data as files.

:func:`write_report` is what ``uptimelab report`` calls. With ``format="html"`` it writes one file
with every plot embedded as a base64 PNG and the styles inline, so it opens anywhere without a
network. With ``"csv"`` or ``"parquet"`` it writes ``pings``, ``outages`` and ``stats`` of the
period into a directory; :func:`read_export` reads them back with the same dtypes.

The tables shared by the report and the notebooks live here too, so nothing is computed twice:
:func:`fleet_table`, :func:`site_summary`, :func:`latency_shifts`, :func:`sla_table`,
:func:`load_cycles`, :func:`collector_gaps` and :func:`load_perf_results`.
"""

from __future__ import annotations

import base64
import calendar
import datetime as dt
import html
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from . import plots, stats
from .config import Settings, parse_duration
from .db import Database, default_db
from .errors import ConfigError
from .site_stats import site_stats
from .sites import list_sites, redact

__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_SCHEMA",
    "PERF_JSON_ENV",
    "HtmlTable",
    "PeriodData",
    "collector_gaps",
    "cycle_interval",
    "export_tables",
    "fleet_table",
    "html_table",
    "latency_shifts",
    "load_cycles",
    "load_perf_results",
    "load_period",
    "perf_results_path",
    "read_export",
    "render_html",
    "site_names",
    "site_summary",
    "sla_table",
    "write_export",
    "write_report",
]

FORMATS: Final = ("html", "csv", "parquet")
EXPORT_FORMATS: Final = ("csv", "parquet")
PERF_JSON_ENV: Final = "UPTIMELAB_PERF_JSON"
DEFAULT_TARGET: Final = 99.9

# The exported tables' columns and dtypes; the export and read_export both conform to them.
EXPORT_SCHEMA: Final[dict[str, dict[str, str]]] = {
    "pings": {
        "site_id": "str",
        "checked_at": "datetime64[us, UTC]",
        "status": "str",
        "status_code": "Int32",
        "response_time_ms": "Int32",
        "error_category": "str",
        "error_message": "str",
        "location": "str",
        "region_code": "str",
    },
    "outages": {
        "site_id": "str",
        "site": "str",
        "started_at": "datetime64[us, UTC]",
        "ended_at": "datetime64[us, UTC]",
        "duration_s": "float64",
        "pings_down": "int64",
        "first_error_category": "str",
    },
    "stats": {
        "site_id": "str",
        "site": "str",
        "pings": "int64",
        "uptime_pct": "float64",
        "outages": "int64",
        "ongoing": "bool",
        "mttr_s": "float64",
        "mtbf_s": "float64",
        "p50_ms": "float64",
        "p95_ms": "float64",
        "p99_ms": "float64",
    },
}

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
    checked = _utc(pings["checked_at"])
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
        if now is not None and _utc_ts(now) - ended.iloc[-1] > 2 * every:
            rows.append((location, ended.iloc[-1], pd.NaT))
    frame = pd.DataFrame(rows, columns=["location", "started_at", "ended_at"])
    for name in ("started_at", "ended_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True).dt.as_unit("us")
    until = frame["ended_at"] if now is None else frame["ended_at"].fillna(_utc_ts(now))
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


# -- the report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodData:
    """Everything one report is made of, loaded once."""

    start: pd.Timestamp
    end: pd.Timestamp
    names: dict[str, str]
    pings: pd.DataFrame
    cycles: pd.DataFrame
    fleet: pd.DataFrame


def load_period(db: Database | None = None, since: str | dt.timedelta = "30d") -> PeriodData:
    """The pings, cycles, site names and fleet table of the period from ``since`` ago to now."""
    database = default_db(db)
    start = _start(since)
    end = pd.Timestamp.now(tz="UTC")
    return PeriodData(
        start=start,
        end=end,
        names=site_names(database),
        pings=stats.load_pings(database, since=start.to_pydatetime(), until=end.to_pydatetime()),
        cycles=load_cycles(database, since=start.to_pydatetime()),
        fleet=fleet_table(database),
    )


def write_report(
    out: str | Path,
    *,
    since: str | dt.timedelta = "30d",
    format: str = "html",
    target: float = DEFAULT_TARGET,
    db: Database | None = None,
) -> list[Path]:
    """Write the report of the last ``since`` (a duration such as "30d") to ``out``.

    ``format`` "html": one self-contained file at ``out``. "csv" or "parquet": the directory
    ``out`` (created if needed) receives ``pings``, ``outages`` and ``stats`` files. ``target``
    is the SLA's uptime percentage. Returns the paths written. Raises ConfigError for a bad
    format, duration, target or output path, and StoreError when the database fails.
    """
    if format not in FORMATS:
        raise ConfigError(f"--format={format!r}: use one of {', '.join(FORMATS)}")
    if not 0 < target < 100:
        raise ConfigError(f"--target={target}: use a percentage between 0 and 100, like 99.9")
    path = Path(out)
    if format == "html" and path.is_dir():
        raise ConfigError(f"--out={str(out)!r}: is a directory; the HTML report is one file")
    if format != "html" and path.exists() and not path.is_dir():
        raise ConfigError(f"--out={str(out)!r}: exports go to a directory, and this is a file")
    data = load_period(db, _duration(since, "--since"))
    if format == "html":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_html(data, target=target), encoding="utf-8")
        return [path]
    return write_export(export_tables(data.pings, data.names), path, format)


def render_html(data: PeriodData, *, target: float = DEFAULT_TARGET) -> str:
    """The report of ``data`` as one HTML document (plots as base64 PNGs, styles inline)."""
    from . import __version__

    sections = [section(data, target) for section in _SECTIONS]
    period = f"{data.start:%Y-%m-%d %H:%M} to {data.end:%Y-%m-%d %H:%M} UTC"
    toc = "".join(f'<li><a href="#{s.id}">{html.escape(s.title)}</a></li>' for s in sections)
    body = "".join(s.html() for s in sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>uptimelab report, {html.escape(period)}</title><style>{_CSS}</style></head>"
        f"<body><h1>uptimelab report</h1><p>{html.escape(period)}: "
        f"{len(data.pings):,} pings of {data.pings['site_id'].nunique()} sites, "
        f"{len(data.cycles):,} cycles. Generated by uptimelab {__version__}.</p>"
        f"<nav><ol>{toc}</ol></nav>{body}</body></html>"
    )


@dataclass
class Section:
    """One section of the report: a title, short texts, tables and figures, in order."""

    id: str
    title: str
    parts: list[str]

    def text(self, words: str) -> None:
        self.parts.append(f"<p>{html.escape(words)}</p>")

    def table(self, table: HtmlTable) -> None:
        self.parts.append(f'<div class="scroll">{table.html}</div>')

    def figure(self, fig: Figure, caption: str) -> None:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
        self.parts.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def html(self) -> str:
        return (
            f'<section id="{self.id}"><h2>{html.escape(self.title)}</h2>'
            f"{''.join(self.parts)}</section>"
        )


def _fleet_section(data: PeriodData, target: float) -> Section:
    s = Section("fleet", "Fleet summary", [])
    fleet = data.fleet
    down = fleet.loc[fleet["current_status"] == "down", "site"].tolist()
    s.text(
        f"{len(fleet)} sites with pings; {len(fleet) - len(down)} up and {len(down)} down at "
        f"their latest ping" + (f" ({', '.join(map(str, down))})." if down else ".")
    )
    s.table(html_table(fleet.drop(columns=["site_id"]), percent=_UPTIMES, target=target))
    if not fleet.empty:
        s.figure(
            plots.worst_sites(fleet, column="uptime_7d", target=target),
            "The sites with the lowest uptime over the last 7 days, against the target.",
        )
    return s


def _uptime_section(data: PeriodData, target: float) -> Section:
    s = Section("uptime", "Uptime and latency per site", [])
    if data.pings.empty:
        s.text("No pings in the period.")
        return s
    summary = site_summary(data.pings, data.names)
    s.text("Over the whole period: uptime, outages, MTTR, MTBF and response-time percentiles.")
    s.table(html_table(summary, percent=["uptime_pct"], target=target))
    s.figure(
        plots.uptime_heatmap(data.pings, names=data.names, freq=_heat_freq(data)),
        "Uptime per site and period; grey where a site has no pings (the collector was not "
        "running), which is not downtime.",
    )
    s.figure(
        plots.response_time_distributions(data.pings, names=data.names),
        "Each site's response times: box from the first to the third quartile, whiskers from "
        "the 5th to the 95th percentile.",
    )
    return s


def _latency_section(data: PeriodData, target: float) -> Section:
    s = Section("latency", "Response times", [])
    if data.pings.empty:
        s.text("No pings in the period.")
        return s
    s.figure(
        plots.response_time_percentiles(data.pings, freq=_heat_freq(data)),
        "p50, p95 and p99 of all up pings per period (log scale).",
    )
    shifts = latency_shifts(data.pings, names=data.names)
    regressed = shifts.loc[shifts["regressed"].astype(bool)]
    s.text(
        "Regressions: for every hour, a site's mean hourly-median response time over the 24 "
        "hours after it is divided by that over the 24 hours before; a site whose largest ratio "
        f"reaches 1.5 has regressed, at the hour of that ratio. {len(regressed)} site(s) did."
    )
    s.table(html_table(shifts.head(10).drop(columns=["window"])))
    for site_id, row in regressed.head(3).iterrows():
        row.name = site_id
        s.figure(
            plots.latency_shift(data.pings, row, names=data.names),
            f"{row['site']}: hourly median response time with the change point.",
        )
    return s


def _outages_section(data: PeriodData, target: float) -> Section:
    s = Section("outages", "Outages", [])
    found = stats.outages(data.pings)
    if found.empty:
        s.text("No outages in the period.")
        return s
    found.insert(1, "site", [data.names.get(str(x), str(x)) for x in found["site_id"]])
    ongoing = int(found["ended_at"].isna().sum())
    s.text(
        f"{len(found)} outage(s) (runs of consecutive down pings), {ongoing} still going on. "
        "The longest:"
    )
    longest = found.assign(duration=found["duration"].fillna(data.end - found["started_at"]))
    longest = longest.sort_values("duration", ascending=False).drop(columns=["site_id"])
    s.table(html_table(longest, max_rows=15))
    s.figure(
        plots.outage_timeline(
            found, names=data.names, start=_first(data), end=data.end, min_pings=2
        ),  # fmt: skip
        "Outages of two or more down pings per site, coloured by the first error; short ones "
        "are drawn wider than they lasted so that they show.",
    )
    s.figure(
        plots.error_categories(data.pings, freq="6h" if _days(data) <= 7 else "1D"),
        "Down pings per error category over time.",
    )
    return s


def _sla_section(data: PeriodData, target: float) -> Section:
    s = Section("sla", f"SLA: {target} % uptime per month", [])
    if data.pings.empty:
        s.text("No pings in the period.")
        return s
    sla = sla_table(data.pings, target=target, names=data.names)
    s.text(
        f"Each month's error budget is {100 - target:.3g} % of the month. Downtime is the down "
        "pings times the site's ping interval; time the collector was not running is neither "
        f"up nor down. {int((~sla['met']).sum())} site-month(s) spent their whole budget."
    )
    s.table(html_table(sla.drop(columns=["site_id"])))
    s.figure(
        plots.error_budget(sla),
        "Error budget used in the latest month; red beyond the whole budget.",
    )
    return s


def _collector_section(data: PeriodData, target: float) -> Section:
    s = Section("collector", "Collector health", [])
    cycles = data.cycles
    if len(cycles) < 2:
        s.text("Fewer than two stored cycles in the period.")
        return s
    every = cycle_interval(cycles)
    gaps = collector_gaps(cycles, interval=every, now=data.end)
    overruns = int((cycles["duration_ms"].fillna(0) > every / pd.Timedelta(milliseconds=1)).sum())
    s.text(
        f"{len(cycles):,} cycles every {_span(every)}; {overruns} overran the interval; "
        f"{len(gaps)} gap(s) where the collector was not running."
    )
    s.figure(
        plots.cycle_durations(cycles, interval=every),
        "Each cycle's duration against the interval; an overrun skips the next start.",
    )
    s.figure(
        plots.collector_timeline(cycles, gaps, interval=every),
        "Sites down per cycle, with the collector's own gaps shaded apart.",
    )
    if not gaps.empty:
        s.table(html_table(gaps))
    return s


_SECTIONS: Final[tuple[Callable[[PeriodData, float], Section], ...]] = (
    _fleet_section,
    _uptime_section,
    _latency_section,
    _outages_section,
    _sla_section,
    _collector_section,
)
_UPTIMES: Final = ("uptime_1h", "uptime_24h", "uptime_7d")
_CSS: Final = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
    "color:#222}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}"
    "table.ul-table td,table.ul-table th{border:1px solid #ddd;padding:2px 6px}"
    "table.ul-table th{background:#f4f4f4}.scroll{overflow-x:auto}"
    "figure{margin:1em 0}img{max-width:100%}figcaption,.note{color:#666;font-size:.85em}"
)


def _first(data: PeriodData) -> pd.Timestamp:
    """The first ping's time: the period's plots start there, not at an empty ``since``."""
    return data.start if data.pings.empty else pd.Timestamp(data.pings["checked_at"].min())


def _days(data: PeriodData) -> float:
    return float((data.end - _first(data)) / pd.Timedelta(days=1))


def _heat_freq(data: PeriodData) -> str:
    return "1h" if _days(data) <= 14 else "6h"


# -- exports -------------------------------------------------------------------------------


def export_tables(
    pings: pd.DataFrame, names: Mapping[str, str] | None = None
) -> dict[str, pd.DataFrame]:
    """The period's ``pings`` (sorted by site, time, location), ``outages`` and per-site
    ``stats``, in the dtypes of ``EXPORT_SCHEMA``: plain strings, UTC times, durations in
    seconds, so that a CSV file holds everything."""
    names = names or {}
    ordered = pings.assign(_site=pings["site_id"].astype(str), _loc=pings["location"].astype(str))
    ordered = ordered.sort_values(["_site", "checked_at", "_loc"]).drop(columns=["_site", "_loc"])
    found = stats.outages(pings)
    outages = pd.DataFrame(
        {
            "site_id": found["site_id"].astype(str).array,
            "site": [names.get(str(s), str(s)) for s in found["site_id"]],
            "started_at": found["started_at"].array,
            "ended_at": found["ended_at"].array,
            "duration_s": found["duration"].dt.total_seconds().array,
            "pings_down": found["pings_down"].array,
            "first_error_category": found["first_error_category"].array,
        }
    )
    summary = site_summary(pings, names).reset_index()
    summary["mttr_s"] = summary["mttr"].dt.total_seconds()
    summary["mtbf_s"] = summary["mtbf"].dt.total_seconds()
    return {
        "pings": _conform(ordered.reset_index(drop=True), "pings"),
        "outages": _conform(outages, "outages"),
        "stats": _conform(summary.sort_values("site_id").reset_index(drop=True), "stats"),
    }


def write_export(tables: Mapping[str, pd.DataFrame], directory: Path, format: str) -> list[Path]:
    """Write each table to ``directory/<name>.<format>``; returns the paths."""
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"--format={format!r}: export to one of {', '.join(EXPORT_FORMATS)}")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in tables.items():
        path = directory / f"{name}.{format}"
        if format == "csv":
            frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S.%f%z")
        else:
            frame.to_parquet(path, index=False)
        written.append(path)
    return written


def read_export(directory: str | Path, format: str = "csv") -> dict[str, pd.DataFrame]:
    """Read back what :func:`write_export` wrote, with the dtypes of ``EXPORT_SCHEMA``."""
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}")
    out = {}
    for name, schema in EXPORT_SCHEMA.items():
        path = Path(directory) / f"{name}.{format}"
        if format == "parquet":
            frame = pd.read_parquet(path)
        else:
            plain = {c: t for c, t in schema.items() if not t.startswith("datetime")}
            frame = pd.read_csv(path, dtype=plain, keep_default_na=False, na_values=[""])
        out[name] = _conform(frame, name)
    return out


def _conform(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    columns: dict[str, Any] = {}
    for column, dtype in EXPORT_SCHEMA[name].items():
        values = frame[column]
        if dtype.startswith("datetime"):
            columns[column] = pd.to_datetime(values, utc=True, format="ISO8601").dt.as_unit("us")
        elif dtype == "str":
            columns[column] = values.astype("object").where(values.notna(), None).astype("str")
        else:
            columns[column] = values.astype(pd.api.types.pandas_dtype(dtype))
    return pd.DataFrame(columns)


# -- helpers -------------------------------------------------------------------------------


def _duration(value: str | dt.timedelta, name: str) -> dt.timedelta:
    return value if isinstance(value, dt.timedelta) else parse_duration(value, name=name)


def _start(since: str | dt.timedelta | dt.datetime) -> pd.Timestamp:
    if isinstance(since, dt.datetime):
        return _utc_ts(since)
    return pd.Timestamp.now(tz="UTC") - pd.Timedelta(_duration(since, "--since"))


def _utc_ts(value: dt.datetime | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _utc(column: pd.Series) -> pd.Series:
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        converted: pd.Series = column.dt.tz_convert("UTC")
    else:
        converted = column.dt.tz_localize("UTC")
    return converted


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
