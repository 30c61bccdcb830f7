"""The HTML report and table exports, built from ``uptimelab.analytics``."""

from .html import (
    EXPORT_FORMATS,
    EXPORT_SCHEMA,
    PeriodData,
    export_tables,
    load_period,
    read_export,
    render_html,
    write_export,
    write_report,
)

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
