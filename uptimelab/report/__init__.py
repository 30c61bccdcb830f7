"""The HTML report and table exports, built from ``uptimelab.analytics``."""

from .export import EXPORT_FORMATS, EXPORT_SCHEMA, export_tables, read_export, write_export
from .html import render_html, write_report
from .period import PeriodData, load_period

__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_SCHEMA",
    "PeriodData",
    "export_tables",
    "load_period",
    "read_export",
    "render_html",
    "write_export",
    "write_report",
]
