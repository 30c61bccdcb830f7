"""Benchmarks run on demand (``uptimelab bench ...``), never as timed tests.

``stats``: write a synthetic history through the collector's writer, then time a full stats
computation by the reference definition (raw pings) and by the rollup path, in one run, and
the rollup's cost on a cycle's write (triggers on against off). Figures are medians with their
spread over repetitions, since the machine may be shared and noisy.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg.conninfo import make_conninfo

from ..errors import StoreError
from ..storage.database import Database, connect
from ..storage.spool import PingRow
from ..storage.writer import Writer
from ..text import one_line

Progress = Callable[[int, int], None]


async def bare_httpx_loop(urls: list[str], concurrency: int) -> float:
    """The bare library doing a cycle's work: trio + httpx, a fresh connection per request, the
    body read, ``concurrency`` workers sharing one queue (a sliding window). Returns seconds."""
    import httpx
    import trio

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        queue = iter(urls)

        async def worker() -> None:
            for url in queue:
                response = await client.get(url)
                response.read()

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
        return trio.current_time() - start


@contextmanager
def scratch_database(server: Database) -> Iterator[Database]:
    """A new database on ``server``'s PostgreSQL, migrated, and dropped afterwards, whatever
    happens in between (an error, Ctrl-C). ``server.url`` may be any libpq form: a URL, a
    socket URL (``postgresql:///postgres``) or key=value pairs.

    Raises StoreError when the database cannot be created, or dropped (naming it then).
    """
    name = f"uptimelab_bench_{uuid.uuid4().hex[:10]}"
    with server.connect(autocommit=True) as conn:
        try:
            conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot create a scratch database on {server.masked_url}: {one_line(exc)}"
            ) from exc
    db: Database | None = None
    try:
        db = connect(make_conninfo(server.url, dbname=name))
        yield db
    finally:
        if db is not None:
            db.close()
        _drop(server, name)


def _drop(server: Database, name: str) -> None:
    try:
        with server.connect(autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except (psycopg.Error, StoreError) as exc:
        raise StoreError(
            f"cannot drop the scratch database {name} on {server.masked_url} "
            f"(drop it by hand): {one_line(exc)}"
        ) from exc


@dataclass
class Spread:
    """Median, min and max of repeated measurements (seconds or ratios)."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def __str__(self) -> str:
        return f"{self.median:.4g} (min {min(self.values):.4g}, max {max(self.values):.4g})"


@dataclass
class StatsBenchResult:
    sites: int
    pings: int
    write_s: float
    hour_rollup_s: Spread
    reference_s: Spread
    rollup_s: Spread
    refresh_s: Spread
    speedup: Spread
    cycle_write_on_s: Spread
    cycle_write_off_s: Spread
    rollup_overhead: Spread
    agree: bool


def placeholder_sites(db: Database, count: int) -> list[uuid.UUID]:
    """Register ``count`` sites under the reserved .invalid domain; returns their ids."""
    with db.connect() as conn:
        rows = conn.execute(
            "INSERT INTO sites (url) SELECT 'http://bench-' || g || '.invalid/' "
            "FROM generate_series(1, %s) AS g RETURNING id",
            (count,),
        ).fetchall()
    return [r["id"] for r in rows]


def history_rows(
    site_ids: list[uuid.UUID], day: dt.date, *, every_s: int, end: dt.datetime, seed: int
) -> tuple[list[PingRow], int]:
    """One UTC day of synthetic pings for every site, ending at ``end``: about 1 % down, log-normal
    response times. Returns the rows and their count."""
    import numpy as np

    rng = np.random.default_rng([seed, day.toordinal()])
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    stop = min(start + dt.timedelta(days=1), end)
    steps = max(0, math.ceil((stop - start).total_seconds() / every_s))
    n = len(site_ids)
    up = rng.random((steps, n)) >= 0.01
    response = np.rint(rng.lognormal(np.log(150), 0.5, (steps, n))).astype(np.int64)
    rows: list[PingRow] = []
    for k in range(steps):
        at = start + dt.timedelta(seconds=k * every_s)
        for site, ok, ms in zip(site_ids, up[k].tolist(), response[k].tolist(), strict=True):
            if ok:
                rows.append((site, at, "up", 200, ms, None, None, "bench", "BB"))
            else:
                rows.append((site, at, "down", None, 10_000, "timeout", "timed out", "bench", "BB"))
    return rows, len(rows)


def bench_stats(
    server: Database,
    *,
    sites: int = 1000,
    days: int = 7,
    every_s: int = 60,
    repeat: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
) -> StatsBenchResult:
    """Run the stats benchmark in a scratch database on ``server``."""
    with scratch_database(server) as db:
        ids = placeholder_sites(db, sites)
        end = dt.datetime.now(dt.UTC).replace(microsecond=0)
        first_day = (end - dt.timedelta(days=days)).date()
        all_days = [first_day + dt.timedelta(d) for d in range((end.date() - first_day).days + 1)]
        writer = Writer(db)
        total = 0
        started = time.perf_counter()
        for i, day in enumerate(all_days):
            rows, n = history_rows(ids, day, every_s=every_s, end=end, seed=seed)
            if day == first_day:  # keep exactly `days` of history before `end`
                cut = end - dt.timedelta(days=days)
                rows = [r for r in rows if r[1] > cut]
                n = len(rows)
            writer.write_rows(rows, {day})
            total += n
            del rows
            if progress:
                progress(i + 1, len(all_days))
        write_s = time.perf_counter() - started
        with db.connect(autocommit=True) as conn:
            # The history lies before the rollup's watermark, so the trigger rolled it up as it
            # was written (the write time includes that); make sure, then let the planner know.
            conn.execute("SELECT uptimelab_advance_rollup(now())")
            conn.execute("VACUUM ANALYZE")
        result = StatsBenchResult(
            sites=sites,
            pings=total,
            write_s=write_s,
            hour_rollup_s=Spread(),
            reference_s=Spread(),
            rollup_s=Spread(),
            refresh_s=Spread(),
            speedup=Spread(),
            cycle_write_on_s=Spread(),
            cycle_write_off_s=Spread(),
            rollup_overhead=Spread(),
            agree=True,
        )
        with db.connect(autocommit=True) as conn:
            for _ in range(repeat):
                t0 = time.perf_counter()
                reference = conn.execute(
                    "SELECT * FROM uptimelab_site_stats_reference(%s) ORDER BY site_id", (end,)
                ).fetchall()
                t1 = time.perf_counter()
                fast = conn.execute(
                    "SELECT * FROM uptimelab_site_stats_at(%s) ORDER BY site_id", (end,)
                ).fetchall()
                t2 = time.perf_counter()
                conn.execute("SELECT uptimelab_refresh_site_stats(%s)", (end,))
                t3 = time.perf_counter()
                result.agree &= reference == fast
                result.reference_s.values.append(t1 - t0)
                result.rollup_s.values.append(t2 - t1)
                result.refresh_s.values.append(t3 - t2)
                result.speedup.values.append((t1 - t0) / (t2 - t1))
        _rollup_overhead(db, writer, ids, result, repeat=max(50, 10 * repeat))
        _hour_rollup(db, result, repeat=repeat)
        writer.close()
        return result


def _rollup_overhead(
    db: Database, writer: Writer, ids: list[uuid.UUID], result: StatsBenchResult, *, repeat: int
) -> None:
    """A cycle's write (COPY of one ping per site) with the rollup trigger on, then off,
    alternating so that both see the same machine."""
    at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    with db.connect(autocommit=True) as conn:
        for k in range(2 * repeat):
            on = k % 2 == 0
            conn.execute(
                f"ALTER TABLE pings {'ENABLE' if on else 'DISABLE'} TRIGGER pings_rollup_insert"
            )
            rows = [(s, at, "up", 200, 120, None, None, "bench", "BB") for s in ids]
            at += dt.timedelta(seconds=1)
            t0 = time.perf_counter()
            writer.write_rows(rows, {at.date()})
            elapsed = time.perf_counter() - t0
            (result.cycle_write_on_s if on else result.cycle_write_off_s).values.append(elapsed)
        conn.execute("ALTER TABLE pings ENABLE TRIGGER pings_rollup_insert")
    result.rollup_overhead.values.extend(
        on / off - 1
        for on, off in zip(
            result.cycle_write_on_s.values, result.cycle_write_off_s.values, strict=True
        )
    )


def _hour_rollup(db: Database, result: StatsBenchResult, *, repeat: int) -> None:
    """What the refresh pays once an hour: aggregating the hour that just ended."""
    with db.connect(autocommit=True) as conn:
        for _ in range(repeat):
            with conn.transaction():
                conn.execute(
                    "SELECT pg_advisory_xact_lock(uptimelab_rollup_lock_key());"
                    "DELETE FROM ping_rollup_hourly "
                    "WHERE hour = date_trunc('hour', now(), 'UTC') - interval '1 hour';"
                    "UPDATE ping_rollup_state "
                    "SET watermark = date_trunc('hour', now(), 'UTC') - interval '1 hour'"
                )
            t0 = time.perf_counter()
            conn.execute("SELECT uptimelab_advance_rollup(now())")
            result.hour_rollup_s.values.append(time.perf_counter() - t0)


def describe(result: StatsBenchResult) -> list[str]:
    """The benchmark's report, one finding a line."""
    return [
        f"history: {result.pings:,} pings of {result.sites} sites written in "
        f"{result.write_s:.1f} s ({result.pings / result.write_s:,.0f} pings/s)",
        f"full stats, reference (raw pings), s: {result.reference_s}",
        f"full stats, rollup path, s:           {result.rollup_s}",
        f"reference / rollup:                   {result.speedup}",
        f"refresh (rollup path + upsert), s:    {result.refresh_s}",
        f"both paths give identical rows:       {'yes' if result.agree else 'NO'}",
        f"a cycle's write ({result.sites} pings), rollup on, s:  {result.cycle_write_on_s}",
        f"a cycle's write ({result.sites} pings), rollup off, s: {result.cycle_write_off_s}",
        f"rollup's share of a cycle's write:    {result.rollup_overhead}",
        f"rolling up one ended hour ({result.sites} sites), s, once an hour: "
        f"{result.hour_rollup_s}",
    ]
