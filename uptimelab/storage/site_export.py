"""Exporting sites: every column a site file may give, in CSV, JSON or YAML, so that importing
the file again changes nothing.

Secrets (a URL's userinfo and secret query values, secret header values, notify URLs) are
written only when asked; otherwise they are ``***``, which ``sites import`` refuses, so a file
without secrets can never overwrite a real one. A file holding secrets is private (0600).
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..domain.incidents import redact_notify_url
from ..domain.redaction import redact, redact_headers
from ..domain.sites import COLUMNS
from ..errors import InvalidSiteFileError
from .database import Database, default_db

EXPORT_FORMATS = ("csv", "json", "yaml")


@dataclass(frozen=True)
class ExportReport:
    """What ``export_sites`` wrote: the text, how many sites, and how many had a secret hidden
    (0 when ``include_secrets``)."""

    text: str
    sites: int
    secrets_left_out: int


def export_sites(
    path: str | Path | None = None,
    *,
    format: str | None = None,
    include_secrets: bool = False,
    db: Database | None = None,
) -> ExportReport:
    """Write every site, every column of a site file, to ``path`` (None: only return the text).

    ``format`` is csv, json or yaml (default: by ``path``'s extension, else csv). Without
    ``include_secrets`` each secret is written as ``***`` and counted in ``secrets_left_out``.
    A new file is created with mode 0600; an existing one keeps its mode, narrowed to 0600 when
    secrets are written. Raises InvalidSiteFileError for an unknown format, an empty path, a
    directory or a file that cannot be written (nothing is written then).
    """
    fmt = (format or (Path(path).suffix.lstrip(".") if path else "") or "csv").lower()
    fmt = "yaml" if fmt == "yml" else fmt
    if fmt not in EXPORT_FORMATS:
        raise InvalidSiteFileError(f"unknown format {fmt!r} (use csv, json or yaml)")
    if path is not None and not str(path).strip():
        raise InvalidSiteFileError("the export path is empty: give a file name")
    with default_db(db).connect() as conn:
        rows = conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM sites ORDER BY created_at, url"
        ).fetchall()
    sites = [dict(row) for row in rows]
    hidden = 0
    if not include_secrets:
        shown = [_without_secrets(site) for site in sites]
        hidden = sum(a != b for a, b in zip(sites, shown, strict=True))
        sites = shown
    text = _render(sites, fmt)
    if path is not None:
        _write_private(Path(path), text, narrow=include_secrets)
    return ExportReport(text=text, sites=len(sites), secrets_left_out=hidden)


def _without_secrets(site: dict[str, Any]) -> dict[str, Any]:
    shown = dict(site, url=redact(site["url"]))
    if site["headers"]:
        shown["headers"] = redact_headers(site["headers"])
    if site["notify"]:
        shown["notify"] = [redact_notify_url(u) for u in site["notify"]]
    return shown


def _render(sites: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(sites, indent=1, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        import yaml  # here: listings need no YAML parser

        return str(yaml.safe_dump(sites, sort_keys=False, allow_unicode=True))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for site in sites:
        writer.writerow(_cell(site[c]) for c in COLUMNS)
    return out.getvalue()


def _cell(value: object) -> str:
    """A value as a site file's CSV cell: empty for none, JSON for headers and notify."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _write_private(path: Path, text: str, *, narrow: bool) -> None:
    if path.is_dir():
        raise InvalidSiteFileError(f"{path} is a directory: give a file name")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            if narrow:
                os.fchmod(file.fileno(), os.fstat(file.fileno()).st_mode & 0o600)
            file.write(text)
    except OSError as exc:
        raise InvalidSiteFileError(f"cannot write {path}: {exc.strerror or exc}") from exc
