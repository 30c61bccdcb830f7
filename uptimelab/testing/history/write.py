"""Writing a synthetic history: its sites registered (inactive), its pings through the collector's
COPY path in transactions of ``BATCH_ROWS`` rows, its cycle rows, then ``site_stats`` refreshed."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from ...config import parse_duration
from ...domain.pings import PING_COLUMNS
from ...domain.sites import SiteSpec
from ...storage.database import Database, default_db
from ...storage.site_import import upsert_sites
from ...storage.site_stats import refresh_stats
from ...storage.writer import Writer
from .frames import HISTORY_LOCATION
from .generate import (
    HISTORY_DOMAIN,
    Incident,
    SyntheticSite,
    check_history,
    synthetic_history,
)

BATCH_ROWS: Final = 100_000  # one COPY transaction: about a second, well within the write timeout


@dataclass(frozen=True)
class HistorySummary:
    """What :func:`write_history` wrote, and how long it took (seconds)."""

    sites: int
    pings: int
    cycles: int
    start: pd.Timestamp
    end: pd.Timestamp
    incidents: list[Incident]
    write_s: float


def write_history(
    db: Database | None = None,
    history: str | dt.timedelta = "7d",
    *,
    sites: int = 50,
    seed: int = 7,
    every: str | dt.timedelta = "5m",
    now: dt.datetime | None = None,
) -> HistorySummary:
    """Write a synthetic history reaching ``history`` back from ``now`` (default: the current
    time), then refresh ``site_stats`` at ``now``.

    ``history`` and ``every`` are durations ("7d", "5m") or timedeltas. The sites are registered
    (inactive) under ``HISTORY_DOMAIN``; running it again replaces their pings and the history's
    cycle rows, and removes history sites beyond ``sites``. Raises ConfigError for sizes out of
    range, StoreError when the database fails.
    """
    span = history if isinstance(history, dt.timedelta) else parse_duration(history, name="history")
    interval = every if isinstance(every, dt.timedelta) else parse_duration(every, name="every")
    check_history(sites, span, interval)
    database = default_db(db)
    started = time.perf_counter()
    at = now or dt.datetime.now(dt.UTC)
    made = synthetic_history(sites, span=span, every=interval, seed=seed, end=at)
    ids = _register(made.sites, database)
    writer = Writer(database)
    try:
        for days, rows in _batches(made.pings, ids):
            writer.write_rows(rows, days)
    finally:
        writer.close()
    _write_cycles(made.cycles, database)
    refresh_stats(at=at, db=database)
    return HistorySummary(
        sites=sites,
        pings=len(made.pings),
        cycles=len(made.cycles),
        start=made.start,
        end=made.end,
        incidents=made.incidents,
        write_s=time.perf_counter() - started,
    )


def _register(roster: list[SyntheticSite], db: Database) -> list[uuid.UUID]:
    """Upsert the history's sites (inactive), drop earlier history sites and the pings and cycle
    rows of earlier histories. Returns the site ids in roster order."""
    urls = [s.url for s in roster]
    upsert_sites(
        [
            (
                SiteSpec(url=s.url, name=s.name, is_active=False),
                frozenset({"url", "name", "is_active"}),
            )
            for s in roster
        ],
        db=db,
    )
    with db.connect() as conn:
        conn.execute(
            "DELETE FROM sites WHERE url LIKE %s AND NOT (url = ANY(%s))",
            (f"https://%.{HISTORY_DOMAIN}/", urls),
        )
        ids = {
            r["url"]: r["id"]
            for r in conn.execute("SELECT id, url FROM sites WHERE url = ANY(%s)", (urls,))
        }
        conn.execute("DELETE FROM pings WHERE site_id = ANY(%s)", (list(ids.values()),))
        conn.execute("DELETE FROM monitoring_cycles WHERE location = %s", (HISTORY_LOCATION,))
    return [ids[u] for u in urls]


def _batches(
    pings: pd.DataFrame, ids: list[uuid.UUID]
) -> Iterator[tuple[set[dt.date], list[tuple[object, ...]]]]:
    """Ping rows for COPY in time order, BATCH_ROWS at a time, with the UTC days they cover."""
    site_ids = np.array(ids, dtype=object)
    for start in range(0, len(pings), BATCH_ROWS):
        part = pings.iloc[start : start + BATCH_ROWS]
        columns = [
            site_ids[part["site"].cat.codes.to_numpy()].tolist(),
            list(part["checked_at"].dt.to_pydatetime()),
            *(_plain(part[c]) for c in PING_COLUMNS[2:]),
        ]
        yield set(part["checked_at"].dt.date), list(zip(*columns, strict=True))


def _plain(column: pd.Series) -> list[object]:
    """A column as Python values for COPY, missing values as None."""
    return [None if pd.isna(v) else v for v in column.astype(object).tolist()]


def _write_cycles(cycles: pd.DataFrame, db: Database) -> None:
    columns = list(cycles.columns)
    copy_sql = f"COPY monitoring_cycles ({', '.join(columns)}) FROM STDIN"
    rows = zip(*(_plain(cycles[c]) for c in columns), strict=True)
    with db.connect() as conn, conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for row in rows:
            copy.write_row(row)
