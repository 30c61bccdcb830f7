"""A new user's second trial, CLI and operations: every repeating option has one lower bound,
free text is one line, settings and URLs typed wrong are bad input (exit 2)."""

from __future__ import annotations

import pytest

from uptimelab.storage.database import Database

from .test_bad_input import assert_one_error_line, run, site_count


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
