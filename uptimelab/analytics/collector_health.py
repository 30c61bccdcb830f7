"""The collector's own health, apart from the sites': its cycles and rounds, their interval, how
late the rounds were, the gaps when it was not running, and the performance results of
``uptimelab perf --json``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from ..config import Settings
from ..storage.database import Database, default_db
from .frames import period_start, utc_timestamp

PERF_JSON_ENV: Final = "UPTIMELAB_PERF_JSON"


def load_cycles(
    db: Database | None = None,
    since: str | dt.timedelta | dt.datetime = "7d",
    *,
    include_dry_runs: bool = False,
) -> pd.DataFrame:
    """The ``monitoring_cycles`` rows started since ``since`` (a duration back from now, or a
    time), oldest first. ``started_at``/``finished_at`` are UTC; ``id`` is a string;
    ``collector_id`` (a string) and ``late_ms`` are set for the rounds of a running collector
    and missing (None, NA) for ``collect --once`` cycles."""
    start = period_start(since)
    with default_db(db).connect() as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        rows = conn.execute(
            "SELECT id::text AS id, started_at, finished_at, location, region_code, sites_checked,"
            " up, down, duration_ms, dry_run, error, collector_id::text AS collector_id, late_ms"
            " FROM monitoring_cycles"
            " WHERE started_at >= %s AND (%s OR NOT dry_run) ORDER BY started_at",
            (start.to_pydatetime(), include_dry_runs),
        ).fetchall()
    columns = ["id", "started_at", "finished_at", "location", "region_code", "sites_checked",
               "up", "down", "duration_ms", "dry_run", "error", "collector_id",
               "late_ms"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    for name in ("started_at", "finished_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True).dt.as_unit("us")
    for name in ("sites_checked", "up", "down"):
        frame[name] = frame[name].astype("int64")
    frame["duration_ms"] = frame["duration_ms"].astype("Int64")
    frame["late_ms"] = frame["late_ms"].astype("Int64")
    return frame


def round_lateness(cycles: pd.DataFrame) -> pd.DataFrame:
    """How late each collector's rounds were (``late_ms``: its latest ping of the round against
    the site's due time), per location and collector, worst first: ``rounds``, ``late_median_s``,
    ``late_p95_s``, ``late_max_s``, ``last_round_at`` and ``last_late_s``. Empty when ``cycles``
    holds no rounds (only ``collect --once`` cycles, which have no lateness)."""
    columns = ["location", "collector_id", "rounds", "late_median_s", "late_p95_s",
               "late_max_s", "last_round_at", "last_late_s"]  # fmt: skip
    if "late_ms" not in cycles:
        return pd.DataFrame(columns=columns)
    rounds = cycles.loc[cycles["late_ms"].notna()].sort_values("started_at")
    if rounds.empty:
        return pd.DataFrame(columns=columns)
    late_s = rounds["late_ms"].astype("float64") / 1000
    grouped = late_s.groupby([rounds["location"], rounds["collector_id"]])
    table = pd.DataFrame(
        {
            "rounds": grouped.size(),
            "late_median_s": grouped.median(),
            "late_p95_s": grouped.quantile(0.95),
            "late_max_s": grouped.max(),
            "last_round_at": rounds.groupby(["location", "collector_id"])["finished_at"].last(),
            "last_late_s": grouped.last(),
        }
    ).reset_index()
    return table[columns].sort_values("late_max_s", ascending=False).reset_index(drop=True)


def overran(cycles: pd.DataFrame, interval: pd.Timedelta) -> pd.Series:
    """Which cycles overran ``interval``: the ``collect --once`` cycles (no ``collector_id``)
    that lasted longer. A round of a running collector lasts one interval by design and is never
    an overrun; :func:`round_lateness` says how it kept up (as ``uptimelab status`` does)."""
    longer = cycles["duration_ms"].fillna(0) > interval / pd.Timedelta(milliseconds=1)
    if "collector_id" not in cycles:
        return longer.astype(bool)
    return (longer & cycles["collector_id"].isna()).astype(bool)


def cycle_interval(cycles: pd.DataFrame) -> pd.Timedelta:
    """The collector's interval as seen in ``cycles``: the most common gap between starts (of
    one location, and of one collector where there are several). Raises ValueError with fewer
    than two cycles."""
    keys = ["location", "collector_id"] if "collector_id" in cycles else ["location"]
    ordered = cycles.sort_values("started_at")
    starts = ordered.groupby(keys, dropna=False)["started_at"].diff().dropna()
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
    time is the interval minus the cycle, and a ``collect --once`` cycle longer than the interval
    (whose next start is skipped) still leaves less than one interval, so neither counts; the
    rounds of a running collector follow one another. With several collectors in a location, a
    gap is a time when none of them stored a round. With ``now``,
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
        if now is not None and utc_timestamp(now) - ended.iloc[-1] > 2 * every:
            rows.append((location, ended.iloc[-1], pd.NaT))
    frame = pd.DataFrame(rows, columns=["location", "started_at", "ended_at"])
    for name in ("started_at", "ended_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True).dt.as_unit("us")
    until = frame["ended_at"] if now is None else frame["ended_at"].fillna(utc_timestamp(now))
    frame["duration"] = until - frame["started_at"]
    missed = frame["duration"].dt.total_seconds() / every.total_seconds()
    frame["missed_cycles"] = missed.round().astype("Int64")
    return frame[columns].sort_values("started_at").reset_index(drop=True)


def perf_results_path() -> Path:
    """Where the notebooks and the report look for ``uptimelab perf --json`` output: the file
    named by ``UPTIMELAB_PERF_JSON``, else ``perf.json`` in the data directory."""
    settings = Settings.load()
    return settings.perf_json or settings.data_dir / "perf.json"


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
