"""The report: the notebooks' content as one self-contained HTML file, or a period's data as files.

:func:`write_report` is what ``uptimelab report`` calls. With ``format="html"`` it writes one file
with every plot embedded as a base64 PNG and the styles inline, so it opens anywhere without a
network; the page's markup is in ``templates/`` (``string.Template`` files, shipped in the
package). With ``"csv"`` or ``"parquet"`` it writes ``pings``, ``outages`` and ``stats`` of the
period into a directory (:mod:`uptimelab.report.export`).

The tables it shows come from :mod:`uptimelab.analytics`, which the notebooks use too, so nothing
is computed twice.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Final

from ..analytics.frames import duration
from ..analytics.tables import DEFAULT_TARGET
from ..errors import ConfigError
from ..storage.database import Database
from .export import export_tables, write_export
from .files import check_out, output_errors, write_whole
from .period import PeriodData, load_period

__all__ = ["FORMATS", "render_html", "write_report"]

FORMATS: Final = ("html", "csv", "parquet")


def write_report(
    out: str | Path,
    *,
    since: str | dt.timedelta = "30d",
    format: str = "html",
    target: float = DEFAULT_TARGET,
    db: Database | None = None,
) -> list[Path]:
    """Write the report of the last ``since`` (a duration such as "30d") to ``out``.

    ``format`` "html": one self-contained file at ``out``. "csv" or "parquet": the directory
    ``out`` (created if needed) receives ``pings``, ``outages`` and ``stats`` files. Missing
    parent directories are created; each file is written whole or not at all. ``target`` is the
    SLA's uptime percentage. Returns the paths written. Raises ConfigError for a bad format,
    duration, target or output path (one through an existing file), OutputError when the system
    refuses to write it, and StoreError when the database fails.
    """
    if format not in FORMATS:
        raise ConfigError(f"format {format!r} is not one of {', '.join(FORMATS)}")
    if not 0 < target < 100:
        raise ConfigError(f"target {target:g} is not a percentage between 0 and 100, like 99.9")
    path = check_out(out, directory=format != "html")
    data = load_period(db, duration(since, "since"))
    if format != "html":
        return write_export(export_tables(data.pings, data.names), path, format)
    page = render_html(data, target=target).encode("utf-8")
    with output_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_whole(path, lambda handle: handle.write(page))
    return [path]


def render_html(data: PeriodData, *, target: float = DEFAULT_TARGET) -> str:
    """The report of ``data`` as one HTML document (plots as base64 PNGs, styles inline)."""
    from .._version import __version__

    # Here: the sections draw with matplotlib (a third of a second to import), which the CSV and
    # Parquet reports and `uptimelab outages --format csv` do not need.
    from .sections import SECTIONS, template

    sections = [section(data, target) for section in SECTIONS]
    toc = template("toc_entry")
    return template("document").substitute(
        period=html.escape(f"{data.start:%Y-%m-%d %H:%M} to {data.end:%Y-%m-%d %H:%M} UTC"),
        pings=f"{len(data.pings):,}",
        sites=data.pings["site_id"].nunique(),
        cycles=f"{len(data.cycles):,}",
        version=html.escape(__version__),
        toc="".join(toc.substitute(id=s.id, title=html.escape(s.title)) for s in sections),
        sections="".join(s.html() for s in sections),
    )
