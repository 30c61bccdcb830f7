"""A new user's second trial, CLI and operations: every repeating option has one lower bound,
free text is one line, settings and URLs typed wrong are bad input (exit 2)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from uptimelab.storage.database import Database

from .test_bad_input import assert_one_error_line, run, site_count
from .test_notify import Receiver, served


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["stats", "refresh", "--every", "{}"], "--every"),
        (["maintain", "--every", "{}"], "--every"),
        (["bench", "stats", "--every", "{}"], "--every"),
        (["perf", "--interval", "{}"], "--interval"),
    ],
)
@pytest.mark.parametrize("every", ["1ms", "999ms"])
def test_every_repeating_option_is_at_least_a_second(
    db: Database, args: list[str], flag: str, every: str
) -> None:
    line = assert_one_error_line(run(*[a.format(every) for a in args]), 2)
    assert line == f"error: {flag}={every}: at least 1s"
    assert site_count(db) == 0


ONE_LINE_BREAKERS = ["two\nlines", "cr\rlf", "a\ttab", "nul\x00", "del\x7f", "esc\x1b[31m"]


# A NUL cannot be passed in argv or the environment; the API tests it.
ARGV_BREAKERS = [text for text in ONE_LINE_BREAKERS if "\x00" not in text]


@pytest.mark.parametrize("reason", ARGV_BREAKERS)
def test_a_maintenance_reason_with_a_control_character_is_refused_by_the_cli(
    db: Database, reason: str
) -> None:
    from uptimelab.storage.maintenance_windows import list_maintenance

    line = assert_one_error_line(
        run("maintenance", "add", "--ends-at", "2099-01-01T00:00Z", "--reason", reason), 2
    )
    assert "reason must be one line of text, without control characters" in line
    assert list_maintenance(db=db) == []


@pytest.mark.parametrize("reason", ONE_LINE_BREAKERS)
@pytest.mark.parametrize("kind", ["one_off", "recurring"])
async def test_a_maintenance_reason_with_a_control_character_is_refused_by_the_api(
    db: Database, reason: str, kind: str
) -> None:
    from uptimelab.api.app import create_app
    from uptimelab.storage.maintenance_windows import list_maintenance

    from .test_api import AUTH, load_settings, running

    body: dict[str, object] = (
        {"ends_at": "2099-01-01T00:00:00Z"}
        if kind == "one_off"
        else {"cron": "0 3 * * 0", "duration_ms": 60_000}
    )
    async with running(create_app(load_settings(), db)) as client:
        answer = await client.post("/maintenance", json=body | {"reason": reason}, headers=AUTH)
    assert answer.status_code == 422, answer.text
    message = answer.json()["message"]
    assert message.endswith("reason: reason must be one line of text, without control characters")
    assert list_maintenance(db=db) == []


@pytest.mark.parametrize("variable", ["MONITORING_LOCATION", "MONITORING_REGION_CODE"])
@pytest.mark.parametrize("value", ARGV_BREAKERS)
def test_a_location_or_region_with_a_control_character_is_one_line_exit_2(
    variable: str, value: str
) -> None:
    line = assert_one_error_line(run("status", env={variable: value}), 2)
    assert line == f"error: {variable}={value!r}: must be one line, without control characters"


# -- exit codes: bad input 2, the environment 1 ------------------------------------------------

BAD_DATABASE_URLS = ["garbage", "mysql://a/b", "postgresql://u:pw@[::1/x"]


@pytest.mark.parametrize("url", BAD_DATABASE_URLS)
@pytest.mark.parametrize(
    "args", [["status"], ["status", "--json"], ["health"], ["sites", "list"], ["collect", "--once"]]
)
def test_a_database_url_that_cannot_be_read_is_bad_input_everywhere(
    tmp_path: Path, url: str, args: list[str]
) -> None:
    env = {"UPTIMELAB_DATABASE_URL": url, "UPTIMELAB_DATA_DIR": str(tmp_path / "data")}
    out = run(*args, env=env)
    line = assert_one_error_line(out, 2)
    assert "database URL" in line
    assert out.stdout == ""
    assert "pw" not in line


@pytest.mark.parametrize(
    ("urls", "env", "said"),
    [
        (["notaurl"], {}, "error: URL 1 is not an apprise URL"),
        (["nosuchservice://TOKEN1"], {}, "error: URL 1 (nosuchservice://***) is not a notif"),
        (["json://127.0.0.1:1/a", "bogus://TOKEN1"], {}, "error: URL 2 (bogus://***) is not"),
        ([], {"NOTIFY_URLS": "bogus://TOKEN1"}, "error: NOTIFY_URLS: URL 1 (bogus://***) is not"),
    ],
)
def test_notify_test_of_a_url_apprise_does_not_know_is_bad_input_and_sends_nothing(
    urls: list[str], env: dict[str, str], said: str
) -> None:
    out = run("notify", "test", *urls, env=env)
    line = assert_one_error_line(out, 2)
    assert line.startswith(said), line
    assert "TOKEN1" not in line
    assert out.stdout == ""  # nothing was sent, not even to the first URL


def test_a_data_directory_the_system_refuses_is_an_environment_failure(db: Database) -> None:
    """A path that breaks no rule (its parent is a directory) but cannot be made: exit 1, as an
    unwritable --out is; a data directory that is a file breaks a rule: exit 2."""
    refused = run("collect", "--once", env={"UPTIMELAB_DATA_DIR": "/proc/uptimelab-nope"})
    line = assert_one_error_line(refused, 1)
    assert line.startswith("error: cannot use the data directory /proc/uptimelab-nope: ")
    a_file = run("collect", "--once", env={"UPTIMELAB_DATA_DIR": "/etc/hostname"})
    line = assert_one_error_line(a_file, 2)
    assert line == "error: UPTIMELAB_DATA_DIR='/etc/hostname': it is a file, not a directory"


def test_status_without_a_database_does_not_claim_there_were_no_errors(tmp_path: Path) -> None:
    out = run(
        "status",
        env={
            "UPTIMELAB_DATABASE_URL": "postgresql://root@127.0.0.1:1/none",
            "UPTIMELAB_DATA_DIR": str(tmp_path / "data"),
        },
    )
    assert out.returncode == 1, out.stderr
    assert "database: UNREACHABLE" in out.stdout
    assert "errors (24 h): by category unknown (database unreachable);" in out.stdout


# -- output files of zoo and perf ----------------------------------------------------------------

OUTPUT_OPTIONS = [
    ["zoo", "--sites", "1", "--no-every-failure", "--duration", "1", "--targets-json"],
    ["perf", "--sites", "2", "--json"],
    ["perf", "--sites", "2", "--plot"],
]


@pytest.mark.parametrize("args", OUTPUT_OPTIONS, ids=lambda a: f"{a[0]}-{a[-1]}")
@pytest.mark.parametrize("kind", ["a directory", "through a file"])
def test_an_output_path_of_the_wrong_kind_is_bad_input_before_any_work(
    tmp_path: Path, args: list[str], kind: str
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    path = tmp_path if kind == "a directory" else a_file / "out.json"
    out = run(*args, str(path), env={"UPTIMELAB_DATA_DIR": str(tmp_path / "data")})
    line = assert_one_error_line(out, 2)
    said = "is a directory, not a file" if kind == "a directory" else f"{a_file} is a file"
    assert line == f"error: {args[-1]}={path}: {said}" + (
        ", not a directory" * (kind != "a directory")
    )
    assert out.stdout == ""  # refused before the zoo or the run started


def test_a_zoo_targets_file_the_system_refuses_is_one_line_exit_1(tmp_path: Path) -> None:
    out = run(*OUTPUT_OPTIONS[0], "/proc/uptimelab-nope/t.json")
    line = assert_one_error_line(out, 1)
    assert line.startswith("error: --targets-json=/proc/uptimelab-nope/t.json: cannot write it: ")


def test_a_zoo_targets_file_in_a_new_folder_is_written(tmp_path: Path) -> None:
    path = tmp_path / "new" / "t.json"
    out = run(*OUTPUT_OPTIONS[0], str(path))
    assert out.returncode == 0, out.stderr
    assert len(json.loads(path.read_text())) == 1


# -- a requested stop is not a failed round ------------------------------------------------------


def add_cycle(db: Database, error: str | None, minutes_ago: int) -> None:
    with db.connect() as conn:
        conn.execute(
            "INSERT INTO monitoring_cycles (id, started_at, finished_at, location, region_code,"
            " sites_checked, up, duration_ms, error) VALUES (gen_random_uuid(),"
            " now() - make_interval(mins => %s), now() - make_interval(mins => %s) + interval"
            " '1 second', 'here', 'XX', 16, 16, 1000, %s)",
            (minutes_ago, minutes_ago, error),
        )


@pytest.mark.parametrize(
    "stop",
    [
        "stopped after 16 of 16 sites",
        "stopped after 5 of 15 sites",
        "interrupted after 5 of 15 sites",
    ],
)
def test_a_round_cut_short_by_a_requested_stop_lowers_no_success_rate(
    db: Database, stop: str
) -> None:
    from uptimelab.collector.reporting import cycle_error
    from uptimelab.storage.queries import status_facts

    assert cycle_error(True, 16, 16, 0) == "stopped after 16 of 16 sites"
    add_cycle(db, None, 30)
    add_cycle(db, "2 collector fault(s): those sites got no ping (see the log)", 20)
    add_cycle(db, stop, 10)
    facts = status_facts(db, interval_ms=60_000, lease_ms=30_000)
    counts = facts.cycles_24h
    assert counts is not None
    assert (counts.cycles, counts.succeeded, counts.stopped) == (3, 1, 1)
    assert counts.success_rate == 0.5  # 1 of the 2 that ran to their end
    assert facts.failed_cycles_24h == 1
    shown = run("status")
    assert "cycles (24 h): 3, success 50.0 %" in shown.stdout, shown.stdout
    assert "stopped 1 (not counted)" in shown.stdout


# -- health right after a collector (re)start ----------------------------------------------------


@pytest.mark.parametrize(
    ("round_ago_s", "collector", "expected"),
    [
        # The previous run's round is old; a collector started since has a round to finish.
        (147, {"started_ago_s": 10}, "healthy"),
        (None, {"started_ago_s": 10}, "healthy"),
        (3600, {"started_ago_s": 119}, "healthy"),
        # ... but not for ever: two intervals from its start without a round.
        (3600, {"started_ago_s": 130}, "unhealthy"),
        (None, {"started_ago_s": 130}, "unhealthy"),
        # A stopped or stale collector is no reason to wait.
        (147, {"started_ago_s": 10, "stopped": True}, "unhealthy"),
        (147, {"started_ago_s": 10, "silent_s": 400}, "unhealthy"),
        (None, None, "unhealthy"),
        # A round after the start counts as before.
        (30, {"started_ago_s": 300}, "healthy"),
        (130, {"started_ago_s": 300}, "unhealthy"),
    ],
)
def test_health_counts_the_last_cycle_from_a_running_collector_s_start(
    db: Database,
    tmp_path: Path,
    round_ago_s: int | None,
    collector: dict[str, Any] | None,
    expected: str,
) -> None:
    from uptimelab.ops.health import health

    from . import test_status_fleet as fleet

    if round_ago_s is not None:
        earlier = fleet.collector(db, stopped=True)  # the previous run, which stored the round
        fleet.cycle_row(db, ago_s=round_ago_s, collector_id=earlier, late_ms=0)
    if collector is not None:
        options = {k: v for k, v in collector.items() if k != "started_ago_s"}
        fleet.started(db, fleet.collector(db, **options), ago_s=collector["started_ago_s"])
    report = health(fleet.settings_for(db, tmp_path))  # interval 60 s: limit 120 s
    check = next(c for c in report.checks if c.name == "last cycle")
    assert check.status == expected, check.detail


# -- what a round says it will probe -------------------------------------------------------------


class StartRecorder:
    """Records what each cycle's start said it would probe; an event at the first."""

    def __init__(self) -> None:
        self.said: list[int | None] = []
        self.started = trio.Event()

    def cycle_started(self, number: int, sites: int | None) -> None:
        self.said.append(sites)
        self.started.set()

    def ping_done(self, site: object, ping: object) -> None:
        pass

    def cycle_finished(self, summary: object) -> None:
        pass

    def note(self, message: str) -> None:
        pass


@pytest.mark.parametrize("sites", [0, 2])
async def test_a_collector_holding_no_sites_yet_does_not_promise_to_probe_0(
    db: Database, sites: int
) -> None:
    import uptimelab as ul
    from uptimelab.cli.collect import probing
    from uptimelab.collector import Collector

    from .test_api import load_settings

    for k in range(sites):  # nothing listens there: a refused ping is quick
        ul.add_site(f"http://127.0.0.1:9/{k}", db=db)
    reporter = StartRecorder()
    collector = Collector(db, load_settings(), reporter=reporter)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collector.run)
        await reporter.started.wait()
        collector.stop()
    assert reporter.said[0] == (sites or None)
    assert probing(None).startswith("probing the sites this collector will hold (none yet")
    assert probing(0) == "probing 0 site(s)"  # --once knows: there are none


# -- collect --once and its notifications --------------------------------------------------------


@pytest.fixture
def hook() -> Iterator[Receiver]:
    """test_notify's web hook receiver, served from a thread."""
    with served() as r:
        yield r


def notification_rows(db: Database) -> list[dict[str, Any]]:
    with db.connect() as conn:
        return conn.execute(
            "SELECT kind, status, attempts, error FROM notifications ORDER BY id"
        ).fetchall()


@pytest.mark.parametrize("failures", [0, 1])
def test_a_down_of_a_once_cycle_longer_than_the_max_age_is_sent_not_expired(
    db: Database, tmp_path: Path, hook: Receiver, failures: int
) -> None:
    """The refused site's ping is taken at once; the cycle stores it at its end, after the hang
    target's 2.5 s timeout, past NOTIFY_MAX_AGE_MS=1000: it is this run's news all the same. A
    first delivery that fails is retried before the run ends."""
    import uptimelab as ul
    from uptimelab.testing.zoo import ZooSpec

    from .conftest import zoo_in_thread
    from .test_notify import dead_port

    hook.statuses = [503] * failures
    with zoo_in_thread(ZooSpec.every_failure(duration_s=60)) as zoo:
        ul.add_site(f"http://127.0.0.1:{dead_port()}/", name="gone", down_after=1, db=db)
        ul.add_site(zoo.url("hang"), name="hang", db=db)
        out = run(
            "collect",
            "--once",
            "--ping-timeout-ms",
            "2500",
            env={
                "NOTIFY_URLS": hook.url(),
                "NOTIFY_MAX_AGE_MS": "1000",
                "NOTIFY_RETRY_DELAY_MS": "100",
                "UPTIMELAB_DATA_DIR": str(tmp_path / "data"),
            },
        )
    assert out.returncode == 0, out.stderr
    assert hook.titles() == ["DOWN: gone"], notification_rows(db)
    assert [(r["kind"], r["status"]) for r in notification_rows(db)] == [("down", "sent")]
    assert "still pending" not in out.stdout


def test_collect_once_says_how_many_notifications_are_left_pending(
    db: Database, tmp_path: Path, hook: Receiver
) -> None:
    import uptimelab as ul

    from .test_notify import dead_port

    hook.statuses = [503] * 1000
    ul.add_site(f"http://127.0.0.1:{dead_port()}/", name="gone", down_after=1, db=db)
    out = run(
        "collect",
        "--once",
        # The first retry (after 30 s) is not due before the run ends.
        env={
            "NOTIFY_URLS": hook.url(),
            "NOTIFY_RETRY_DELAY_MS": "30000",
            "UPTIMELAB_DATA_DIR": str(tmp_path / "data"),
        },
    )
    assert out.returncode == 0, out.stderr
    assert "notifications: 1 still pending (not delivered in time)" in out.stdout
    ((row),) = notification_rows(db)
    assert (row["status"], row["attempts"]) == ("pending", 1)


# -- error wording -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["sites", "add", "https://w.example/", "--cert-min-days", "4000"],
            "cert_min_days: must be at most 3650",
        ),
        (
            ["sites", "add", "https://w.example/", "--down-after", "0"],
            "down_after: must be at least 1",
        ),
        (
            ["maintenance", "add", "--cron", "0 3 * * 0", "--duration-ms", "10"],
            "duration_ms: must be at least 1000",
        ),
    ],
)
def test_pydantic_s_wording_is_said_in_the_cli_s_words(
    db: Database, args: list[str], said: str
) -> None:
    line = assert_one_error_line(run(*args), 2)
    assert line == f"error: {said}"
    assert site_count(db) == 0


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"cron": "0 3 * * 0", "duration_ms": 10}, "duration_ms: must be at least 1000"),
        (b"{not json", "body: is not valid JSON"),
        ({"ends_at": "2099-01-01T00:00:00Z", "site_id": "nope"}, "site_id: must be a UUID"),
    ],
)
async def test_the_api_says_pydantic_s_errors_in_the_cli_s_words(
    db: Database, body: object, said: str
) -> None:
    from uptimelab.api.app import create_app

    from .test_api import AUTH, load_settings, running

    async with running(create_app(load_settings(), db)) as client:
        if isinstance(body, bytes):
            headers = AUTH | {"Content-Type": "application/json"}
            answer = await client.post("/maintenance", content=body, headers=headers)
        else:
            answer = await client.post("/maintenance", json=body, headers=AUTH)
    assert answer.status_code == 422, answer.text
    message = answer.json()["message"]
    assert said in message, message
    assert "Input should" not in message


@pytest.mark.parametrize(
    ("args", "env", "code"),
    [
        (["prune", "--keep", "30d", "--archive", "/proc/uptimelab-nope", "--yes"], {}, 0),
        (["prune", "--keep", "30d", "--dry-run"], {}, 0),
        (["maintain"], {"RETENTION_DAYS": "30", "ARCHIVE_DIR": "/etc/hostname"}, 2),
        (["maintain"], {}, 0),
    ],
)
def test_stderr_has_no_blank_line_from_a_progress_bar(
    db: Database, args: list[str], env: dict[str, str], code: int
) -> None:
    out = run(*args, env=env)
    assert out.returncode == code, out.stderr
    assert "\n\n" not in "\n" + out.stderr, repr(out.stderr)
    if code:
        assert_one_error_line(out, code)


@pytest.mark.parametrize(("name", "shown"), [("shop", "shop"), (None, "maint.example")])
def test_maintenance_list_names_the_site_beside_its_id(
    db: Database, name: str | None, shown: str
) -> None:
    import uptimelab as ul
    from uptimelab.storage.maintenance_windows import add_maintenance

    site = ul.add_site("https://maint.example/", name=name, db=db)
    add_maintenance(site=str(site.id), ends_at=dt.datetime(2099, 1, 1, tzinfo=dt.UTC), db=db)
    add_maintenance(ends_at=dt.datetime(2099, 1, 1, tzinfo=dt.UTC), db=db)
    out = run("maintenance", "list", env={"COLUMNS": "250"})
    assert out.returncode == 0, out.stderr
    assert f"{shown} ({str(site.id)[:8]})" in out.stdout
    assert " all " in out.stdout


@pytest.mark.parametrize(
    ("since", "code"),
    [
        ("7d", 200),
        ("1h30m", 200),
        ("36525d", 200),
        ("2026-11-01T03:00Z", 200),
        ("2026-11-01", 200),
        ("123", 422),
        ("soon", 422),
        ("36526d", 422),
        ("-7d", 422),
    ],
)
async def test_the_api_since_takes_an_iso_time_or_the_cli_s_duration(
    db: Database, since: str, code: int
) -> None:
    from uptimelab.api.app import create_app

    from .test_api import AUTH, load_settings, running

    async with running(create_app(load_settings(), db)) as client:
        answer = await client.get("/incidents", params={"since": since}, headers=AUTH)
    assert answer.status_code == code, answer.text
    if code == 422:
        assert answer.json()["message"] == (
            "since: give an ISO 8601 time or a duration such as 7d (at most 100 years)"
        )
    else:
        assert answer.json() == []


async def test_the_public_status_leaves_out_the_server_s_local_paths(
    db: Database, tmp_path: Path
) -> None:
    from uptimelab.api.app import create_app
    from uptimelab.api.monitoring import LOCAL_PATHS

    from .test_api import load_settings, running

    settings = load_settings(data_dir=tmp_path / "secret-layout", archive_dir=tmp_path / "arch")
    async with running(create_app(settings, db)) as client:
        answer = await client.get("/monitoring/status")  # no token: it is public
    assert answer.status_code == 200, answer.text
    assert "secret-layout" not in answer.text
    assert str(tmp_path) not in answer.text
    assert not set(LOCAL_PATHS) & set(answer.json()["config"])
    assert answer.json()["config"]["monitoring_location"] == "Lab"  # the rest is there
    shown = run("status", "--json", env={"UPTIMELAB_DATA_DIR": str(tmp_path / "here")})
    assert json.loads(shown.stdout)["config"]["data_dir"] == str(tmp_path / "here")  # the CLI's


@pytest.mark.parametrize("given_as", ["url", "id"])
def test_sites_remove_asks_first_and_without_a_terminal_needs_yes(
    db: Database, given_as: str
) -> None:
    import uptimelab as ul

    site = ul.add_site("https://keep.example/", db=db)
    which = site.url if given_as == "url" else str(site.id)
    line = assert_one_error_line(run("sites", "remove", which), 2)
    assert "pass --yes to remove it without asking" in line
    assert site_count(db) == 1  # nothing removed
    done = run("sites", "remove", which, "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "removed https://keep.example/"
    assert site_count(db) == 0


def test_sites_remove_of_an_unknown_site_says_so_before_asking(db: Database) -> None:
    line = assert_one_error_line(run("sites", "remove", "https://nowhere.example/"), 2)
    assert line.startswith("error: no site with url")


@pytest.mark.parametrize(
    ("stored", "waiting", "said"),
    [
        ("spooled", 0, "stored (spooled while the database was unavailable, replayed since)"),
        ("3 of them", 1, "3 stored, the rest spooled: the database is unavailable, they will"),
        ("spooled", 2, "spooled: the database is unavailable, they will be stored when it is back"),
        ("stored", 0, "stored"),
        ("dropped", 1, "DROPPED: the spool is full"),
    ],
)
def test_a_summary_says_spooled_only_while_the_spool_still_holds_it(
    stored: str, waiting: int, said: str
) -> None:
    import uuid

    from uptimelab.cli.collect import outcome_text
    from uptimelab.collector import CycleSummary

    now = dt.datetime.now(dt.UTC)
    summary = CycleSummary(
        id=uuid.uuid4(),
        started_at=now,
        finished_at=now,
        location="here",
        region_code="XX",
        sites_checked=25,
        up=25,
        down=0,
        duration_ms=1000,
        dry_run=False,
    )
    if stored == "3 of them":  # a round the database left after 3 of its pings were stored
        stored, summary.stored_pings = "spooled", 3
    summary.stored, summary.spool_waiting = stored, waiting
    assert outcome_text(summary).startswith(said)
