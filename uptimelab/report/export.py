"""A period's data as files: ``pings``, ``outages`` and per-site ``stats`` as CSV or Parquet, in
the columns and dtypes of :data:`EXPORT_SCHEMA`, and read back with the same dtypes."""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, Final

import pandas as pd

from ..analytics.outages import outages as find_outages
from ..analytics.tables import site_summary
from ..errors import ConfigError
from ..text import csv_cell, uncsv_cell
from .files import check_out, output_errors, write_whole

__all__ = [
    "CSV_LINE_END",
    "EXPORT_FORMATS",
    "EXPORT_SCHEMA",
    "csv_safe",
    "export_tables",
    "read_export",
    "write_export",
]

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


def export_tables(
    pings: pd.DataFrame, names: Mapping[str, str] | None = None
) -> dict[str, pd.DataFrame]:
    """The period's ``pings`` (sorted by site, time, location), ``outages`` and per-site
    ``stats``, in the dtypes of ``EXPORT_SCHEMA``: plain strings, UTC times, durations in
    seconds, so that a CSV file holds everything."""
    names = names or {}
    ordered = pings.assign(_site=pings["site_id"].astype(str), _loc=pings["location"].astype(str))
    ordered = ordered.sort_values(["_site", "checked_at", "_loc"]).drop(columns=["_site", "_loc"])
    found = find_outages(pings)
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
    """Write each table to ``directory/<name>.<format>`` (created if needed), each file whole or
    not at all; returns the paths. A CSV file's text cells are :func:`csv_safe`. Raises
    ConfigError for a format not in :data:`EXPORT_FORMATS` or a directory through an existing
    file, OutputError when the system refuses to write."""
    check_export_format(format)
    check_out(directory, directory=True)
    written = []
    with output_errors(directory):
        directory.mkdir(parents=True, exist_ok=True)
        for name, frame in tables.items():
            path = directory / f"{name}.{format}"
            write_whole(path, functools.partial(_write_table, frame, format))
            written.append(path)
    return written


# RFC 4180's line end: the csv module then quotes a cell holding either a CR or a LF (with "\n"
# alone, a CR inside a cell is written bare, and a reader takes it for the end of the row).
CSV_LINE_END: Final = "\r\n"


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell as :func:`uptimelab.text.csv_cell` writes it, so that a
    spreadsheet opening the CSV runs no formula ('=HYPERLINK(...)' shows as text). Numeric,
    boolean and time columns are left as they are, negative numbers included. Write it with
    ``lineterminator=CSV_LINE_END``."""
    text = [c for c in frame.columns if _is_text(frame[c])]
    return frame.assign(**{str(c): frame[c].map(csv_cell) for c in text}) if text else frame


def _write_table(frame: pd.DataFrame, format: str, handle: BinaryIO) -> None:
    if format == "parquet":
        frame.to_parquet(handle, index=False)
        return
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
    csv_safe(frame).to_csv(
        text, index=False, date_format="%Y-%m-%dT%H:%M:%S.%f%z", lineterminator=CSV_LINE_END
    )
    text.flush()
    text.detach()  # leave ``handle`` open: write_whole syncs and closes it


def read_export(directory: str | Path, format: str = "csv") -> dict[str, pd.DataFrame]:
    """Read back what :func:`write_export` wrote, with the dtypes of ``EXPORT_SCHEMA``. Raises
    ConfigError for a format not in :data:`EXPORT_FORMATS`."""
    check_export_format(format)
    out = {}
    for name, schema in EXPORT_SCHEMA.items():
        path = Path(directory) / f"{name}.{format}"
        if format == "parquet":
            frame = pd.read_parquet(path)
        else:
            plain = {c: t for c, t in schema.items() if not t.startswith("datetime")}
            frame = pd.read_csv(path, dtype=plain, keep_default_na=False, na_values=[""])
            text = [c for c, t in schema.items() if t == "str"]
            frame[text] = frame[text].map(uncsv_cell)
        out[name] = _conform(frame, name)
    return out


def check_export_format(format: str) -> None:
    """Raise ConfigError unless ``format`` is one of :data:`EXPORT_FORMATS`."""
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"format {format!r} is not one of {', '.join(EXPORT_FORMATS)}")


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


def _is_text(column: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)
