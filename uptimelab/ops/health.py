"""Status and health: what the collector is doing, read by other processes too.

A running collector publishes its state (last cycle, breaker, spool, recent errors) to a small
JSON file in the data directory after every cycle; ``uptimelab status`` and ``uptimelab health``
combine it with what the database says. Both work, reduced, when the database is down.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ..collector.state import read_collector_state
from ..config import Settings
from ..domain.redaction import mask_url
from ..errors import UptimelabError
from ..storage.spool import Spool

HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
EXIT_CODES = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}


def _database_facts(settings: Settings, url: str) -> dict[str, Any]:
    interval = settings.monitoring_interval_ms
    facts: dict[str, Any] = {"reachable": True}
    with psycopg.connect(
        url,
        connect_timeout=max(1, round(settings.db_timeout_ms / 1000)),
        options=f"-c statement_timeout={settings.db_timeout_ms}",
        row_factory=psycopg.rows.dict_row,
    ) as conn:
        facts["cycles_24h"] = conn.execute(
            """SELECT count(*) AS cycles,
                      count(*) FILTER (WHERE error IS NULL) AS succeeded,
                      round(avg(duration_ms)) AS mean_duration_ms,
                      max(duration_ms) AS max_duration_ms,
                      count(*) FILTER (WHERE duration_ms > %s) AS overruns
                 FROM monitoring_cycles
                WHERE started_at > now() - interval '24 hours' AND NOT dry_run""",
            (interval,),
        ).fetchone()
        c = facts["cycles_24h"]
        c["success_rate"] = None if not c["cycles"] else round(c["succeeded"] / c["cycles"], 4)
        c["mean_duration_ms"] = (
            None if c["mean_duration_ms"] is None else int(c["mean_duration_ms"])
        )
        facts["sites"] = conn.execute(
            "SELECT count(*) FILTER (WHERE is_active) AS active, count(*) AS total FROM sites"
        ).fetchone()
        last = conn.execute(
            "SELECT id, started_at, finished_at, location, sites_checked, up, down, duration_ms, "
            "error FROM monitoring_cycles WHERE NOT dry_run ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
        facts["last_cycle"] = last
        if last is not None and last["finished_at"] is not None:
            rows = conn.execute(
                """SELECT status, coalesce(error_category, 'none') AS category, count(*) AS n
                     FROM pings WHERE location = %s AND checked_at >= %s AND checked_at <= %s
                    GROUP BY 1, 2""",
                (last["location"], last["started_at"], last["finished_at"]),
            ).fetchall()
            last["pings_by_status"] = _counts(rows, "status")
            last["pings_by_category"] = {
                r["category"]: r["n"] for r in rows if r["category"] != "none"
            }
        facts["errors_24h_by_category"] = {
            r["error_category"]: r["n"]
            for r in conn.execute(
                """SELECT error_category, count(*) AS n FROM pings
                    WHERE checked_at > now() - interval '24 hours' AND error_category IS NOT NULL
                    GROUP BY 1 ORDER BY 2 DESC"""
            ).fetchall()
        }
        failed = conn.execute(
            """SELECT count(*) AS n FROM monitoring_cycles
                WHERE started_at > now() - interval '24 hours' AND error IS NOT NULL
                  AND error NOT LIKE 'interrupted%'"""
        ).fetchone()
        facts["failed_cycles_24h"] = failed["n"] if failed else 0
        size = conn.execute(
            """SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) AS bytes
                 FROM pg_inherits WHERE inhparent = 'pings'::regclass"""
        ).fetchone()
        facts["pings_table_bytes"] = int(size["bytes"]) if size else 0
    return facts


def _counts(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r[key]] = out.get(r[key], 0) + int(r["n"])
    return out


def _database_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    from ..storage.database import embedded_server

    return str(embedded_server(settings.data_dir).get_uri())


def status(settings: Settings | None = None) -> dict[str, Any]:
    """Everything ``uptimelab status`` shows (the seed's GET /monitoring/status), JSON-ready.

    The configuration in force (secrets masked); cycles in the last 24 h; sites; the last cycle's
    pings by status and category; the breaker; the spool backlog; the pings table's size; an
    error report by category and component over the last 24 h.
    """
    settings = settings or Settings.load()
    config = settings.model_dump(mode="json")
    url = None
    try:
        url = _database_url(settings)
        config["database_url"] = mask_url(url)
        database = _database_facts(settings, url)
    except (psycopg.Error, UptimelabError, OSError) as exc:
        database = {"reachable": False, "error": " ".join(str(exc).split())[:300]}
    collector = read_collector_state(settings.data_dir)
    spool = Spool(settings.data_dir / "spool", max_bytes=settings.spool_max_bytes).backlog()
    store = (collector or {}).get("store") or {}
    if store.get("spool"):
        spool["full"] = store["spool"].get("full", False)
        spool["dropped_pings"] = store["spool"].get("dropped_pings", 0)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=24)
    by_component: dict[str, int] = {}
    for event in store.get("errors", []):
        if dt.datetime.fromisoformat(event["at"]) > since:
            by_component[event["component"]] = by_component.get(event["component"], 0) + 1
    if database.get("failed_cycles_24h"):
        by_component["collector"] = by_component.get("collector", 0) + database["failed_cycles_24h"]
    return {
        "config": config,
        "database": database,
        "collector": collector,
        "breaker": store.get("breaker") or {"state": "unknown (no collector state)"},
        "spool": spool,
        "errors_24h": {
            "by_category": database.get("errors_24h_by_category", {}),
            "by_component": by_component,
        },
    }


@dataclass
class Check:
    name: str
    status: str  # healthy, degraded or unhealthy
    detail: str
    seconds: float = 0.0


@dataclass
class HealthReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def status(self) -> str:
        states = {c.status for c in self.checks}
        for worst in (UNHEALTHY, DEGRADED):
            if worst in states:
                return worst
        return HEALTHY

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checks": [c.__dict__ for c in self.checks],
        }


def health(settings: Settings | None = None) -> HealthReport:
    """The seed's GET /monitoring/health: database reachable within the timeout, last cycle
    finished within two intervals, breaker closed, spool empty. Exit code 0 healthy,
    1 degraded, 2 unhealthy."""
    settings = settings or Settings.load()
    report = HealthReport()
    interval = dt.timedelta(milliseconds=settings.monitoring_interval_ms)
    collector = read_collector_state(settings.data_dir)
    store = (collector or {}).get("store") or {}

    started = time.perf_counter()
    last_finished: dt.datetime | None = None
    try:
        url = _database_url(settings)
        with psycopg.connect(
            url, connect_timeout=max(1, round(settings.db_timeout_ms / 1000))
        ) as conn:
            conn.execute("SELECT 1")
            row = conn.execute(
                "SELECT max(finished_at) FROM monitoring_cycles WHERE NOT dry_run"
            ).fetchone()
            last_finished = row[0] if row else None
        report.checks.append(
            Check(
                "database", HEALTHY, f"reachable ({mask_url(url)})", time.perf_counter() - started
            )
        )
    except (psycopg.Error, UptimelabError, OSError) as exc:
        report.checks.append(
            Check(
                "database",
                UNHEALTHY,
                "unreachable: " + " ".join(str(exc).split())[:200],
                time.perf_counter() - started,
            )
        )
    last = (collector or {}).get("last_cycle") or {}
    if last.get("finished_at"):
        published = dt.datetime.fromisoformat(last["finished_at"])
        last_finished = max(filter(None, [last_finished, published]))
    if last_finished is None:
        report.checks.append(Check("last cycle", UNHEALTHY, "no cycle has finished yet"))
    else:
        age = dt.datetime.now(dt.UTC) - last_finished
        ok = age <= 2 * interval
        report.checks.append(
            Check(
                "last cycle",
                HEALTHY if ok else UNHEALTHY,
                f"finished {age.total_seconds():.0f} s ago "
                f"(limit {2 * interval.total_seconds():.0f} s)",
            )
        )
    breaker = store.get("breaker")
    if breaker is None:
        report.checks.append(Check("breaker", HEALTHY, "no collector state published here"))
    else:
        state = breaker.get("state", "unknown")
        report.checks.append(
            Check(
                "breaker",
                HEALTHY if state == "closed" else DEGRADED,
                f"{state} since {breaker.get('since')}",
            )
        )
    spool = Spool(settings.data_dir / "spool", max_bytes=settings.spool_max_bytes).backlog()
    full = bool((store.get("spool") or {}).get("full"))
    if full:
        report.checks.append(Check("spool", UNHEALTHY, "FULL: pings are being dropped"))
    elif spool["segments"]:
        report.checks.append(
            Check(
                "spool", DEGRADED, f"{spool['segments']} cycle(s), {spool['bytes']} bytes waiting"
            )
        )
    else:
        report.checks.append(Check("spool", HEALTHY, "empty"))
    return report
