"""Bad input a new user met, fixed as classes: one line and exit code 2, never a traceback,
nothing written; and no data is no error (a message, exit code 0)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

import uptimelab as ul
from uptimelab.errors import SiteError
from uptimelab.storage.database import Database

from .test_bad_input import assert_one_error_line, run, site_count

MINUTE = dt.timedelta(minutes=1)


DAY = dt.datetime(2026, 10, 10, 12, tzinfo=dt.UTC)
MONTH = "2026-10"


def month_of_pings(db: Database, statuses: list[str], name: str = "few") -> str:
    """A site with these pings, a minute apart from noon on 10 October 2026; their month."""
    site = ul.add_site("https://few.example/", name=name, db=db)
    with db.connect() as conn:
        conn.execute("SELECT uptimelab_ensure_pings_partition(%s)", (DAY.date(),))
        for k, status in enumerate(statuses):
            conn.execute(
                "INSERT INTO pings (site_id, checked_at, status, status_code, response_time_ms,"
                " error_category, location, region_code) VALUES (%s, %s, %s, 200, 5, %s, 'here',"
                " 'XX')",
                (site.id, DAY + k * MINUTE, status, None if status == "up" else "timeout"),
            )
        conn.execute("SELECT uptimelab_advance_rollup(now())")
    return MONTH


@pytest.mark.parametrize("format", ["table", "json", "csv"])
def test_a_month_with_pings_is_shown_in_every_format(db: Database, format: str) -> None:
    month = month_of_pings(db, ["up", "up", "down"], name="three-pings")
    shown = run("stats", "--month", month, "--format", format)
    assert shown.returncode == 0, shown.stderr
    assert "three-pings" in shown.stdout
    assert shown.stderr == ""


@pytest.mark.parametrize("month", ["1999-01", "2000-02"])
@pytest.mark.parametrize(("format", "expected"), [("table", "no pings in "), ("json", "[]")])
def test_a_month_without_pings_is_a_message_not_an_error(
    db: Database, month: str, format: str, expected: str
) -> None:
    shown = run("stats", "--month", month, "--format", format)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(expected), shown.stdout
    assert shown.stderr == ""


@pytest.mark.parametrize("target", ["101", "100", "0", "-5"])
def test_a_target_outside_0_100_is_one_line_naming_the_option(db: Database, target: str) -> None:
    line = assert_one_error_line(run("stats", "--month", "2026-01", "--target", target), 2)
    assert line.startswith("error: --target="), line
    assert "between 0 and 100" in line


def test_the_month_sla_met_agrees_with_the_uptime_shown(db: Database) -> None:
    """Up in 1 of 17 pings: 5.88 %, not a 99.9 % target met (its down pings x interval would
    fit in the whole month's budget)."""
    month = month_of_pings(db, ["up"] + ["down"] * 16)
    shown = run("stats", "--month", month, "--format", "json", "--target", "99.9")
    assert shown.returncode == 0, shown.stderr
    (row,) = json.loads(shown.stdout)
    assert row["uptime_pct"] == pytest.approx(100 / 17, abs=0.01)
    assert row["met"] is False
    assert row["budget_left_min"] < 0


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["prune", "--keep", "99999999d", "--dry-run"], "--keep"),
        (["incidents", "--since", "99999999d"], "--since"),
        (["outages", "--since", "99999999d"], "--since"),
        (["report", "--out", "r.html", "--since", "99999999d"], "--since"),
        (["stats", "--window", "1000000d"], "--window"),
        (["stats", "refresh", "--every", "99999999d"], "--every"),
        (["maintain", "--every", "36526d"], "--every"),
        (["bench", "stats", "--every", "99999999d"], "--every"),
        (["perf", "--interval", "99999999d"], "--interval"),
        (["perf", "--collectors", "2", "--sites", "2", "--duration", "5300w"], "--duration"),
    ],
)
def test_a_duration_past_100_years_is_one_line_naming_the_option(
    db: Database, args: list[str], flag: str
) -> None:
    line = assert_one_error_line(run(*args), 2)
    assert line.startswith(f"error: {flag}='{args[args.index(flag) + 1]}': at most 100 years")
    assert site_count(db) == 0


def test_100_years_is_still_a_duration(db: Database) -> None:
    assert run("outages", "--since", "36525d").returncode == 0


def test_prune_echoes_the_keep_that_was_typed(db: Database) -> None:
    line = assert_one_error_line(run("prune", "--keep", "8h", "--dry-run"), 2)
    assert line.startswith("error: --keep='8h': must be at least 8 days"), line


def test_stats_of_a_location_without_pings_says_so(db: Database) -> None:
    month_of_pings(db, ["up"])
    shown = run("stats", "--location", "Nowhere")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "no pings from location 'Nowhere'"


@pytest.mark.parametrize("url", ["bogus://x", "tgram://not-a-bot-token"])
@pytest.mark.parametrize("entry", ["cli", "csv", "yaml", "python"])
def test_a_notify_url_apprise_does_not_know_is_refused_at_every_entry_point(
    db: Database, tmp_path: Path, url: str, entry: str
) -> None:
    scheme = url.partition("://")[0]
    if entry == "python":
        with pytest.raises(SiteError, match=rf"notify: URL 1 \({scheme}://\*\*\*\) is not a"):
            ul.add_site("https://n.example/", notify=[url], db=db)
    else:
        if entry == "cli":
            args = ["sites", "add", "https://n.example/", "--notify", url]
        else:
            path = tmp_path / f"sites.{entry}"
            path.write_text(
                f"url,notify\nhttps://n.example/,{url}\n"
                if entry == "csv"
                else f"- url: https://n.example/\n  notify: ['{url}']\n"
            )
            args = ["sites", "import", str(path)]
        line = assert_one_error_line(run(*args), 2)
        assert "is not a notification URL apprise knows" in line
        assert url.partition("://")[2] not in line  # the part that may be a token
    assert site_count(db) == 0


def test_a_notify_url_apprise_knows_is_taken(db: Database) -> None:
    site = ul.add_site("https://n.example/", notify=["json://127.0.0.1:1/hook"], db=db)
    assert site.notify == ["json://127.0.0.1:1/hook"]


@pytest.mark.parametrize("cron", ["bad", "61 * * * *", "* * * *", "0  3 * * 0"])
async def test_a_bad_cron_in_the_api_is_said_as_the_cli_says_it(db: Database, cron: str) -> None:
    from uptimelab.api.app import create_app
    from uptimelab.storage.maintenance_windows import list_maintenance

    from .test_api import TOKEN, load_settings, running

    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with running(create_app(load_settings(), db)) as client:
        answer = await client.post(
            "/maintenance", json={"cron": cron, "duration_ms": 60_000}, headers=auth
        )
    assert answer.status_code == 422
    message = answer.json()["message"]
    assert message.startswith(f"recurring.cron: cron {cron!r}: "), message
    assert "ends_at" not in message
    assert "pattern" not in message
    assert list_maintenance(db=db) == []


def test_a_month_begun_under_an_hour_ago_is_one_line_not_a_window_error(db: Database) -> None:
    from uptimelab import analysis
    from uptimelab.errors import ConfigError

    early = dt.datetime(2026, 10, 1, 0, 14, tzinfo=dt.UTC)
    with pytest.raises(ConfigError, match=r"month '2026-10' began less than an hour ago: .* 01:00"):
        analysis.month_table(db, MONTH, now=early)
    assert len(analysis.month_table(db, MONTH, now=early + dt.timedelta(hours=1))) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["maintenance", "remove", "abc"], "error: Invalid value for 'window_id': "),
        (["sites", "add", "https://n.example/", "--interval-ms", "abc"], "error: Invalid value "),
        (["stats", "--format", "bogus"], "error: Invalid value for '--format': "),
        (["prune"], "error: Missing option '--keep'"),
        (["nosuch"], "error: No such command 'nosuch'"),
    ],
)
def test_a_value_typer_cannot_parse_is_one_line_too(
    db: Database, args: list[str], message: str
) -> None:
    line = assert_one_error_line(run(*args), 2)
    assert line.startswith(message), line
    assert site_count(db) == 0


def test_help_and_a_bare_command_show_the_usage_as_before() -> None:
    assert run("--help").returncode == 0
    bare = run()
    assert bare.returncode == 2
    assert "Usage: uptimelab" in bare.stdout + bare.stderr


def test_a_command_s_own_exit_code_is_kept() -> None:
    """validate ends with typer.Exit(1) when a check fails: not standalone, still exit 1."""
    done = run("validate", env={"UPTIMELAB_DATABASE_URL": "postgresql://root@127.0.0.1:1/nope"})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
