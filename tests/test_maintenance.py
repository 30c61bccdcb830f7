"""Maintenance windows: one-off and recurring, exact at their edges; the CLI and the library."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

import uptimelab as ul
from uptimelab.domain.maintenance import (
    MaintenanceError,
    MaintenanceWindow,
    UnknownMaintenanceError,
    check_cron,
)
from uptimelab.storage.database import Database
from uptimelab.storage.maintenance_windows import (
    add_maintenance,
    in_maintenance,
    in_maintenance_batch,
    list_maintenance,
    remove_maintenance,
)

from .test_incidents import run_cli

US = dt.timedelta(microseconds=1)
MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
START = dt.datetime(2026, 11, 1, 0, 0, tzinfo=dt.UTC)  # a Sunday


def test_a_one_off_window_is_half_open(db: Database) -> None:
    site = ul.add_site("https://a.example/", db=db).id
    other = ul.add_site("https://b.example/", db=db).id
    begin, end = START + 2 * HOUR, START + 3 * HOUR
    add_maintenance(site=site, starts_at=begin, ends_at=end, reason="upgrade", db=db)
    cases = {begin - US: False, begin: True, end - US: True, end: False}
    assert {at: in_maintenance(db, site, at) for at in cases} == cases
    assert not in_maintenance(db, other, begin)  # its own window only
    assert in_maintenance_batch(db, [(site, begin), (other, begin), (site, end)]) == [
        True, False, False,
    ]  # fmt: skip


def test_a_window_of_every_site_applies_to_each(db: Database) -> None:
    sites = [ul.add_site(f"https://{n}.example/", db=db).id for n in "ab"]
    add_maintenance(starts_at=START, ends_at=START + HOUR, db=db)
    with db.connect() as conn:  # a connection the caller holds works too
        assert [in_maintenance(conn, s, START) for s in sites] == [True, True]


def test_a_recurring_window_opens_at_each_cron_time_for_its_duration(db: Database) -> None:
    site = ul.add_site("https://a.example/", db=db).id
    # Sundays 03:00 UTC for two hours, from November 1st until the end of November 15th.
    add_maintenance(
        site=site, starts_at=START, ends_at=START + dt.timedelta(days=15),
        cron="0 3 * * 0", duration_ms=2 * 3_600_000, db=db,
    )  # fmt: skip
    sunday = START + 3 * HOUR
    cases = {
        sunday - US: False,
        sunday: True,
        sunday + 2 * HOUR - US: True,
        sunday + 2 * HOUR: False,
        sunday + dt.timedelta(days=3): False,  # a Wednesday
        sunday + dt.timedelta(days=7): True,
        sunday + dt.timedelta(days=7, hours=2) - US: True,
        sunday + dt.timedelta(days=14): True,  # the 15th: opened before ends_at
        sunday + dt.timedelta(days=14, hours=1): True,
        sunday + dt.timedelta(days=21): False,  # ends_at has passed
    }
    assert {at: in_maintenance(db, site, at) for at in cases} == cases


def test_a_recurring_window_does_not_open_before_it_starts() -> None:
    window = MaintenanceWindow(
        id=1, site_id=None, starts_at=START + 3 * HOUR + MINUTE, ends_at=None,
        cron="0 3 * * *", duration_ms=3_600_000, reason=None,
    )  # fmt: skip
    # The 03:00 opening of the first day is before starts_at: only the next day's counts.
    assert not window.contains(START + 3 * HOUR + 2 * MINUTE)
    assert window.contains(START + dt.timedelta(days=1, hours=3))


CRONS = ["*/15 * * * *", "0 3 * * 0", "30 1,13 * * *", "0 0 1 * *", "5-10 2 * * 1-5", "0 */6 * * *"]


@settings(max_examples=200, deadline=None)
@given(
    cron=st.sampled_from(CRONS),
    duration_min=st.integers(1, 600),
    at_s=st.integers(0, 40 * 86400),
    begin_s=st.integers(0, 5 * 86400),
    end_s=st.one_of(st.none(), st.integers(1, 40 * 86400)),
)
def test_contains_agrees_with_walking_croniter_forward(
    cron: str, duration_min: int, at_s: int, begin_s: int, end_s: int | None
) -> None:
    begin = START + dt.timedelta(seconds=begin_s)
    end = None if end_s is None else begin + dt.timedelta(seconds=end_s)
    at = START + dt.timedelta(seconds=at_s)
    window = MaintenanceWindow(
        id=1, site_id=None, starts_at=begin, ends_at=end, cron=cron,
        duration_ms=duration_min * 60_000, reason=None,
    )  # fmt: skip
    # The oracle: every opening from starts_at on, while it is before ends_at and at.
    length = dt.timedelta(minutes=duration_min)
    expected = False
    walk = croniter(cron, begin - US)
    while (opened := walk.get_next(dt.datetime)) <= at and (end is None or opened < end):
        expected = expected or at < opened + length
    assert window.contains(at) is expected


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"ends_at": None}, "ends_at"),
        ({"ends_at": START - HOUR}, "ends_at must be after starts_at"),
        ({"cron": "0 3 * * 0"}, "duration_ms"),
        ({"cron": "0 3 * *", "duration_ms": 60_000}, "cron"),
        ({"cron": "0 25 * * *", "duration_ms": 60_000}, "cron"),
        ({"cron": "@daily", "duration_ms": 60_000}, "cron"),
        ({"cron": "0 3 * * MON", "duration_ms": 60_000}, "cron"),
        ({"cron": "0 3 * * 0", "duration_ms": 999}, "duration_ms"),
        ({"cron": "0 3 * * 0", "duration_ms": 32 * 86_400_000}, "duration_ms"),
        ({"ends_at": START + HOUR, "duration_ms": 60_000}, "duration_ms goes with cron"),
        ({"ends_at": START + HOUR, "reason": "x" * 501}, "reason"),
    ],
)
def test_a_window_that_breaks_a_rule_is_refused_and_nothing_is_written(
    db: Database, values: dict[str, object], named: str
) -> None:
    with pytest.raises(MaintenanceError, match=named):
        add_maintenance(starts_at=START, **values, db=db)  # type: ignore[arg-type]
    assert list_maintenance(db=db) == []


def test_cron_expressions_are_normalised() -> None:
    assert check_cron(" 0  3 * *   0 ") == "0 3 * * 0"


def test_the_maintenance_commands_add_list_and_remove(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    ul.add_site("https://a.example/", db=db)
    code, out, err = run_cli(
        capsys, "maintenance", "add", "--site", "https://a.example/",
        "--starts-at", "2026-11-01T03:00", "--ends-at", "2026-11-01T05:00Z", "--reason", "db",
    )  # fmt: skip
    assert code == 0, err
    assert "added maintenance window" in out
    code, out, err = run_cli(
        capsys, "maintenance", "add", "--cron", "0 3 * * 0", "--duration-ms", "7200000",
    )  # fmt: skip
    assert code == 0, err
    windows = list_maintenance(db=db)
    assert [(w.cron, w.starts_at, w.ends_at) for w in windows][0] == (
        None, START + 3 * HOUR, START + 5 * HOUR,
    )  # fmt: skip
    assert windows[1].site_id is None
    code, out, _ = run_cli(capsys, "maintenance", "list", "--json")
    assert [w["reason"] for w in json.loads(out)] == ["db", None]
    code, out, _ = run_cli(capsys, "maintenance", "list")
    assert "'0 3 * * 0' for 2h" in out
    code, out, err = run_cli(capsys, "maintenance", "remove", str(windows[0].id))
    assert code == 0, err
    assert [w.id for w in list_maintenance(db=db)] == [windows[1].id]
    code, _, err = run_cli(capsys, "maintenance", "remove", str(windows[0].id))
    assert code == 2
    assert err == f"error: no maintenance window has id {windows[0].id}\n"
    for bad in (["--ends-at", "tomorrow"], ["--cron", "0 3 * * 0"]):
        code, _, err = run_cli(capsys, "maintenance", "add", *bad)
        assert code == 2
        assert err.startswith("error: ")
        assert err.count("\n") == 1
    assert len(list_maintenance(db=db)) == 1


def test_removing_an_unknown_window_says_so(db: Database) -> None:
    with pytest.raises(UnknownMaintenanceError):
        remove_maintenance(12345, db=db)


def test_windows_of_a_site_listed_for_it_and_gone_with_it(db: Database) -> None:
    a = ul.add_site("https://a.example/", db=db)
    b = ul.add_site("https://b.example/", db=db)
    mine = add_maintenance(site=a.id, starts_at=START, ends_at=START + HOUR, db=db)
    every = add_maintenance(starts_at=START, ends_at=START + HOUR, db=db)
    add_maintenance(site=b.id, starts_at=START, ends_at=START + HOUR, db=db)
    assert [w.id for w in list_maintenance(site=a.url, db=db)] == [mine.id, every.id]
    assert list_maintenance(current_at=START + 2 * HOUR, db=db) == []
    ul.remove_site(a.url, db=db)
    assert {w.site_id for w in list_maintenance(db=db)} == {None, b.id}
    assert all(isinstance(w.site_id, uuid.UUID | None) for w in list_maintenance(db=db))
