"""Frames as styled HTML tables: the notebooks show them (``uptimelab.analysis.html_table``), and
the report embeds them."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from ..analytics.tables import DEFAULT_TARGET
from ..text import span

__all__ = ["HtmlTable", "html_table"]


@dataclass(frozen=True)
class HtmlTable:
    """An HTML table with inline styles; Jupyter shows it as a table."""

    html: str

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.html


def html_table(
    frame: pd.DataFrame,
    *,
    percent: Iterable[str] = (),
    target: float = DEFAULT_TARGET,
    caption: str | None = None,
    max_rows: int | None = None,
) -> HtmlTable:
    """``frame`` as a styled HTML table (its index is not shown).

    ``percent`` columns have three decimals (as has any ``*_pct`` column) and a background: green
    at ``target`` or above, amber less than one point below it, red further below. A
    ``current_status`` or ``status`` of down, a ``met`` of False and a ``regressed`` or ``ongoing``
    of True are red. Times show as ``YYYY-MM-DD HH:MM`` UTC, durations as ``1h05m``, other floats
    with one decimal, missing values as a dash.
    """
    percent = set(percent)
    shown = frame if max_rows is None else frame.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = []
    for row in shown.itertuples(index=False):
        cells = []
        for column, value in zip(shown.columns, row, strict=True):
            style = _cell_style(str(column), value, percent, target)
            is_pct = str(column) in percent or str(column).endswith("_pct")
            text = html.escape(_cell_text(value, percent=is_pct))
            cells.append(f'<td style="{style}">{text}</td>' if style else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if max_rows is not None and len(frame) > max_rows:
        more = f'<p class="note">{len(frame) - max_rows} more row(s) not shown.</p>'
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return HtmlTable(
        f'<table class="ul-table" style="{_TABLE_STYLE}">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{more}"
    )


_TABLE_STYLE: Final = "border-collapse:collapse;font-size:0.85em;text-align:right"
_GOOD: Final = "background:#d9f2d9"
_WARN: Final = "background:#fff0c2"
_BAD: Final = "background:#f8d0d0;font-weight:bold"


def _cell_style(column: str, value: Any, percent: set[str], target: float) -> str:
    if _missing(value):
        return ""
    if column in percent:
        number = float(value)
        return _GOOD if number >= target else _WARN if number >= target - 1 else _BAD
    if column in ("current_status", "status") and value == "down":
        return _BAD
    if column in ("met", "regressed", "ongoing"):
        bad = (value is False) if column == "met" else (value is True)
        return _BAD if bad else ""
    return ""


def _cell_text(value: Any, *, percent: bool) -> str:
    if _missing(value):
        return "–"
    if isinstance(value, pd.Timestamp | dt.datetime):
        return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M")
    if isinstance(value, pd.Timedelta | dt.timedelta):
        return span(pd.Timedelta(value))
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{value:.3f}" if percent else f"{value:,.1f}"
    return str(value)


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
