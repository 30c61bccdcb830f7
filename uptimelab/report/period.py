"""The data one report is made of: a period's pings, cycles, incidents, site names and fleet
table, loaded once (:func:`load_period`) for the HTML report and the exports alike."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from ..analytics.collector_health import load_cycles
from ..analytics.frames import period_start
from ..analytics.loaders import load_pings
from ..analytics.outages import INCIDENT_COLUMNS, load_incidents
from ..analytics.tables import fleet_table, month_table, site_names
from ..config import Settings
from ..errors import ConfigError
from ..storage.database import Database, default_db
from ..storage.retention import pruned_days


@dataclass(frozen=True)
class PeriodData:
    """Everything one report is made of, loaded once."""

    start: pd.Timestamp
    end: pd.Timestamp
    names: dict[str, str]
    pings: pd.DataFrame
    cycles: pd.DataFrame
    fleet: pd.DataFrame
    # The incidents lasting within the period (analytics.outages.load_incidents).
    incidents: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(INCIDENT_COLUMNS))
    )
    # Days of the period whose raw pings are pruned and were not read (no ARCHIVE_DIR, or
    # dropped unarchived): what is computed from ``pings`` counts without them.
    missing_days: tuple[dt.date, ...] = ()
    # The SLA of each calendar month the period touches, as `stats --month` reads it from the
    # database (rollups where raw pings are pruned), at the default target; None: from pings.
    months: pd.DataFrame | None = None


def load_period(db: Database | None = None, since: str | dt.timedelta = "30d") -> PeriodData:
    """The pings, cycles, site names and fleet table of the period from ``since`` ago to now,
    the pruned days whose pings are not among them, and the month SLA of the months it touches
    as the database has it (rollups included)."""
    database = default_db(db)
    start = period_start(since)
    end = pd.Timestamp.now(tz="UTC")
    names = site_names(database)
    return PeriodData(
        start=start,
        end=end,
        names=names,
        pings=load_pings(database, since=start.to_pydatetime(), until=end.to_pydatetime()),
        cycles=load_cycles(database, since=start.to_pydatetime()),
        fleet=fleet_table(database),
        incidents=load_incidents(database, since=start),
        missing_days=_missing_days(database, start, end),
        months=_months(database, start, end, names),
    )


def _missing_days(db: Database, start: pd.Timestamp, end: pd.Timestamp) -> tuple[dt.date, ...]:
    """The pruned days in [start, end] with pings that ``load_pings`` could not read from an
    archive."""
    archived = Settings.load().archive_dir is not None
    days = {
        d.day
        for d in pruned_days(db)
        if d.pings and start.date() <= d.day <= end.date() and not (archived and d.archive_file)
    }
    return tuple(sorted(days))


def _months(
    db: Database, start: pd.Timestamp, end: pd.Timestamp, names: dict[str, str]
) -> pd.DataFrame:
    """``month_table`` of every calendar month from ``start`` to ``end``, one frame; a month
    begun under an hour ago (no whole hour yet) is left out."""
    tables = []
    for month in pd.period_range(start.tz_convert(None), end.tz_convert(None), freq="M"):
        try:
            tables.append(month_table(db, str(month), names=names, now=end.to_pydatetime()))
        except ConfigError:
            continue
    tables = [t for t in tables if not t.empty]
    if not tables:
        return pd.DataFrame()
    return pd.concat(tables, ignore_index=True)
