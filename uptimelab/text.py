"""Short text for people: a duration in a few characters, a message on one line, a spreadsheet
cell that stays text.

Pure helpers at the bottom of the package, beside ``config`` and ``errors``: anyone may import them,
and they import nothing of ours.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

__all__ = ["FORMULA_STARTS", "NOT_ON_ONE_LINE", "csv_cell", "one_line", "span", "uncsv_cell"]


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
