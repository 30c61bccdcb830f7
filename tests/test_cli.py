"""The command line, run as a user runs it: a subprocess, checked through the Python API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import uptimelab as ul
from uptimelab.storage.database import Database, migration_files
from uptimelab.testing.zoo import ZooSpec

from .conftest import zoo_in_thread


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "uptimelab", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


def rows(db: Database, sql: str) -> int:
    with db.connect() as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(next(iter(row.values())))


def test_sites_commands_mirror_the_library(db: Database, tmp_path: Path) -> None:
    added = run("sites", "add", "https://example.org/", "--expect", "200,204", "--name", "ex")
    assert added.returncode == 0, added.stderr
    site = ul.get_site("https://example.org/", db=db)
    assert (site.name, site.expected_status) == ("ex", "200,204")
    listed = run("sites", "list", "--json")
    assert [s["url"] for s in json.loads(listed.stdout)] == ["https://example.org/"]
    assert run("sites", "disable", str(site.id)).returncode == 0
    assert ul.get_site(site.id, db=db).is_active is False
    assert run("sites", "enable", "https://example.org/").returncode == 0
    assert ul.get_site(site.id, db=db).is_active is True
    csv_file = tmp_path / "more.csv"
    csv_file.write_text("url,name\nhttps://a.example/,a\nhttps://b.example/,b\n")
    imported = run("sites", "import", str(csv_file))
    assert "added 2, updated 0" in imported.stdout
    assert run("sites", "remove", "https://example.org/", "--yes").returncode == 0
    assert len(ul.list_sites(db=db)) == 2


def test_sites_add_no_tls_verify_is_stored_and_listed_as_not_verified(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # whole URLs in the table
    assert run("sites", "add", "https://self-signed.example/", "--no-tls-verify").returncode == 0
    assert run("sites", "add", "https://checked.example/").returncode == 0
    assert ul.get_site("https://self-signed.example/", db=db).tls_verify is False
    assert ul.get_site("https://checked.example/", db=db).tls_verify is True
    listed = run("sites", "list")
    assert listed.returncode == 0, listed.stderr
    (unverified,) = [line for line in listed.stdout.splitlines() if "NOT VERIFIED" in line]
    assert "self-signed.example" in unverified
    as_json = {s["url"]: s["tls_verify"] for s in json.loads(run("sites", "list", "--json").stdout)}
    assert as_json == {"https://self-signed.example/": False, "https://checked.example/": True}


def test_names_from_outside_are_printed_as_typed_not_as_markup(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    name = "[b]x[/b]\\"  # rich markup, then a backslash that escaping alone would double
    site = ul.add_site("https://hostile.example/", name=name, db=db)
    with db.connect() as conn:  # down 10 and 5 minutes ago, up since: one outage
        for minutes, status in [(10, "down"), (5, "down"), (1, "up")]:
            conn.execute(
                "INSERT INTO pings (site_id, checked_at, status, status_code, response_time_ms,"
                " error_category, location, region_code) VALUES (%s, now() - make_interval("
                "mins => %s), %s, 200, 5, %s, '[i]eu', 'XX')",
                (site.id, minutes, status, None if status == "up" else "timeout"),
            )
    ul.refresh_stats(db=db)
    for args in (["sites", "list"], ["outages"], ["stats"], ["stats", "--location", "[i]eu"],
                 ["stats", "--quorum", "--quorum-k", "1"]):  # fmt: skip
        shown = run(*args)
        assert shown.returncode == 0, shown.stderr
        assert name in shown.stdout, args
    assert "[i]eu" in run("stats", "--location", "[i]eu").stdout  # a location is text from outside


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sites", "add", "example.org"), "error: invalid URL 'example.org': it has no scheme"),
        (("sites", "remove", "https://nowhere.example/"), "error: no site with url"),
        (
            ("sites", "add", "http://a.example/", "--expect", "2xx"),
            "error: invalid expected status",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    db: Database, args: tuple[str, ...], message: str
) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_a_bad_import_file_writes_nothing(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "sites.csv"
    path.write_text("url\nhttps://good.example/\nhttps://bad example/\n")
    result = run("sites", "import", str(path))
    assert result.returncode == 2
    assert "row 2" in result.stderr
    assert "nothing was imported" in result.stderr
    assert ul.list_sites(db=db) == []
    skipped = run("sites", "import", str(path), "--skip-invalid")
    assert skipped.returncode == 0
    assert "invalid 1" in skipped.stdout


@pytest.mark.parametrize(
    ("env", "option", "variable"),
    [
        ({"MONITORING_INTERVAL_MS": "1000"}, (), "MONITORING_INTERVAL_MS=1000"),
        ({}, ("--ping-timeout-ms", "400000"), "PING_TIMEOUT_MS=400000"),
        ({}, ("--max-concurrent-pings", "0"), "MAX_CONCURRENT_PINGS=0"),
        ({"MONITORING_LOCATION": ""}, (), "MONITORING_LOCATION=''"),
    ],
)
def test_a_bad_setting_exits_2_naming_the_variable_and_writes_nothing(
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    option: tuple[str, ...],
    variable: str,
) -> None:
    ul.add_site("http://127.0.0.1:9/", db=db)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = run("collect", "--once", *option)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {variable}: ")
    assert result.stderr.count("\n") == 1
    assert rows(db, "SELECT count(*) FROM pings") == 0
    assert rows(db, "SELECT count(*) FROM monitoring_cycles") == 0


def test_collect_once_and_dry_run(db: Database) -> None:
    with zoo_in_thread(ZooSpec.every_failure(duration_s=60)) as zoo:
        for target in zoo.targets:
            ul.add_site(target.url, name=target.name, db=db)
        dry = run("collect", "--dry-run", "--ping-timeout-ms", "700")
        assert dry.returncode == 0, dry.stderr
        assert "dry run, nothing stored" in dry.stdout
        assert "too_many_redirects" in dry.stdout
        assert "refused" in dry.stdout
        assert rows(db, "SELECT count(*) FROM pings") == 0
        once = run("collect", "--once", "--ping-timeout-ms", "700", "--monitoring-location", "CLI")
    assert once.returncode == 0, once.stderr
    assert f"{len(zoo.targets)} site(s)" in once.stdout
    assert rows(db, "SELECT count(*) FROM pings WHERE location = 'CLI'") == len(zoo.targets)


def test_a_signal_during_a_cycle_still_stores_what_was_probed(db: Database) -> None:
    spec = ZooSpec.every_failure(duration_s=60)
    with zoo_in_thread(spec) as zoo:
        fast = ["ok", "status", "refused", "redirect"]
        for name in [*fast, "hang"]:
            ul.add_site(zoo.url(name), name=name, db=db)
        proc = subprocess.Popen(
            [sys.executable, "-m", "uptimelab", "collect", "--ping-timeout-ms", "30000"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # Wait until the hang target is in flight (5 requests: ok, status, the redirect's
            # two, hang) and the client has read the 4 answers and closed after them: the fast
            # pings are done.
            deadline = time.monotonic() + 30
            while zoo.requests < 5 or zoo.responses_read < 4:
                assert time.monotonic() < deadline, (zoo.requests, zoo.responses_read)
                time.sleep(0.05)
            assert (zoo.requests, zoo.responses_read) == (5, 4)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    assert "SIGTERM" in out
    assert rows(db, "SELECT count(*) FROM pings") == len(fast)
    assert rows(db, "SELECT count(*) FROM monitoring_cycles WHERE error LIKE 'stopped%'") == 1


def test_db_url_masks_the_password(db: Database) -> None:
    result = run("--database-url", "postgresql://bob:secret@127.0.0.1:1/x", "db", "url")
    assert result.returncode == 0
    assert result.stdout.strip() == "postgresql://bob:***@127.0.0.1:1/x"


def test_an_unreachable_database_is_one_line_and_exit_code_1(db: Database) -> None:
    result = run("--database-url", "postgresql://bob:secret@127.0.0.1:1/x", "sites", "list")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot connect to postgresql://bob:***@127.0.0.1:1/x")
    assert result.stderr.count("\n") == 1
    assert "secret" not in result.stderr


def test_db_init_reports_the_schema_version(db: Database) -> None:
    result = run("db", "init")
    assert result.returncode == 0, result.stderr
    newest = migration_files()[-1][0]
    assert f"schema is up to date (version {newest})" in result.stdout


def test_the_demo_runs_offline(db: Database) -> None:
    result = run("demo", "--cycles", "1", "--sites", "5", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "too_many_redirects" in result.stdout
    every_failure = len(ZooSpec.every_failure().targets)  # one target of each behaviour
    assert rows(db, "SELECT count(*) FROM pings") == 5 + every_failure
    assert ul.list_sites(active=True, db=db) == []
