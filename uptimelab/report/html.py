"""The report: the notebooks' content as one self-contained HTML file, or a period's data as files.

:func:`write_report` is what ``uptimelab report`` calls. With ``format="html"`` it writes one file
with every plot embedded as a base64 PNG and the styles inline, so it opens anywhere without a
network. With ``"csv"`` or ``"parquet"`` it writes ``pings``, ``outages`` and ``stats`` of the
period into a directory; :func:`read_export` reads them back with the same dtypes.

The tables it shows come from :mod:`uptimelab.analysis`, which the notebooks use too, so nothing
is computed twice.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd
from matplotlib.figure import Figure

from ..analytics import pings as stats
from ..analytics import plots
from ..analytics.tables import (
    DEFAULT_TARGET,
    HtmlTable,
    _duration,
    _span,
    _start,
    collector_gaps,
    cycle_interval,
    fleet_table,
    html_table,
    latency_shifts,
    load_cycles,
    site_names,
    site_summary,
    sla_table,
)
from ..errors import ConfigError
from ..storage.database import Database, default_db

__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_SCHEMA",
    "PeriodData",
    "export_tables",
    "load_period",
    "read_export",
    "render_html",
    "write_export",
    "write_report",
]

FORMATS: Final = ("html", "csv", "parquet")
EXPORT_FORMATS: Final = ("csv", "parquet")

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
    from .._version import __version__

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
