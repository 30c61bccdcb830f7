"""Incidents: the per-site confirmation counts and notify URLs, the incidents table kept as pings
are stored (against pandas ``outages`` and a brute force), flapping, and the CLI and API."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import uptimelab as ul
from uptimelab import stats
from uptimelab.cli import main
from uptimelab.cli._common import console as cli_console
from uptimelab.config import Settings
from uptimelab.domain.incidents import Transition
from uptimelab.domain.pings import PING_COLUMNS, PingResult
from uptimelab.errors import SiteError
from uptimelab.storage.copying import PingCopier
from uptimelab.storage.database import Database
from uptimelab.storage.incidents import IncidentRules, list_incidents, track_incidents
from uptimelab.storage.maintenance_windows import list_maintenance
from uptimelab.storage.spool import PingRow
from uptimelab.storage.writer import Writer

from .db_snapshot import empty_tables
from .test_quorum import verdict


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``uptimelab ARGS`` in this process: (exit code, stdout, stderr)."""
    code = 0
    with pytest.MonkeyPatch.context() as patch:
        # Whole cells whatever the terminal: without one (pytest -n) rich would print 80 wide.
        patch.setattr(cli_console, "_width", 200)
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


TOKEN = "s3cr3t-t0ken-value"


def test_down_after_up_after_and_notify_come_in_through_every_entry_point(
    db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = ul.add_site(
        "https://a.example/", down_after=3, up_after=2, notify=[f"json://h/{TOKEN}"], db=db
    )
    assert (site.down_after, site.up_after, site.notify) == (3, 2, [f"json://h/{TOKEN}"])
    assert TOKEN not in repr(site)
    default = ul.add_site("https://d.example/", db=db)
    assert (default.down_after, default.up_after, default.notify) == (2, 1, None)

    code, _, err = run_cli(
        capsys, "sites", "add", "https://b.example/", "--down-after", "4", "--up-after", "3",
        "--notify", f"tgram://1234:{TOKEN}/1", "--notify", "ntfy://topic",
    )  # fmt: skip
    assert code == 0, err
    b = ul.get_site("https://b.example/", db=db)
    assert (b.down_after, b.up_after, b.notify) == (
        4,
        3,
        [f"tgram://1234:{TOKEN}/1", "ntfy://topic"],
    )

    csv_file = tmp_path / "sites.csv"
    csv_file.write_text(
        f"url,down_after,up_after,notify\nhttps://c.example/,5,2,json://x/{TOKEN} mailto://m@example.com\n"
    )
    ul.import_sites(csv_file, db=db)
    c = ul.get_site("https://c.example/", db=db)
    assert (c.down_after, c.up_after, c.notify) == (
        5,
        2,
        [f"json://x/{TOKEN}", "mailto://m@example.com"],
    )

    for shown in (["sites", "list"], ["sites", "list", "--json"]):
        code, out, err = run_cli(capsys, *shown)
        assert code == 0, err
        assert TOKEN not in out
        assert "tgram://***" in out
    listed = json.loads(run_cli(capsys, "sites", "list", "--json")[1])
    assert {s["url"]: s["down_after"] for s in listed}["https://b.example/"] == 4


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("--down-after", "0", "down_after"),
        ("--up-after", "0", "up_after"),
        ("--down-after", "1001", "down_after"),
        ("--notify", "not a url", "notify"),
        ("--notify", "json://h/x y", "notify"),
    ],
)
def test_bad_confirmation_counts_or_notify_urls_are_refused_with_nothing_written(
    db: Database, capsys: pytest.CaptureFixture[str], option: str, value: str, named: str
) -> None:
    code, _, err = run_cli(capsys, "sites", "add", "https://e.example/", option, value)
    assert code == 2
    assert err.startswith("error: ")
    assert named in err
    assert err.count("\n") == 1
    with pytest.raises(SiteError):
        ul.get_site("https://e.example/", db=db)


def test_a_notify_cell_may_hold_a_json_list_and_an_empty_one_is_none(
    db: Database, tmp_path: Path
) -> None:
    csv_file = tmp_path / "sites.csv"
    csv_file.write_text(
        'url,notify\nhttps://f.example/,"[""json://a/1"", ""json://b/2""]"\nhttps://g.example/,\n'
    )
    ul.import_sites(csv_file, db=db)
    assert ul.get_site("https://f.example/", db=db).notify == ["json://a/1", "json://b/2"]
    assert ul.get_site("https://g.example/", db=db).notify is None


# ------------------------------------------------------------------------------------------
# The incidents table: SQL (kept batch by batch, in any order) = pandas outages = brute force

US = dt.timedelta(microseconds=1)
MINUTE = dt.timedelta(minutes=1)
T0 = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
SITES = [uuid.UUID(int=i) for i in (1, 2)]
LOCATIONS = ["eu-west", "us-east", "Zurich"]
Row = tuple[uuid.UUID, dt.datetime, str, bool]
Found = tuple[dt.datetime, dt.datetime, dt.datetime | None, int]


def brute_incidents(
    samples: list[bool], times: list[dt.datetime], down_after: int, up_after: int
) -> list[Found]:
    """Incidents of one series by their definition: a run of down_after down samples starts one
    (while up); the first of up_after consecutive up samples ends it."""
    found: list[Found] = []
    i, n = 0, len(samples)
    while i < n:
        if i + down_after <= n and not any(samples[i : i + down_after]):
            j = i + down_after
            while j < n and not (j + up_after <= n and all(samples[j : j + up_after])):
                j += 1
            end = times[j] if j < n else None
            found.append((times[i], times[i + down_after - 1], end, samples[i:j].count(False)))
            i = j + up_after if j < n else n
        else:
            i += 1
    return found


def ping_row(site: uuid.UUID, at: dt.datetime, location: str, up: bool) -> PingRow:
    return (
        site, at, "up" if up else "down", 200 if up else None, 5 if up else None,
        None if up else "timeout", None if up else f"timed out at {at.isoformat()}",
        location, "XX",
    )  # fmt: skip


def _end(value: Any) -> Any:
    return None if pd.isna(value) else value


def stored_incidents(db: Database) -> list[dict[str, Any]]:
    with db.connect() as conn:
        return conn.execute(
            "SELECT id, site_id, location, started_at, confirmed_at, resolved_at, category, "
            "down_pings FROM incidents ORDER BY site_id, location NULLS FIRST, started_at"
        ).fetchall()


def histories() -> st.SearchStrategy[list[Row]]:
    # Minutes, with a few instants shared by locations and a few between the minutes.
    times = st.one_of(
        st.integers(0, 40).map(lambda m: T0 + m * MINUTE),
        st.integers(0, 40 * 60).map(lambda s: T0 + s * dt.timedelta(seconds=1)),
    )
    return st.lists(
        st.tuples(st.sampled_from(SITES), times, st.sampled_from(LOCATIONS), st.booleans()),
        max_size=70,
        unique_by=lambda r: (r[0], r[1], r[2]),
    )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    counts=st.lists(st.tuples(st.integers(1, 3), st.integers(1, 3)), min_size=2, max_size=2),
    interval_ms=st.sampled_from([60_000, 120_000, 300_000]),
    k=st.one_of(st.none(), st.integers(1, 3)),
)
def test_incidents_kept_batch_by_batch_equal_pandas_outages_and_a_brute_force(
    db: Database,
    data: st.DataObject,
    counts: list[tuple[int, int]],
    interval_ms: int,
    k: int | None,
) -> None:
    rows = data.draw(histories())
    # Stored in batches of any order and size (late pings), some twice (a replayed spool).
    order = data.draw(st.permutations(range(len(rows))))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(rows)), max_size=8)))
    batches = [[rows[i] for i in order[a:b]] for a, b in itertools.pairwise([0, *cuts, len(rows)])]
    batches += data.draw(st.lists(st.sampled_from(batches), max_size=2)) if batches else []
    rules = IncidentRules(default_interval_ms=interval_ms, quorum=k)
    with db.connect() as conn:
        empty_tables(conn, ["sites"])
        for site, (down_after, up_after) in zip(SITES, counts, strict=True):
            conn.execute(
                "INSERT INTO sites (id, url, down_after, up_after) VALUES (%s, %s, %s, %s)",
                (site, f"http://{site}/", down_after, up_after),
            )
    copier = PingCopier(rules)
    with psycopg.connect(db.url, autocommit=True) as conn:
        for batch in batches:
            copier.write(conn, None, [ping_row(*r) for r in batch], replay=True)
    got = stored_incidents(db)

    pings = stats.load_pings(db)
    reach = 2 * dt.timedelta(milliseconds=interval_ms)
    expected: list[tuple[Any, ...]] = []
    for site, (down_after, up_after) in zip(SITES, counts, strict=True):
        mine = sorted((r for r in rows if r[0] == site), key=lambda r: r[1])
        places = sorted({r[2] for r in mine})
        brute: list[tuple[Any, ...]] = []
        if len(places) >= 2:
            instants = sorted({r[1] for r in mine})
            quorum_rows = [(s, at, loc, up, None) for s, at, loc, up in mine]
            ups = [verdict(quorum_rows, site, at, reach, k)[0] == "up" for at in instants]
            brute += [
                (site, None, *f) for f in brute_incidents(ups, instants, down_after, up_after)
            ]
            # pandas: outages over the verdict series (its own quorum_verdicts)
            verdicts = stats.quorum_verdicts(
                pings[pings["site_id"].astype(str) == str(site)],
                quorum=k, default_interval_ms=interval_ms,
            )  # fmt: skip
            series = verdicts.assign(location="quorum", error_category=None)
            found = stats.outages(
                series, down_after=down_after, up_after=up_after, by_location=True
            )
            assert [
                (r.started_at, r.confirmed_at, _end(r.ended_at), r.pings_down)
                for r in found.itertuples()
            ] == [f[2:] for f in brute]
        for place in places:
            series_rows = [r for r in mine if r[2] == place]
            times = [r[1] for r in series_rows]
            ups = [r[3] for r in series_rows]
            brute += [(site, place, *f) for f in brute_incidents(ups, times, down_after, up_after)]
        pandas_found = stats.outages(
            pings[pings["site_id"].astype(str) == str(site)],
            down_after=down_after, up_after=up_after, by_location=True,
        )  # fmt: skip
        assert [
            (r.location, r.started_at, r.confirmed_at, _end(r.ended_at), r.pings_down,
             r.first_error_category)
            for r in pandas_found.itertuples()
        ] == [(*f[1:], "timeout") for f in brute if f[1] is not None]  # fmt: skip
        expected += brute
    assert [
        (r["site_id"], r["location"], r["started_at"], r["confirmed_at"], r["resolved_at"],
         r["down_pings"])
        for r in got
    ] == expected  # fmt: skip
    assert all(r["category"] == "timeout" for r in got if r["location"] is not None)

    # Rebuilt from scratch, the table is the same, ids and all.
    with db.connect() as conn:
        conn.execute("SELECT uptimelab_rebuild_incidents(%s, %s)", (interval_ms, k))
    assert stored_incidents(db) == got


# ------------------------------------------------------------------------------------------
# Transitions: what notifications follow


def _site(db: Database, down_after: int = 2, up_after: int = 1) -> uuid.UUID:
    return ul.add_site("https://t.example/", down_after=down_after, up_after=up_after, db=db).id


def _store(
    db: Database,
    copier: PingCopier,
    site: uuid.UUID,
    pattern: str,
    location: str = "here",
    start: int = 0,
) -> list[list[tuple[str, int]]]:
    """Store one ping a minute (``u`` up, ``d`` down), each in a batch of its own; the
    transitions of each batch as (kind, minute)."""
    out = []
    with psycopg.connect(db.url, autocommit=True) as conn:
        for i, c in enumerate(pattern, start):
            copier.write(
                conn, None, [ping_row(site, T0 + i * MINUTE, location, c == "u")], replay=False
            )
            out.append([(t.kind, int((t.at - T0) / MINUTE)) for t in copier.transitions])
    return out  # fmt: skip


@pytest.mark.parametrize(
    ("down_after", "up_after", "pattern", "expected"),
    [
        (1, 1, "udu", [("down", 1), ("recovered", 2)]),
        (2, 1, "udu", []),
        (2, 1, "uddu", [("down", 2), ("recovered", 3)]),
        (3, 1, "udddddu", [("down", 3), ("recovered", 6)]),
        (2, 2, "uddudduu", [("down", 2), ("recovered", 6)]),
        (2, 3, "udduudduuu", [("down", 2), ("recovered", 7)]),
        (1, 1, "d", [("down", 0)]),
    ],
)
def test_one_down_and_one_recovered_per_incident_when_each_is_confirmed(
    db: Database, down_after: int, up_after: int, pattern: str, expected: list[tuple[str, int]]
) -> None:
    site = _site(db, down_after, up_after)
    batches = _store(db, PingCopier(IncidentRules()), site, pattern)
    assert [t for b in batches for t in b] == expected
    # Each comes with the batch of the ping that confirmed it (a recovery's is the up_after-th
    # up ping; its time is the first one's).
    lag = {"down": 0, "recovered": up_after - 1}
    assert all(t[1] + lag[t[0]] == i for i, b in enumerate(batches) for t in b)


def test_the_transitions_carry_the_incident_and_its_first_error(db: Database) -> None:
    site = _site(db)
    copier = PingCopier(IncidentRules())
    _store(db, copier, site, "udd")
    (down,) = copier.transitions
    _store(db, copier, site, "u", start=3)
    (recovered,) = copier.transitions
    (incident,) = list_incidents(db=db)
    assert (down.kind, down.site_id, down.location, down.incident_id) == (
        "down", site, None, incident.id,
    )  # fmt: skip
    assert down.at == incident.confirmed_at == T0 + 2 * MINUTE
    assert down.category == "timeout"
    assert down.message == f"timed out at {(T0 + MINUTE).isoformat()}"
    assert recovered.duration == incident.duration == 2 * MINUTE
    assert down.key != recovered.key
    assert recovered.key == f"incident:{incident.id}:recovered:0"


def test_a_replayed_batch_changes_nothing_and_reports_nothing(db: Database) -> None:
    site = _site(db, down_after=1)
    copier = PingCopier(IncidentRules())
    rows = [ping_row(site, T0 + i * MINUTE, "here", c == "u") for i, c in enumerate("udduu")]
    with psycopg.connect(db.url, autocommit=True) as conn:
        copier.write(conn, None, rows, replay=False)
        first = [t.kind for t in copier.transitions]
        before = stored_incidents(db)
        copier.write(conn, None, rows[1:3], replay=True)
        assert copier.transitions == []
    assert first == ["down", "recovered"]
    assert stored_incidents(db) == before


def test_only_the_quorum_verdict_is_the_site_own_state_with_two_locations(db: Database) -> None:
    site = _site(db, down_after=1)
    copier = PingCopier(IncidentRules(default_interval_ms=60_000))
    seen = []
    with psycopg.connect(db.url, autocommit=True) as conn:
        # eu goes down for good, us stays up: with two locations a majority (2) must be down.
        for i in range(4):
            at = T0 + i * MINUTE
            rows = [ping_row(site, at, "eu", i == 0), ping_row(site, at + US, "us", True)]
            copier.write(conn, None, rows, replay=False)
            seen += copier.transitions
        rows = [ping_row(site, T0 + 4 * MINUTE, "us", False)]
        copier.write(conn, None, rows, replay=False)
        seen += copier.transitions
    assert [(t.kind, t.location, t.at) for t in seen] == [("down", None, T0 + 4 * MINUTE)]
    places = {(i.location, i.resolved_at) for i in list_incidents(db=db)}
    assert places == {("eu", None), ("us", None), (None, None)}
    own = list_incidents(own_only=True, db=db)
    assert [i.location for i in own] == [None]


def test_the_quorum_series_is_computed_whole_when_a_site_gains_its_second_location(
    db: Database,
) -> None:
    site = _site(db, down_after=1)
    copier = PingCopier(IncidentRules(default_interval_ms=60_000))
    with psycopg.connect(db.url, autocommit=True) as conn:
        copier.write(conn, None, [ping_row(site, T0, "us", False)], replay=False)
        assert [t.kind for t in copier.transitions] == ["down"]  # one location: its own state
        copier.write(conn, None, [ping_row(site, T0 + MINUTE, "eu", True)], replay=False)
    # The verdict was down at T0 (us alone) and up at T0 + 1 min (one of two down).
    verdict = [i for i in list_incidents(db=db) if i.location is None]
    assert [(i.started_at, i.resolved_at) for i in verdict] == [(T0, T0 + MINUTE)]


@pytest.mark.parametrize("changes", [6, 3])
def test_a_site_that_changes_too_often_flaps_until_a_window_passes_without_a_change(
    db: Database, changes: int
) -> None:
    site = _site(db, down_after=1)
    rules = IncidentRules(flap_changes=changes, flap_window_ms=10 * 60_000)
    copier = PingCopier(rules)
    flips = "ud" * (changes + 2)
    seen = [t for b in _store(db, copier, site, flips) for t in b]
    # Every change is reported (the notifier collapses those while the site flaps); the one
    # more than FLAP_CHANGES within the window starts the flapping, right after itself.
    expected = []
    for minute in range(1, len(flips)):
        expected.append(("down" if flips[minute] == "d" else "recovered", minute))
        if minute == changes + 1:
            expected.append(("flapping", minute))
    assert seen == expected
    with db.connect() as conn:
        period = conn.execute("SELECT started_at, ended_at FROM incident_flapping").fetchall()
    assert [(p["started_at"], p["ended_at"]) for p in period] == [
        (T0 + (changes + 1) * MINUTE, None)
    ]
    # Steady down: stable once ten minutes pass without a change, then quiet.
    last = len(flips)  # the last change was at minute len(flips) - 1
    seen = [t for b in _store(db, copier, site, "d" * 12, start=last) for t in b]
    assert seen == [("stable", last - 1 + 10)]
    with db.connect() as conn:
        row = conn.execute("SELECT ended_at FROM incident_flapping").fetchone()
    assert row is not None
    assert row["ended_at"] == T0 + (last - 1 + 10) * MINUTE
    assert [t for b in _store(db, copier, site, "u", start=last + 12) for t in b] == [
        ("recovered", last + 12)
    ]


async def test_the_writer_hands_each_stored_batch_transitions_to_its_callback(
    db: Database, tmp_path: Path
) -> None:
    site = _site(db, down_after=2)
    settings = Settings.load(database_url=db.url, data_dir=tmp_path)
    handed: list[list[Transition]] = []
    results = []
    async with Writer(db, settings) as writer:
        writer.on_transitions = handed.append
        for i, status in enumerate(["up", "down", "down", "up"]):
            ping = PingResult(
                site_id=site, checked_at=T0 + i * MINUTE, status=status, status_code=None,
                response_time_ms=5 if status == "up" else None,
                error_category=None if status == "up" else "refused",
                error_message=None if status == "up" else "refused",
                location="here", region_code="XX",
            )  # fmt: skip
            results.append(await writer.store_cycle(None, [ping]))
    assert [r.outcome for r in results] == ["stored"] * 4
    assert [[t.kind for t in r.transitions] for r in results] == [[], [], ["down"], ["recovered"]]
    assert handed == [results[2].transitions, results[3].transitions]


# ------------------------------------------------------------------------------------------
# The CLI and the API


def _outage_history(db: Database) -> tuple[uuid.UUID, uuid.UUID]:
    """Two sites: one with a resolved incident, one with an open one (now-relative times)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    a = ul.add_site("https://resolved.example/", down_after=1, db=db).id
    b = ul.add_site(f"https://u:{TOKEN}@open.example/", down_after=1, db=db).id
    copier = PingCopier(IncidentRules())
    with psycopg.connect(db.url, autocommit=True) as conn:
        start = now - 30 * MINUTE
        rows = [ping_row(a, start + i * MINUTE, "here", c == "u") for i, c in enumerate("uddu")]
        rows += [ping_row(b, now - 2 * MINUTE, "here", False)]
        copier.write(conn, None, rows, replay=False)
    return a, b


def test_the_incidents_command_lists_filters_and_exports(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _outage_history(db)
    code, out, err = run_cli(capsys, "incidents")
    assert code == 0, err
    assert "resolved.example" in out
    assert "ongoing" in out
    assert "2 incident(s)" in out
    code, out, _ = run_cli(capsys, "incidents", "--open", "--format", "json")
    assert [r["site_id"] for r in json.loads(out)] == [str(b)]
    code, out, _ = run_cli(
        capsys, "incidents", "--site", "https://resolved.example/", "--format", "json"
    )
    (row,) = json.loads(out)
    assert (row["site_id"], row["down_pings"], row["duration_s"]) == (str(a), 2, 120.0)
    assert row["started_at"].endswith("Z")
    code, out, _ = run_cli(capsys, "incidents", "--since", "10m", "--format", "csv")
    assert out.splitlines()[0].startswith("id,site_id,site,location,started_at")
    assert len(out.splitlines()) == 2  # the resolved one ended 27 minutes ago
    code, _, err = run_cli(capsys, "incidents", "--since", "soon")
    assert code == 2
    assert err.startswith("error: ")
    assert "--since" in err
    assert TOKEN not in out + err


async def test_the_api_serves_incidents_and_maintenance_windows(db: Database) -> None:
    from uptimelab.api.app import create_app

    from .test_api import TOKEN as API_TOKEN
    from .test_api import load_settings, running

    a, b = _outage_history(db)
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    async with running(create_app(load_settings(), db)) as client:
        every = (await client.get("/incidents")).json()
        assert [r["site_id"] for r in every] == [str(b), str(a)]  # newest first
        assert TOKEN not in json.dumps(every)
        opened = (await client.get("/incidents", params={"open": "true"})).json()
        assert [(r["site_id"], r["resolved_at"]) for r in opened] == [(str(b), None)]
        mine = (await client.get("/incidents", params={"site_id": str(a)})).json()
        assert [(r["down_pings"], r["duration_s"], r["location"]) for r in mine] == [
            (2, 120.0, "here")
        ]
        assert (
            await client.get("/incidents", params={"site_id": str(uuid.uuid4())})
        ).status_code == 404
        assert (await client.get("/incidents", params={"limit": 0})).status_code == 422
        recent = {"since": dt.datetime.now(dt.UTC).isoformat()}
        assert [r["site_id"] for r in (await client.get("/incidents", params=recent)).json()] == [
            str(b)
        ]
        for bad in ("12345", "2.8e-300", "soon"):
            assert (await client.get("/incidents", params={"since": bad})).status_code == 422

        window = {"starts_at": "2026-11-01T03:00:00Z", "ends_at": "2026-11-01T05:00:00Z"}
        assert (await client.post("/maintenance", json=window)).status_code == 401
        added = await client.post("/maintenance", json=window | {"site_id": str(a)}, headers=auth)
        assert added.status_code == 201, added.text
        recurring = {"cron": "*/10 * * * *", "duration_ms": 600_000, "reason": "always"}
        recurring["starts_at"] = "2026-01-01T00:00:00+01:00"
        always = (await client.post("/maintenance", json=recurring, headers=auth)).json()
        assert always["open_now"] is True
        listed = (await client.get("/maintenance", params={"site_id": str(b)})).json()
        assert [w["id"] for w in listed] == [always["id"]]
        for bad in ({"cron": "0 3 * * 0"}, {"ends_at": "2026-11-01T05:00:00"}, {"x": 1}):
            refused = await client.post("/maintenance", json=bad, headers=auth)
            assert refused.status_code == 422, bad
        backwards = window | {"starts_at": "2026-11-01T06:00:00Z"}
        conflict = await client.post("/maintenance", json=backwards, headers=auth)
        assert conflict.status_code == 409
        assert "ends_at must be after starts_at" in conflict.json()["message"]
        path = f"/maintenance/{added.json()['id']}"
        assert (await client.delete(path)).status_code == 401
        assert (await client.delete(path, headers=auth)).status_code == 200
        assert (await client.delete(path, headers=auth)).status_code == 404
    assert [w.id for w in list_maintenance(db=db)] == [always["id"]]


def test_a_written_history_has_the_incidents_pandas_finds_in_its_pings(db: Database) -> None:
    from uptimelab.testing.history import write_history

    write_history(db, "2d", sites=8, seed=3)
    pings = stats.load_pings(db)
    expected = stats.outages(pings, down_after=2, by_location=True)
    got = list_incidents(db=db)
    assert len(got) == len(expected) > 0
    assert sorted((str(i.site_id), i.started_at, i.down_pings) for i in got) == sorted(
        (str(r.site_id), r.started_at, r.pings_down) for r in expected.itertuples()
    )


def test_the_report_has_an_incidents_section(db: Database, tmp_path: Path) -> None:
    from uptimelab.report.html import write_report

    _outage_history(db)
    (page,) = write_report(tmp_path / "report.html", since="1d", db=db)
    text = page.read_text()
    assert 'id="incidents"' in text
    assert "2 incident(s) of the sites&#x27; own state, 1 still open" in text
    assert "resolved.example" in text
    assert TOKEN not in text


def test_load_incidents_and_the_summary_per_site(db: Database) -> None:
    from uptimelab.analytics.outages import INCIDENT_COLUMNS, incident_summary, load_incidents

    a, b = _outage_history(db)
    found = load_incidents(db)
    assert tuple(found.columns) == INCIDENT_COLUMNS
    assert found["site_id"].tolist() == [str(a), str(b)]  # oldest first
    assert found["duration"].iloc[0] == pd.Timedelta(minutes=2)
    assert pd.isna(found["resolved_at"].iloc[1])
    now = found["started_at"].iloc[1] + pd.Timedelta(minutes=5)
    summary = incident_summary(found, now)
    assert summary.loc[str(a), ["incidents", "open"]].tolist() == [1, 0]
    assert summary.loc[str(b), "downtime"] == pd.Timedelta(minutes=5)
    assert pd.isna(summary.loc[str(b), "mttr"])
    assert load_incidents(db, since=found["started_at"].iloc[1]).shape[0] == 1


def test_two_locations_storing_at_once_see_each_other_for_the_quorum_verdict(
    db: Database,
) -> None:
    """The second to track waits for the first to commit, then counts its ping: the verdict
    down only with both is found (without the wait it judged each ping alone)."""
    site = _site(db, down_after=1)
    rules = IncidentRules(default_interval_ms=60_000)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - 2 * MINUTE  # past the rollup's mark
    with psycopg.connect(db.url, autocommit=True) as conn:
        PingCopier(rules).write(
            conn, None, [ping_row(site, now, "eu", True), ping_row(site, now, "us", True)],
            replay=False,
        )  # fmt: skip
    first = [ping_row(site, now + MINUTE, "eu", False)]
    second = [ping_row(site, now + MINUTE + US, "us", False)]
    seen: dict[str, list[Transition]] = {}
    with psycopg.connect(db.url) as a, psycopg.connect(db.url) as b:
        for conn, rows in ((a, first), (b, second)):
            with conn.cursor().copy(f"COPY pings ({', '.join(PING_COLUMNS[:9])}) FROM STDIN") as cp:
                cp.write_row(rows[0])
        seen["a"] = track_incidents(a, first, rules)
        b_pid = b.info.backend_pid

        def track_b() -> None:
            seen["b"] = track_incidents(b, second, rules)
            b.commit()

        thread = threading.Thread(target=track_b)
        thread.start()
        with psycopg.connect(db.url, autocommit=True) as watch:
            for _ in range(600):  # until b waits on a's lock (a guard, not a sleep to sync)
                waiting = watch.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (b_pid,)
                ).fetchone()
                if waiting and waiting[0] == "Lock":
                    break
                watch.execute("SELECT pg_sleep(0.05)")
            else:
                pytest.fail("the second transaction never waited for the first")
        a.commit()
        thread.join(timeout=60)
    assert seen["a"] == []
    assert [(t.kind, t.at) for t in seen["b"]] == [("down", now + MINUTE + US)]
