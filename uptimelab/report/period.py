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
from ..analytics.tables import fleet_table, site_names
from ..storage.database import Database, default_db


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


def load_period(db: Database | None = None, since: str | dt.timedelta = "30d") -> PeriodData:
    """The pings, cycles, site names and fleet table of the period from ``since`` ago to now."""
    database = default_db(db)
    start = period_start(since)
    end = pd.Timestamp.now(tz="UTC")
    return PeriodData(
        start=start,
        end=end,
        names=site_names(database),
        pings=load_pings(database, since=start.to_pydatetime(), until=end.to_pydatetime()),
        cycles=load_cycles(database, since=start.to_pydatetime()),
        fleet=fleet_table(database),
        incidents=load_incidents(database, since=start),
    )
