"""``uptimelab validate``: every check passes on a working setup, and each failure stays its own."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections.abc import Callable
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

import uptimelab.collector.collector
import uptimelab.ops.validate
import uptimelab.probe.prober
from uptimelab.cli._common import State
from uptimelab.cli.validate import validate as validate_command
from uptimelab.ops.validate import Check, ValidationReport, validate
from uptimelab.storage.database import Database, migration_files
from uptimelab.testing.zoo import ZooSpec

pytestmark = pytest.mark.serial  # timing-sensitive: `make test` runs it after the parallel part

CHECKS = ["database", "http client", "in-memory lock", "performance", "configuration"]
NEWEST = max(version for version, _ in migration_files())
UNREACHABLE = "postgresql://127.0.0.1:1/x"


def by_name(report: ValidationReport) -> dict[str, Check]:
    assert [c.name for c in report.checks] == CHECKS
    return {c.name: c for c in report.checks}


def rows(db: Database, table: str) -> int:
    with db.connect() as conn:
        row = conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()
    assert row is not None
    return int(row["n"])


def cli() -> typer.Typer:
    """The command under a root like the real one's, which only sets the database URL."""
    app = typer.Typer()

    @app.callback()
    def root(
        ctx: typer.Context, database_url: Annotated[str | None, typer.Option()] = None
    ) -> None:
        ctx.obj = State(database_url=database_url)

    app.command("validate")(validate_command)
    return app


def test_every_check_passes_on_a_working_setup_and_nothing_is_written(db: Database) -> None:
    async def in_a_notebook() -> ValidationReport:
        # A notebook cell: an asyncio loop runs in this thread, and the sync API still works.
        return validate(db=db)

    report = asyncio.run(in_a_notebook())
    checks = by_name(report)
    assert report.passed, report.checks
    assert checks["database"].detail == f"schema version {NEWEST} of {NEWEST}"
    targets = len(ZooSpec.every_failure().targets)  # one of each behaviour
    assert checks["http client"].detail.startswith(f"{targets} targets, each categorised right")
    assert "refused" in checks["in-memory lock"].detail
    assert re.search(r"\d+ pings/s", checks["performance"].detail)
    assert all(c.seconds > 0 for c in report.checks)
    for table in ("sites", "pings", "monitoring_cycles"):
        assert rows(db, table) == 0


def test_a_database_without_the_schema_fails_and_says_what_to_run(
    create_database: Callable[[], str],
) -> None:
    report = validate(database_url=create_database())
    database = by_name(report)["database"]
    assert not database.passed
    assert database.detail == f"no schema (version 0 of {NEWEST}): run `uptimelab db init`"


def test_a_database_that_never_answers_fails_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(uptimelab.ops.validate, "DATABASE_TIMEOUT_S", 0.5)
    # Accepts connections (the kernel does, from the backlog) and never says a word.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        report = validate(database_url=f"postgresql://nobody@127.0.0.1:{port}/x")
    database = by_name(report)["database"]
    assert not database.passed
    assert database.detail == "did not finish within 0.5 s"


def test_each_broken_part_fails_its_own_check_and_only_that_one(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uptimelab.probe.prober, "categorise", lambda exc: ("dns", "always dns"))
    # A reentrant lock lets a second trigger from the same thread through.
    monkeypatch.setattr(uptimelab.collector.collector, "_CYCLE_LOCK", threading.RLock())
    monkeypatch.setenv("MONITORING_INTERVAL_MS", "1000")
    report = validate(db=db)
    checks = by_name(report)
    assert [c.name for c in report.checks if not c.passed] == [
        "http client",
        "in-memory lock",
        "configuration",
    ]
    http = checks["http client"].detail
    assert "refused expected refused, got dns (always dns)" in http
    assert "dns expected" not in http  # the one it still gets right is not listed
    assert checks["in-memory lock"].detail.startswith("a second trigger during a cycle was not")
    assert checks["configuration"].detail.startswith(
        "the environment breaks a rule: MONITORING_INTERVAL_MS=1000"
    )
    assert all("\n" not in c.detail for c in report.checks)


def test_the_command_prints_a_line_per_check_and_exits_0_when_all_pass(db: Database) -> None:
    result = CliRunner().invoke(cli(), ["validate"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == len(CHECKS) + 1
    assert re.fullmatch(
        rf"PASS  database +\d+\.\d\d s  schema version {NEWEST} of {NEWEST}", lines[0]
    )
    for line, name in zip(lines, CHECKS, strict=False):
        assert line.startswith(f"PASS  {name} ")
    assert re.fullmatch(r"all 5 checks passed in \d+\.\d\d s", lines[-1])


def test_an_unreachable_database_fails_its_check_the_others_pass_and_the_exit_code_is_1() -> None:
    result = CliRunner().invoke(cli(), ["--database-url", UNREACHABLE, "validate"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert len(lines) == len(CHECKS) + 1
    assert lines[0].startswith("FAIL  database ")
    assert "cannot connect to postgresql://127.0.0.1:1/x" in lines[0]
    for line, name in zip(lines[1:], CHECKS[1:], strict=False):
        assert line.startswith(f"PASS  {name} ")
    assert re.fullmatch(r"1 of 5 checks failed \(database\) in \d+\.\d\d s", lines[-1])
