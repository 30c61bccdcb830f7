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
