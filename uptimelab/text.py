"""Short text for people: a duration in a few characters, a message on one line, a spreadsheet
cell that stays text.

Pure helpers at the bottom of the package, beside ``config`` and ``errors``: anyone may import them,
and they import nothing of ours.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "FORMULA_STARTS",
    "NOT_ON_ONE_LINE",
    "csv_cell",
    "one_line",
    "rule_broken",
    "span",
    "uncsv_cell",
]


def span(delta: dt.timedelta) -> str:
    """``delta`` (a timedelta or pandas Timedelta, not negative) in its largest units, trailing
    zero units dropped: ``2d03h10m``, ``1h05m``, ``1h``, ``3m05s``, ``5m``, ``42s``.

    Days and hours are shown to the minute, minutes to the second; the rest is cut off.
    """
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        parts = [(days, "d"), (hours, "h"), (minutes, "m")]
    elif hours:
        parts = [(hours, "h"), (minutes, "m")]
    elif minutes:
        parts = [(minutes, "m"), (secs, "s")]
    else:
        return f"{secs}s"
    while parts[-1][0] == 0:
        parts.pop()
    (first, unit), *more = parts
    return f"{first}{unit}" + "".join(f"{n:02d}{u}" for n, u in more)


def one_line(text: object, limit: int = 200) -> str:
    """``str(text)`` with every run of whitespace (newlines too) as one space, cut to ``limit``
    characters (the last three then "...")."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


NOT_ON_ONE_LINE: Final = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
"""What free text shown on one line (a name, a reason, a location) may not hold: control
characters (a newline splits a table's row) and lone surrogates (not storable as UTF-8)."""


# pydantic's error types, said as the CLI says a rule ("must be at most 3650"), not as pydantic
# does ("Input should be less than or equal to 3650"); the context's values fill the braces.
_RULES: Final = {
    "greater_than": "must be above {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be below {lt}",
    "less_than_equal": "must be at most {le}",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be text",
    "string_too_short": "must be at least {min_length} character(s)",
    "string_too_long": "must be at most {max_length} characters",
    "too_long": "must have at most {max_length} item(s)",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "json_invalid": "is not valid JSON",
    "uuid_parsing": "must be a UUID",
    "uuid_type": "must be a UUID",
    "datetime_parsing": "must be an ISO 8601 time, e.g. 2026-12-01T03:00Z",
    "datetime_from_date_parsing": "must be an ISO 8601 time, e.g. 2026-12-01T03:00Z",
    "timezone_aware": "must carry a time zone, e.g. 2026-12-01T03:00Z",
    "literal_error": "use {expected}",
    "enum": "use {expected}",
}


def rule_broken(error: Mapping[str, Any]) -> str:
    """The rule one of pydantic's errors (an item of ``ValidationError.errors()``) says was
    broken, in the CLI's words: "must be at most 3650"; a message of our own validators (a
    ValueError's text) as it is, its first letter in lower case."""
    template = _RULES.get(str(error.get("type")))
    if template is not None:
        try:
            return template.format(**(error.get("ctx") or {}))
        except (KeyError, IndexError):
            pass
    message = str(error.get("msg") or "invalid")
    message = message.removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


# What a spreadsheet reads as the start of a formula in a cell it imports from CSV (OWASP, "CSV
# Injection"): a site named '=HYPERLINK(...)' must not become a link, nor '@SUM(A1)' a sum.
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """``value`` as a CSV cell a spreadsheet shows as typed: text starting with one of
    :data:`FORMULA_STARTS`, or with a quote, gets a leading ``'``; anything else (numbers, None)
    is returned as it is.

    A leading quote is doubled too, so that :func:`uncsv_cell` gives every text back exactly.
    """
    if isinstance(value, str) and value.startswith((*FORMULA_STARTS, "'")):
        return "'" + value
    return value


def uncsv_cell(value: object) -> object:
    """The text :func:`csv_cell` was given: one leading ``'`` removed from text."""
    if isinstance(value, str) and value.startswith("'"):
        return value[1:]
    return value
