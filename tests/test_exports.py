"""What the CSV exports and the report's output paths guarantee: a spreadsheet runs no formula
from a site's name, numbers stay numbers, and an output path that cannot be written gives one
line and an exit code, leaving no file behind."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from uptimelab import report
from uptimelab.report.export import csv_safe
from uptimelab.report.files import write_whole
from uptimelab.storage.database import Database, connect
from uptimelab.storage.sites import list_sites
from uptimelab.testing.history import write_history
from uptimelab.text import FORMULA_STARTS, csv_cell, uncsv_cell

# A spreadsheet runs each of these as a formula (OWASP, "CSV Injection"), tab and CR included.
FORMULAS = {
    "=": '=HYPERLINK("http://x")',
    "+": "+1",
    "-": "-cmd",
    "@": "@SUM(A1)",
    "tab": "\t=1+1",
    "cr": "\r=1+1",
}
# Per command: the CSV column with the site's name, and the columns that hold numbers.
COLUMNS = {
    "stats": ("name", ("uptime_1h", "uptime_24h", "uptime_7d", "pings_1h", "pings_24h")),
    "outages": ("site", ("pings_down",)),
    "report": ("site", ("pings", "uptime_pct", "outages", "mttr_s", "p50_ms", "p99_ms")),
}


@pytest.fixture(scope="module")
def history(create_database: Any) -> Iterator[tuple[Database, str]]:
    """A database of its own with a synthetic day of 8 sites, and the id of a site that had an
    outage (so that it is in every CSV)."""
    db = connect(create_database("uptimelab_exports"))
    summary = write_history(db, "1d", sites=8, seed=7)
    down = next(i.site for i in summary.incidents if i.kind == "outage")
    site_id = next(str(s.id) for s in list_sites(db=db) if s.name == down)
    yield db, site_id
    db.close()


@pytest.fixture
def rename(history: tuple[Database, str]) -> Iterator[Callable[[str], None]]:
    """Rename the outage site of ``history``; its name is restored afterwards."""
    db, site_id = history
    before = next(s.name for s in list_sites(db=db) if str(s.id) == site_id)

    def set_name(name: str | None) -> None:
        # SQL rather than the library: the library refuses a name with a tab or a CR, but
        # another client, or a name stored before that rule, can still put one in the table.
        with db.connect() as conn:
            conn.execute("UPDATE sites SET name = %s WHERE id = %s", (name, site_id))

    yield set_name
    set_name(before)


def run(db: Database, *args: str) -> subprocess.CompletedProcess[bytes]:
    # Bytes: text mode would turn a CR inside a quoted cell into a newline.
    return subprocess.run(
        [sys.executable, "-m", "uptimelab", "--database-url", db.url, *args],
        capture_output=True,
        timeout=120,
        env=os.environ.copy(),
    )


def csv_rows(command: str, db: Database, out: Path) -> list[dict[str, str]]:
    """The CSV rows ``uptimelab <command> --format csv`` gives (for ``report``: stats.csv)."""
    if command == "report":
        done = run(db, "report", "--format", "csv", "--since", "7d", "--out", str(out))
        assert done.returncode == 0, done.stderr
        text = (out / "stats.csv").read_bytes().decode("utf-8")
    else:
        done = run(db, command, "--format", "csv")
        assert done.returncode == 0, done.stderr
        text = done.stdout.decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("lead", FORMULAS)
@pytest.mark.parametrize("command", COLUMNS)
def test_a_csv_shows_a_formula_like_name_as_text_and_numbers_as_numbers(
    history: tuple[Database, str],
    rename: Callable[[str], None],
    tmp_path: Path,
    command: str,
    lead: str,
) -> None:
    db, site_id = history
    name = FORMULAS[lead]
    rename(name)
    rows = csv_rows(command, db, tmp_path / "export")
    column, numbers = COLUMNS[command]
    mine = [row for row in rows if row["site_id"] == site_id]
    assert mine
    assert all(row[column] == "'" + name for row in mine)
    for row in rows:
        for number in numbers:
            if row[number] != "":  # no pings, no percentile
                float(row[number])  # raises on "'1.5"
    if command == "report":  # the library reads its export back as it was
        back = report.read_export(tmp_path / "export")
        assert back["stats"].set_index("site_id").loc[site_id, "site"] == name
        assert (back["outages"].loc[back["outages"]["site_id"] == site_id, "site"] == name).all()


def test_only_text_cells_are_neutralised_and_negative_numbers_stay_numbers() -> None:
    frame = pd.DataFrame(
        {"n": [-1.5, 2.0], "k": [-3, 4], "t": ["-1.5", "'quoted"], "ok": [True, False]}
    )
    written = csv_safe(frame).to_csv(index=False)
    assert written.splitlines() == ["n,k,t,ok", "-1.5,-3,'-1.5,True", "2.0,4,''quoted,False"]
    assert frame["t"].tolist() == ["-1.5", "'quoted"]  # the caller's frame is left alone


@pytest.mark.parametrize(
    "text", [*FORMULAS.values(), "'", "''=", "plain", "a=b", " =1", "", "-"], ids=repr
)
def test_uncsv_cell_gives_back_what_csv_cell_was_given(text: str) -> None:
    cell = csv_cell(text)
    assert isinstance(cell, str)
    assert not cell.startswith(FORMULA_STARTS)
    assert uncsv_cell(cell) == text


# -- the report's output path --------------------------------------------------------------


def error_line(done: subprocess.CompletedProcess[bytes]) -> str:
    """The one line a failed command writes (asserting it is one line, not a traceback)."""
    stderr = done.stderr.decode("utf-8")
    assert stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    assert stderr.startswith("error: ")
    return stderr.strip()


@pytest.mark.parametrize("format", ["html", "csv"])
def test_a_report_into_proc_is_an_environment_failure(
    history: tuple[Database, str], format: str
) -> None:
    db, _ = history
    out = "/proc/uptimelab-report" + (".html" if format == "html" else "")
    done = run(db, "report", "--format", format, "--out", out)
    assert done.returncode == 1
    assert error_line(done) == f"error: cannot write the report to {out}: No such file or directory"
    assert not Path(out).exists()


def test_a_report_the_system_refuses_says_why(history: tuple[Database, str]) -> None:
    db, _ = history
    # sysfs is read-only, even to root.
    done = run(db, "report", "--out", "/sys/uptimelab-report.html")
    assert done.returncode == 1
    assert error_line(done) == (
        "error: cannot write the report to /sys/uptimelab-report.html: Permission denied"
    )


@pytest.mark.parametrize("format", ["html", "csv"])
@pytest.mark.parametrize("depth", ["file/report", "file/more/report"])
def test_a_report_through_a_file_is_bad_input(
    history: tuple[Database, str], tmp_path: Path, format: str, depth: str
) -> None:
    db, _ = history
    (tmp_path / "file").write_text("kept")
    out = tmp_path / depth
    done = run(db, "report", "--format", format, "--out", str(out))
    assert done.returncode == 2
    assert error_line(done) == (
        f"error: --out={str(out)!r}: {tmp_path / 'file'} is a file, not a directory"
    )
    assert (tmp_path / "file").read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.parametrize("format", ["html", "csv"])
def test_a_report_into_missing_directories_creates_them(
    history: tuple[Database, str], tmp_path: Path, format: str
) -> None:
    db, _ = history
    out = tmp_path / "a" / "b" / ("report.html" if format == "html" else "export")
    done = run(db, "report", "--format", format, "--out", str(out))
    assert done.returncode == 0, done.stderr
    if format == "html":
        assert out.read_bytes().startswith(b"<!DOCTYPE html>")
        assert os.listdir(out.parent) == ["report.html"]  # no temporary file left
    else:
        assert sorted(os.listdir(out)) == ["outages.csv", "pings.csv", "stats.csv"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text("old")

    def half_then_fail(handle: Any) -> None:
        handle.write(b"<html>half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_whole(path, half_then_fail)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["report.html"]
    write_whole(path, lambda handle: handle.write(b"new"))
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["report.html"]
