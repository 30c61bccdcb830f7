"""``uptimelab validate``: can uptimelab work here? Database, HTTP client, lock, speed, settings."""

from __future__ import annotations

import typer

from ..ops.validate import Check, ValidationReport
from ..ops.validate import validate as run_validation
from ._common import console, state


def validate(ctx: typer.Context) -> None:
    """Check the database and its schema, the HTTP client's categories, the cycle lock, speed
    and the settings; one line per check. Exit code 0 only when every check passes."""
    report = run_validation(database_url=state(ctx).database_url)
    width = max((len(c.name) for c in report.checks), default=0)
    for check in report.checks:
        console.print(check_line(check, width), markup=False, soft_wrap=True)
    console.print(summary_line(report), markup=False, soft_wrap=True)
    if not report.passed:
        raise typer.Exit(1)


def check_line(check: Check, width: int = 0) -> str:
    """``PASS  database  0.02 s  schema version 3 of 3``, the name padded to ``width``."""
    verdict = "PASS" if check.passed else "FAIL"
    return f"{verdict}  {check.name:<{width}}  {check.seconds:.2f} s  {check.detail}"


def summary_line(report: ValidationReport) -> str:
    total = len(report.checks)
    if report.passed:
        return f"all {total} checks passed in {report.seconds:.2f} s"
    failed = [c.name for c in report.checks if not c.passed]
    return f"{len(failed)} of {total} checks failed ({', '.join(failed)}) in {report.seconds:.2f} s"
