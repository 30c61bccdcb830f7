"""Importing sites: a CSV, JSON or YAML site file added or updated by URL, all or nothing, and the
upsert it (and the synthetic histories) store sites with."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from ..config import Settings
from ..domain.redaction import redact
from ..domain.sites import COLUMNS, IGNORED_COLUMNS, SiteSpec, site_spec
from ..errors import InvalidSiteFileError, SiteError, StoreError
from ..text import one_line
from .database import Database, default_db
from .sites import check_site_cadence, stored_values


@dataclass
class ImportReport:
    """What ``import_sites`` did: row counts, and each invalid row with its number and reason."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)


def import_sites(
    path: str | Path,
    *,
    format: str | None = None,
    skip_invalid: bool = False,
    db: Database | None = None,
) -> ImportReport:
    """Add or update sites from a CSV, JSON or YAML file, matched by URL (idempotent).

    Only the columns a row gives are updated on an existing site; a column given empty (an
    empty CSV cell, a JSON or YAML null) goes back to its default (``name``: the host). A file
    with an invalid row writes nothing (InvalidSiteFileError) unless ``skip_invalid``.
    """
    from ..domain.site_files import read_site_rows  # here: listings need no YAML parser

    rows = read_site_rows(Path(path), format=format)
    report = ImportReport()
    parsed: list[tuple[int, dict[str, Any], set[str], SiteSpec]] = []
    settings = Settings.load()
    first_row: dict[str, int] = {}  # normal URL -> the row that gave it
    for number, raw in enumerate(rows, start=1):
        values = {k: v for k, v in raw.items() if k not in IGNORED_COLUMNS}
        unknown = [k for k in values if k not in COLUMNS]
        if unknown:
            report.invalid.append((number, _unknown_column(unknown[0])))
            continue
        empty = {
            k for k, v in values.items() if v is None or (isinstance(v, str) and not v.strip())
        }
        given = {k: v for k, v in values.items() if k not in empty}
        try:
            spec = site_spec(given)
        except SiteError as exc:
            report.invalid.append((number, str(exc)))
            continue
        if spec.url in first_row:
            same = first_row[spec.url]
            report.invalid.append((number, f"url {redact(spec.url)!r} is also row {same}"))
            continue
        first_row[spec.url] = number
        parsed.append((number, given, empty, spec))
    # A row updates only the columns it gives: the rules across columns (a body needs its
    # Content-Type, an interval above the timeout) hold for the site as it will be stored.
    stored = _stored_by_url([spec.url for _, _, _, spec in parsed], db)
    good: list[tuple[SiteSpec, frozenset[str]]] = []
    for number, given, empty, spec in parsed:
        current = stored.get(spec.url)
        try:
            if current is not None:
                merged = {k: v for k, v in current.items() if k not in empty}
                spec = site_spec(merged | given | {"url": spec.url})
            check_site_cadence(spec, settings)
        except SiteError as exc:
            report.invalid.append((number, str(exc)))
            continue
        good.append((spec, frozenset((set(given) | empty) - {"url"})))
    report.invalid.sort()
    if report.invalid and not skip_invalid:
        number, reason = report.invalid[0]
        more = f" (and {len(report.invalid) - 1} more)" if len(report.invalid) > 1 else ""
        raise InvalidSiteFileError(f"{path}: row {number}: {reason}{more}; nothing was imported")
    counts = upsert_sites(good, db=db)
    report.added, report.updated, report.unchanged = counts
    return report


def _stored_by_url(urls: list[str], db: Database | None) -> dict[str, dict[str, Any]]:
    """The columns of the sites already registered under ``urls``, as a site file gives them."""
    if not urls:
        return {}
    with default_db(db).connect() as conn:
        rows = conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM sites WHERE url = ANY(%s)", (urls,)
        ).fetchall()
    return {row["url"]: {k: v for k, v in row.items() if v is not None} for row in rows}


def _unknown_column(name: object) -> str:
    shown = repr(name) if isinstance(name, str) else f"{name!r} ({type(name).__name__}, not text)"
    return f"unknown column {shown} (the columns are: {', '.join(COLUMNS)})"


def upsert_sites(
    specs: Iterable[tuple[SiteSpec, frozenset[str]]], *, db: Database | None = None
) -> tuple[int, int, int]:
    """Insert or update sites by URL in one transaction, setting only each spec's given columns.

    Returns ``(added, updated, unchanged)``.
    """
    added = updated = unchanged = 0
    with default_db(db).connect() as conn:
        for spec, given in specs:
            values = stored_values(spec)
            if not values["name"]:
                values["name"] = urlsplit(spec.url).hostname
            updates = [c for c in COLUMNS if c in given and c != "url"]
            set_clause = ", ".join(f"{c} = EXCLUDED.{c}" for c in updates)
            changed = " OR ".join(f"sites.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in updates)
            action = (
                f"DO UPDATE SET {set_clause}, updated_at = now() WHERE {changed}"
                if updates
                else "DO NOTHING"
            )
            try:
                row = conn.execute(
                    f"INSERT INTO sites ({', '.join(values)}) "
                    f"VALUES ({', '.join(f'%({c})s' for c in values)}) "
                    f"ON CONFLICT (url) {action} RETURNING (xmax = 0) AS inserted",
                    values,
                ).fetchone()
            except psycopg.Error as exc:  # the transaction rolls back: nothing is written
                raise StoreError(f"cannot store {redact(spec.url)!r}: {one_line(exc)}") from exc
            if row is None:
                unchanged += 1
            elif row["inserted"]:
                added += 1
            else:
                updated += 1
    return added, updated, unchanged
