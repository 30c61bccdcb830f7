"""A period's data as files: ``pings``, ``outages`` and per-site ``stats`` as CSV or Parquet, in
the columns and dtypes of :data:`EXPORT_SCHEMA`, and read back with the same dtypes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import pandas as pd

from ..analytics.outages import outages as find_outages
from ..analytics.tables import site_summary
from ..errors import ConfigError

__all__ = ["EXPORT_FORMATS", "EXPORT_SCHEMA", "export_tables", "read_export", "write_export"]

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
    """Write each table to ``directory/<name>.<format>``; returns the paths. Raises ConfigError
    for a format not in :data:`EXPORT_FORMATS`."""
    check_export_format(format)
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
