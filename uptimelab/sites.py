"""Sites: URL rules, expected-status sets, and adding, listing, enabling and importing sites."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import yaml
from psycopg.rows import tuple_row
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .db import Database, default_db
from .errors import InvalidSiteFileError, InvalidURLError, SiteError, StoreError, UnknownSiteError
from .models import Site

MAX_URL_LENGTH = 2048
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_CREDENTIALS = re.compile(r"(?<=://)[^/?#@\s]*@")
_BAD_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")
_STATUS_ITEM = re.compile(r"^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$")
COLUMNS = (
    "name",
    "url",
    "is_active",
    "method",
    "expected_status",
    "follow_redirects",
    "max_redirects",
    "timeout_ms",
)
_IGNORED_COLUMNS = ("id", "created_at", "updated_at")


def redact(text: str) -> str:
    """``text`` with any ``user:pass@`` of a URL in it replaced by ``***@``."""
    return _CREDENTIALS.sub("***@", text)


def validate_url(url: str) -> str:
    """Return ``url`` if uptimelab can ping it; else raise InvalidURLError quoting it (redacted)."""

    def bad(rule: str) -> InvalidURLError:
        shown = redact(url if len(url) <= 120 else url[:117] + "...")
        return InvalidURLError(f"invalid URL {shown!r}: {rule}")

    if not isinstance(url, str) or not url:
        raise bad("it is empty")
    if len(url) > MAX_URL_LENGTH:
        raise bad(f"it is longer than {MAX_URL_LENGTH} characters")
    if _BAD_CHARS.search(url):
        raise bad("it contains whitespace or control characters")
    if "://" not in url:
        raise bad("it has no scheme (start it with http:// or https://)")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number or out of range
    except ValueError as exc:
        raise bad(str(exc)[:1].lower() + str(exc)[1:]) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise bad("the scheme must be http or https")
    if not parts.hostname:
        raise bad("it has no host")
    if port == 0:
        raise bad("port 0 cannot be pinged")
    return url


def parse_expected_status(spec: str) -> tuple[tuple[int, int], ...]:
    """Parse an expected-status set such as ``200-399``, ``200,204`` or ``200-299,301``.

    Returns inclusive ``(low, high)`` ranges. Raises SiteError for anything else.
    """
    ranges = []
    for item in str(spec).split(","):
        match = _STATUS_ITEM.match(item)
        if not match:
            raise SiteError(
                f"invalid expected status {spec!r}: use codes and ranges like 200-399 or 200,204"
            )
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if not (100 <= low <= high <= 599):
            raise SiteError(
                f"invalid expected status {spec!r}: ranges go from low to high within 100-599"
            )
        ranges.append((low, high))
    return tuple(ranges)


def status_expected(code: int, ranges: Iterable[tuple[int, int]]) -> bool:
    """Whether ``code`` falls in one of ``ranges``."""
    return any(low <= code <= high for low, high in ranges)


class SiteSpec(BaseModel):
    """One site as given by a user or a file row: validated, with the table's defaults."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str
    name: str | None = None
    is_active: bool = True
    method: str = "GET"
    expected_status: str = "200-399"
    follow_redirects: bool = True
    max_redirects: int = 5
    timeout_ms: int | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return validate_url(value)

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        method = value.upper()
        if method not in METHODS:
            raise ValueError(f"method {value!r} is not one of {', '.join(METHODS)}")
        return method

    @field_validator("expected_status")
    @classmethod
    def _expected(cls, value: str) -> str:
        parse_expected_status(value)
        return value.replace(" ", "")

    @field_validator("max_redirects")
    @classmethod
    def _redirects(cls, value: int) -> int:
        if not 0 <= value <= 50:
            raise ValueError("max_redirects must be from 0 to 50")
        return value

    @field_validator("timeout_ms")
    @classmethod
    def _timeout(cls, value: int | None) -> int | None:
        if value is not None and value <= 0:
            raise ValueError("timeout_ms must be above 0")
        return value


def site_spec(values: Mapping[str, Any]) -> SiteSpec:
    """Validate ``values`` into a SiteSpec, turning pydantic's report into one SiteError line."""
    try:
        return SiteSpec(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        ctx = err.get("ctx") or {}
        cause = ctx.get("error")
        if isinstance(cause, SiteError):
            raise type(cause)(str(cause)) from None
        message = str(cause) if cause is not None else err["msg"]
        if err["type"] == "extra_forbidden":
            message = f"unknown column (the columns are: {', '.join(COLUMNS)})"
        raise SiteError(f"{where}: {message}") from None


_SITE_COLUMNS = ", ".join(Site.model_fields)


def _site(row: Mapping[str, Any]) -> Site:
    return Site.model_validate(dict(row))


def add_site(
    url: str,
    *,
    name: str | None = None,
    expect: str = "200-399",
    method: str = "GET",
    timeout_ms: int | None = None,
    follow_redirects: bool = True,
    max_redirects: int = 5,
    db: Database | None = None,
) -> Site:
    """Register a site. Raises InvalidURLError, SiteError (bad values or URL already registered)."""
    spec = site_spec(
        {
            "url": url,
            "name": name,
            "expected_status": expect,
            "method": method,
            "timeout_ms": timeout_ms,
            "follow_redirects": follow_redirects,
            "max_redirects": max_redirects,
        }
    )
    values = spec.model_dump()
    values["name"] = values["name"] or urlsplit(spec.url).hostname
    columns = ", ".join(values)
    placeholders = ", ".join(f"%({c})s" for c in values)
    with default_db(db).connect() as conn:
        try:
            row = conn.execute(
                f"INSERT INTO sites ({columns}) VALUES ({placeholders}) "
                f"ON CONFLICT (url) DO NOTHING RETURNING {_SITE_COLUMNS}",
                values,
            ).fetchone()
        except psycopg.Error as exc:
            raise StoreError(f"cannot add {redact(url)!r}: {exc}") from exc
    if row is None:
        raise SiteError(f"{redact(spec.url)!r} is already registered")
    return _site(row)


def list_sites(*, active: bool | None = None, db: Database | None = None) -> list[Site]:
    """All sites ordered by creation, or only the active (``True``) or inactive ones."""
    where = "" if active is None else "WHERE is_active = %(active)s"
    with default_db(db).connect() as conn:
        rows = conn.execute(
            f"SELECT {_SITE_COLUMNS} FROM sites {where} ORDER BY created_at, url",
            {"active": active},
        ).fetchall()
    return [_site(r) for r in rows]


def get_site(site: str | uuid.UUID, *, db: Database | None = None) -> Site:
    """The site with this id or URL. Raises UnknownSiteError."""
    key, column = _key(site)
    with default_db(db).connect() as conn:
        row = conn.execute(
            f"SELECT {_SITE_COLUMNS} FROM sites WHERE {column} = %s", (key,)
        ).fetchone()
    if row is None:
        raise UnknownSiteError(f"no site with {column} {redact(str(site))!r}")
    return _site(row)


def remove_site(site: str | uuid.UUID, *, db: Database | None = None) -> Site:
    """Delete a site (and, by cascade, its pings and stats). Raises UnknownSiteError."""
    return _change(site, "DELETE FROM sites WHERE {column} = %s RETURNING {cols}", db)


def enable_site(site: str | uuid.UUID, *, db: Database | None = None) -> Site:
    """Make a site active again. Raises UnknownSiteError."""
    return _change(
        site,
        "UPDATE sites SET is_active = true, updated_at = now() "
        "WHERE {column} = %s RETURNING {cols}",
        db,
    )


def disable_site(site: str | uuid.UUID, *, db: Database | None = None) -> Site:
    """Stop pinging a site, keeping its history. Raises UnknownSiteError."""
    return _change(
        site,
        "UPDATE sites SET is_active = false, updated_at = now() "
        "WHERE {column} = %s RETURNING {cols}",
        db,
    )


def _key(site: str | uuid.UUID) -> tuple[Any, str]:
    if isinstance(site, uuid.UUID):
        return site, "id"
    try:
        return uuid.UUID(str(site)), "id"
    except ValueError:
        return str(site), "url"


def _change(site: str | uuid.UUID, template: str, db: Database | None) -> Site:
    key, column = _key(site)
    with default_db(db).connect() as conn:
        row = conn.execute(
            template.format(column=column, cols=_SITE_COLUMNS),
            (key,),
        ).fetchone()
    if row is None:
        raise UnknownSiteError(f"no site with {column} {redact(str(site))!r}")
    return _site(row)


@dataclass
class ImportReport:
    """What ``import_sites`` did: row counts, and each invalid row with its number and reason."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)


def read_site_rows(path: Path, *, format: str | None = None) -> list[dict[str, Any]]:
    """Rows of a CSV, JSON or YAML file (by ``format`` or the file's extension)."""
    fmt = (format or path.suffix.lstrip(".")).lower()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidSiteFileError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        if fmt == "csv":
            rows: Any = [
                {k: v for k, v in row.items() if v not in ("", None)}
                for row in csv.DictReader(io.StringIO(text))
            ]
        elif fmt == "json":
            rows = json.loads(text)
        elif fmt in ("yaml", "yml"):
            rows = yaml.safe_load(text)
        else:
            raise InvalidSiteFileError(f"{path}: unknown format {fmt!r} (use csv, json or yaml)")
    except (ValueError, csv.Error, yaml.YAMLError) as exc:
        raise InvalidSiteFileError(f"{path}: not valid {fmt}: {_one_line(exc)}") from exc
    if isinstance(rows, dict) and isinstance(rows.get("sites"), list):
        rows = rows["sites"]
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InvalidSiteFileError(f"{path}: expected a list of rows with a 'url' column")
    return rows


def import_sites(
    path: str | Path,
    *,
    format: str | None = None,
    skip_invalid: bool = False,
    db: Database | None = None,
) -> ImportReport:
    """Add or update sites from a CSV, JSON or YAML file, matched by URL (idempotent).

    Only the columns a row gives are updated on an existing site. A file with an invalid row
    writes nothing (InvalidSiteFileError) unless ``skip_invalid``.
    """
    rows = read_site_rows(Path(path), format=format)
    report = ImportReport()
    good: list[tuple[SiteSpec, frozenset[str]]] = []
    for number, raw in enumerate(rows, start=1):
        values = {k: v for k, v in raw.items() if k not in _IGNORED_COLUMNS}
        try:
            spec = site_spec(values)
        except SiteError as exc:
            report.invalid.append((number, str(exc)))
            continue
        good.append((spec, frozenset(spec.model_fields_set)))
    if report.invalid and not skip_invalid:
        number, reason = report.invalid[0]
        more = f" (and {len(report.invalid) - 1} more)" if len(report.invalid) > 1 else ""
        raise InvalidSiteFileError(f"{path}: row {number}: {reason}{more}; nothing was imported")
    counts = upsert_sites(good, db=db)
    report.added, report.updated, report.unchanged = counts
    return report


def upsert_sites(
    specs: Iterable[tuple[SiteSpec, frozenset[str]]], *, db: Database | None = None
) -> tuple[int, int, int]:
    """Insert or update sites by URL in one transaction, setting only each spec's given columns.

    Returns ``(added, updated, unchanged)``.
    """
    added = updated = unchanged = 0
    with default_db(db).connect() as conn:
        for spec, given in specs:
            values = spec.model_dump()
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
            row = conn.execute(
                f"INSERT INTO sites ({', '.join(values)}) "
                f"VALUES ({', '.join(f'%({c})s' for c in values)}) "
                f"ON CONFLICT (url) {action} RETURNING (xmax = 0) AS inserted",
                values,
            ).fetchone()
            if row is None:
                unchanged += 1
            elif row["inserted"]:
                added += 1
            else:
                updated += 1
    return added, updated, unchanged


@dataclass(frozen=True, slots=True)
class ActiveSite:
    """What a cycle needs of a site, small: a collector may hold 100 000 of them."""

    id: uuid.UUID
    url: str
    name: str | None = None
    method: str = "GET"
    expected_status: str = "200-399"
    follow_redirects: bool = True
    max_redirects: int = 5
    timeout_ms: int | None = None


ACTIVE_SITE_FIELDS = tuple(f for f in ActiveSite.__slots__)


def active_sites_slowest_first(
    conn: psycopg.Connection[Any], *, timeout_ms: int, lookback_s: int
) -> list[ActiveSite]:
    """Active sites ordered slowest first by their latest stored ping.

    A cycle that starts its slow sites first ends closest to the ideal length. A site's latest
    ping within ``lookback_s`` sets its weight: its response time, the full timeout for a timeout,
    and a never-pinged site counts as slower than any.
    """
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(
            f"""
            SELECT {", ".join(f"s.{c}" for c in ACTIVE_SITE_FIELDS)}
              FROM sites s
              LEFT JOIN LATERAL (
                    SELECT site_id, response_time_ms, error_category FROM pings
                     WHERE site_id = s.id AND checked_at > now() - make_interval(secs => %(back)s)
                     ORDER BY checked_at DESC LIMIT 1) p ON true
             WHERE s.is_active
             ORDER BY CASE WHEN p.site_id IS NULL THEN NULL
                           WHEN p.error_category = 'timeout'
                           THEN coalesce(s.timeout_ms, %(timeout)s)
                           ELSE coalesce(p.response_time_ms, 0) END DESC NULLS FIRST, s.id
            """,
            {"timeout": timeout_ms, "back": lookback_s},
        ).fetchall()
    return [ActiveSite(*row) for row in rows]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
