"""Status and health of a fleet of collectors, against a real database: the collectors table
(fresh, stale, stopped), the rounds' lateness in place of overruns, the CLI's text, and GET
/monitoring/status and /monitoring/health."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pandas as pd
import pytest

from uptimelab import analysis
from uptimelab.api.app import create_app
from uptimelab.config import Settings
from uptimelab.ops.health import health, status
from uptimelab.storage import fleet
from uptimelab.storage.database import Database

from .test_api import running
from .test_cli import run

LEASE_MS = 300_000  # long, so that a fresh heartbeat stays fresh however slow the test


def settings_for(db: Database, data_dir: Path) -> Settings:
    return Settings.load(
        database_url=db.url,
        data_dir=data_dir,
        monitoring_interval_ms=60_000,
        ping_timeout_ms=1000,
        collector_lease_ms=LEASE_MS,
        monitoring_location="Lab",
        monitoring_region_code="LB",
    )


def collector(
    db: Database,
    *,
    silent_s: float = 0,
    stopped: bool = False,
    location: str = "Lab",
    sites_owned: int = 0,
    late_ms: int = 0,
) -> uuid.UUID:
    """A collector that sent its heartbeat ``silent_s`` seconds ago (through the real heartbeat
    function: twice, since the first one records no sites or lateness), stopped if
    ``stopped``."""
    me = uuid.uuid4()
    with db.connect() as conn:
        for _ in range(2):
            fleet.heartbeat(
                conn,
                me,
                location=location,
                region_code="LB",
                lease_ms=LEASE_MS,
                sites_owned=sites_owned,
                late_ms=late_ms,
                grace_ms=0,
                buckets=4,
            )
        if stopped:
            fleet.stopped(conn, me)
        conn.execute(
            "UPDATE collectors SET heartbeat_at = heartbeat_at - make_interval(secs => %s),"
            " stopped_at = stopped_at - make_interval(secs => %s) WHERE id = %s",
            (silent_s, silent_s, me),
        )
    return me


def started(db: Database, collector_id: uuid.UUID, *, ago_s: float) -> None:
    """Collector ``collector_id`` started ``ago_s`` seconds ago."""
    with db.connect() as conn:
        conn.execute(
            "UPDATE collectors SET started_at = now() - make_interval(secs => %s) WHERE id = %s",
            (ago_s, collector_id),
        )


def cycle_row(
    db: Database,
    *,
    ago_s: float,
    duration_s: float = 60,
    collector_id: uuid.UUID | None = None,
    late_ms: int | None = None,
) -> None:
    """A monitoring_cycles row that finished ``ago_s`` seconds ago: a round of a collector with
    ``collector_id``, else a `collect --once` cycle."""
    with db.connect() as conn:
        conn.execute(
            """INSERT INTO monitoring_cycles (id, started_at, finished_at, location, region_code,
                       sites_checked, up, down, duration_ms, collector_id, late_ms)
               VALUES (%s, now() - make_interval(secs => %s), now() - make_interval(secs => %s),
                       'Lab', 'LB', 3, 2, 1, %s, %s, %s)""",
            (
                uuid.uuid4(),
                ago_s + duration_s,
                ago_s,
                round(duration_s * 1000),
                collector_id,
                late_ms,
            ),
        )


def test_status_lists_the_collectors_of_the_last_day_and_flags_the_stale_one(
    db: Database, tmp_path: Path
) -> None:
    fresh = collector(db, sites_owned=120, late_ms=1500)
    stale = collector(db, silent_s=900, sites_owned=80)
    gone = collector(db, silent_s=3600, stopped=True)
    collector(db, silent_s=2 * 86_400, stopped=True)  # stopped two days ago: not listed

    facts = status(settings_for(db, tmp_path)).database
    assert facts.reachable, facts.error
    listed = {c.id: c for c in facts.collectors or []}
    assert set(listed) == {fresh, stale, gone}
    assert [c for c in listed.values() if c.stale] == [listed[stale]]
    assert listed[fresh].sites_owned == 120
    assert listed[fresh].late_ms == 1500
    assert listed[fresh].heartbeat_age_s < LEASE_MS / 1000
    assert listed[stale].heartbeat_age_s >= 900
    assert listed[gone].stopped_at is not None
    assert listed[gone].sites_owned == 0  # a stopped collector gave its sites back
    assert {c.location for c in listed.values()} == {"Lab"}


def test_status_shows_how_late_the_rounds_were_and_overruns_only_of_once_cycles(
    db: Database, tmp_path: Path
) -> None:
    me = uuid.uuid4()
    cycle_row(db, ago_s=2 * 86_400, collector_id=me, late_ms=99_000)  # older than 24 h
    cycle_row(db, ago_s=300, collector_id=me, late_ms=0)
    cycle_row(db, ago_s=240, collector_id=me, late_ms=4500, duration_s=61)
    cycle_row(db, ago_s=180, collector_id=me, late_ms=1200)
    cycle_row(db, ago_s=1000, duration_s=75)  # a `collect --once` cycle over the interval

    facts = status(settings_for(db, tmp_path)).database
    late = facts.lateness
    assert late is not None
    assert (late.rounds, late.max_late_ms, late.last_round_late_ms) == (3, 4500, 1200)
    assert late.last_round_collector_id == me
    assert facts.cycles_24h is not None
    assert facts.cycles_24h.cycles == 4
    assert facts.cycles_24h.overruns == 1  # the round of 61 s is not an overrun
    assert facts.last_cycle is not None
    assert (facts.last_cycle.collector_id, facts.last_cycle.late_ms) == (me, 1200)


def test_without_rounds_the_lateness_is_empty(db: Database, tmp_path: Path) -> None:
    cycle_row(db, ago_s=10)
    late = status(settings_for(db, tmp_path)).database.lateness
    assert late is not None
    assert (late.rounds, late.max_late_ms, late.last_round_late_ms) == (0, None, None)


def test_health_is_degraded_by_a_stale_collector_and_names_it(db: Database, tmp_path: Path) -> None:
    config = settings_for(db, tmp_path)
    fresh = collector(db)
    cycle_row(db, ago_s=5, collector_id=fresh, late_ms=0)
    collector(db, silent_s=3600, stopped=True)
    report = health(config)
    assert report.exit_code == 0, report.as_dict()
    check = next(c for c in report.checks if c.name == "collectors")
    assert check.detail == "1 running with a fresh heartbeat, 1 stopped"

    stale = collector(db, silent_s=950)
    report = health(config)
    assert report.exit_code == 1, report.as_dict()
    check = next(c for c in report.checks if c.name == "collectors")
    assert check.status == "degraded"
    assert str(stale)[:8] in check.detail
    assert re.search(r"no heartbeat for 95\d s", check.detail), check.detail
    assert str(fresh)[:8] not in check.detail


def test_a_collector_silent_for_less_than_the_lease_is_fresh(db: Database, tmp_path: Path) -> None:
    collector(db, silent_s=LEASE_MS / 1000 - 10)
    report = health(settings_for(db, tmp_path))
    check = next(c for c in report.checks if c.name == "collectors")
    assert check.status == "healthy", check.detail


@pytest.mark.parametrize(("ago_s", "expected"), [(70, "healthy"), (130, "unhealthy")])
def test_the_last_round_of_a_running_collector_counts_as_the_last_cycle(
    db: Database, tmp_path: Path, ago_s: int, expected: str
) -> None:
    # A running collector stores a round every interval (60 s here): the check allows two.
    running = collector(db)
    started(db, running, ago_s=ago_s + 60)  # before its round
    cycle_row(db, ago_s=ago_s, collector_id=running, late_ms=0)
    report = health(settings_for(db, tmp_path))
    check = next(c for c in report.checks if c.name == "last cycle")
    assert check.status == expected, check.detail


def test_the_health_of_collectors_is_not_known_without_the_database(tmp_path: Path) -> None:
    report = health(
        Settings.load(
            database_url="postgresql://x@127.0.0.1:1/x", data_dir=tmp_path, db_timeout_ms=500
        )
    )
    check = next(c for c in report.checks if c.name == "collectors")
    assert (check.status, check.detail) == ("degraded", "not known: the database is unreachable")
    assert report.exit_code == 2


def test_the_status_and_health_commands_show_collectors_and_lateness(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLLECTOR_LEASE_MS", str(LEASE_MS))
    fresh = collector(db, sites_owned=7, late_ms=2500)
    stale = collector(db, silent_s=1200)
    cycle_row(db, ago_s=200, collector_id=fresh, late_ms=4500)
    cycle_row(db, ago_s=5, collector_id=fresh, late_ms=1200)

    out = run("status")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "lateness (24 h): 2 rounds, worst 4.5 s late; last round 1.2 s late" in lines
    mine = next(line for line in lines if line.startswith(f"collector {str(fresh)[:8]} "))
    assert re.search(r" Lab: heartbeat \d+ s ago; started ", mine), mine
    assert mine.endswith(", 7 sites, 2.5 s late")
    theirs = next(line for line in lines if line.startswith(f"collector {str(stale)[:8]} "))
    assert re.search(r"STALE: no heartbeat for 12\d\d s;", theirs), theirs
    # The round's sites and pings are told apart (3 sites, 2 up and 1 down: 3 pings), and no
    # Python formatting leaks (a dict, None).
    (last,) = [line for line in lines if line.startswith("last round: ")]
    assert ", 3 site(s) in 3 ping(s): 2 up, 1 down, 60 s" in last, last
    assert not any("overrun" in line for line in lines)
    assert not any(("None" in line or "{" in line) for line in lines), lines

    as_json = json.loads(run("status", "--json").stdout)
    assert {c["id"]: c["stale"] for c in as_json["database"]["collectors"]} == {
        str(fresh): False,
        str(stale): True,
    }
    assert as_json["database"]["lateness"]["max_late_ms"] == 4500

    checked = run("health")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert any(
        line.startswith("DEGRADED   collectors ") and str(stale)[:8] in line
        for line in checked.stdout.splitlines()
    ), checked.stdout
    assert "overall: degraded" in checked.stdout


async def test_the_api_answers_the_collectors_lateness_and_degraded_health(
    db: Database, tmp_path: Path
) -> None:
    config = settings_for(db, tmp_path)
    fresh = collector(db)
    stale = collector(db, silent_s=900)
    cycle_row(db, ago_s=5, collector_id=fresh, late_ms=800)
    async with running(create_app(config, db)) as client:
        answer = await client.get("/monitoring/status")
        assert answer.status_code == 200
        database = answer.json()["database"]
        assert {c["id"]: c["stale"] for c in database["collectors"]} == {
            str(fresh): False,
            str(stale): True,
        }
        assert database["lateness"]["last_round_late_ms"] == 800

        checked = await client.get("/monitoring/health")
        assert checked.status_code == 200  # degraded is still served
        body = checked.json()
        assert body["status"] == "degraded"
        assert {c["name"]: c["status"] for c in body["checks"]}["collectors"] == "degraded"

    with db.connect() as conn:  # the stale one is found stopped after all
        fleet.stopped(conn, stale)
    assert health(config).exit_code == 0


def test_the_notebooks_lateness_table_reads_the_rounds_per_collector(db: Database) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    for ago_s, late_ms in ((300, 0), (240, 4000), (180, 2000)):
        cycle_row(db, ago_s=ago_s, collector_id=first, late_ms=late_ms)
    cycle_row(db, ago_s=200, collector_id=second, late_ms=500)
    cycle_row(db, ago_s=100)  # a `collect --once` cycle: no lateness
    cycles = analysis.load_cycles(db, since="1h")
    assert cycles["late_ms"].isna().sum() == 1
    table = analysis.round_lateness(cycles)
    assert table["collector_id"].tolist() == [str(first), str(second)]  # worst first
    assert table["rounds"].tolist() == [3, 1]
    assert table["late_max_s"].tolist() == [4.0, 0.5]
    assert table["last_late_s"].tolist() == [2.0, 0.5]
    assert analysis.round_lateness(cycles[cycles["late_ms"].isna()]).empty
    # Two collectors of one location interleave their rounds: the interval is each one's.
    assert analysis.cycle_interval(cycles) == pd.Timedelta(seconds=60)


def test_status_before_any_cycle_says_so_in_words(db: Database) -> None:
    out = run("status")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "cycles (24 h): none yet" in lines
    assert "errors (24 h): by category none; by component none" in lines
    assert not any(("None" in line or "{" in line) for line in lines), lines
