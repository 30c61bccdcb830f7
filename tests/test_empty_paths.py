"""A path given empty (an option, an argument, ARCHIVE_DIR) is bad input: one line, exit 2,
nothing done; pathlib would read it as the current directory."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

import uptimelab as ul
from uptimelab.storage.database import Database
from uptimelab.storage.retention import pruned_days


def run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "uptimelab", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def old_day(db: Database) -> dt.date:
    """A site with one ping 20 days ago: a day `prune --keep 10d` takes."""
    site = ul.add_site("https://old.example/", db=db)
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=20)
    with db.connect() as conn:
        conn.execute("SELECT uptimelab_ensure_pings_partition(%s)", (day,))
        conn.execute(
            "INSERT INTO pings (site_id, checked_at, status, status_code, response_time_ms,"
            " location, region_code) VALUES (%s, %s, 'up', 200, 5, 'here', 'XX')",
            (site.id, dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)),
        )
    return day


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["prune", "--keep", "10d", "--archive", ""], "--archive"),
        (["prune", "--keep", "10d", "--archive", "  "], "--archive"),
        (["prune", "--keep", "10d", "--archive", "", "--dry-run"], "--archive"),
        (["perf", "--json", ""], "--json"),
        (["perf", "--plot", ""], "--plot"),
        (["report", "--out", ""], "--out"),
        (["report", "--out", "", "--format", "csv"], "--out"),
        (["sites", "import", ""], "path"),
        (["sites", "export", ""], "path"),
    ],
)
def test_an_empty_path_option_is_one_line_exit_2_and_nothing_done(
    db: Database, tmp_path: Path, args: list[str], flag: str
) -> None:
    old_day(db)
    out = run(tmp_path, *args)
    assert out.returncode == 2, out.stderr
    assert out.stderr == f"error: Invalid value for '{flag}': is empty: give a path\n"
    assert list(tmp_path.iterdir()) == []  # nothing written in the current directory
    assert pruned_days(db) == []
    assert len(ul.stats.load_pings(db, archive_dir=tmp_path)) == 1  # the day is still there


@pytest.mark.parametrize("value", ["", " "])
@pytest.mark.parametrize("args", [["prune", "--keep", "10d", "--yes"], ["maintain"], ["status"]])
def test_an_empty_archive_dir_is_one_line_exit_2_and_nothing_done(
    db: Database, tmp_path: Path, value: str, args: list[str]
) -> None:
    old_day(db)
    out = run(tmp_path, *args, env={"ARCHIVE_DIR": value, "RETENTION_DAYS": "10"})
    assert out.returncode == 2, out.stderr
    assert out.stderr == f"error: ARCHIVE_DIR={value!r}: is empty: unset it, or give a directory\n"
    assert list(tmp_path.iterdir()) == []
    assert pruned_days(db) == []


def test_a_relative_archive_is_used_and_shown_as_an_absolute_path(
    db: Database, tmp_path: Path
) -> None:
    day = old_day(db)
    out = run(tmp_path, "prune", "--keep", "10d", "--archive", "arch")
    assert out.returncode == 0, out.stderr
    assert f"archived to {tmp_path / 'arch' / 'pings'}" in out.stdout
    # (other tests' empty partitions go too)
    (pruned,) = [p for p in pruned_days(db) if p.day == day]
    assert pruned.archive_file is not None
    assert (tmp_path / "arch" / pruned.archive_file).is_file()
