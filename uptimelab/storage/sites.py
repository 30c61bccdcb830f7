"""Sites in the database: adding, listing, enabling and removing them, and the active sites a
cycle probes. Importing a site file is :mod:`.site_import`."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import class_row, tuple_row
from psycopg.types.json import Jsonb

from ..config import Settings
from ..domain.incidents import shown_notify
from ..domain.redaction import redact, redact_headers
from ..domain.sites import (
    ACTIVE_SITE_FIELDS,
    COLUMNS,
    ActiveSite,
    SiteSpec,
    site_spec,
)
from ..domain.urls import URLRuleError, normalise_url
from ..errors import SiteError, StoreError, UnknownSiteError
from ..text import one_line
from .database import Database, default_db

if TYPE_CHECKING:
    from .models import Site

# Every column of ``sites``: those a site file may give, and the ones the database sets. The
# SQLModel ``Site`` is imported only where one is built (SQLAlchemy costs a third of a second).
SITE_COLUMNS = ("id", *COLUMNS, "created_at", "updated_at")
_SITE_COLUMNS = ", ".join(SITE_COLUMNS)


def _site(row: Mapping[str, Any]) -> Site:
    from .models import Site

    return Site.model_validate(dict(row))


@dataclass(frozen=True, slots=True)
class SiteRow:
    """A site as stored, read without SQLAlchemy: the fields of ``Site``, plain values."""

    def __repr__(self) -> str:
        # A notebook shows reprs: the URL's password and secret header values never are.
        shown = {f: getattr(self, f) for f in self.__slots__}
        shown["url"] = redact(self.url)
        if shown.get("headers"):
            shown["headers"] = redact_headers(shown["headers"])
        if shown.get("notify"):
            shown["notify"] = shown_notify(shown["notify"])
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    id: uuid.UUID
    name: str | None
    url: str
    is_active: bool
    method: str
    expected_status: str
    follow_redirects: bool
    max_redirects: int
    timeout_ms: int | None
    interval_ms: int | None
    retry_interval_ms: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    # A column sql/007_tls_verify.sql adds; a database without it verifies every certificate.
    tls_verify: bool = True
    # A column sql/008_probe_depth.sql adds: fewer days before the certificate expires warn.
    cert_min_days: int = 14
    # Columns sql/009_assertions.sql adds (``headers`` may hold secrets: shown redacted).
    expect_body: str | None = None
    expect_json: str | None = None
    max_response_ms: int | None = None
    headers: dict[str, str] | None = field(default=None, repr=False)
    body: str | None = field(default=None, repr=False)
    # Columns sql/011_incidents.sql adds (``notify`` URLs carry tokens: never in a repr).
    down_after: int = 2
    up_after: int = 1
    notify: list[str] | None = field(default=None, repr=False)


def add_site(
    url: str,
    *,
    name: str | None = None,
    expect: str = "200-399",
    method: str = "GET",
    timeout_ms: int | None = None,
    follow_redirects: bool = True,
    max_redirects: int = 5,
    interval_ms: int | None = None,
    retry_interval_ms: int | None = None,
    tls_verify: bool = True,
    expect_body: str | None = None,
    expect_json: str | None = None,
    max_response_ms: int | None = None,
    headers: Mapping[str, str] | None = None,
    body: str | None = None,
    cert_min_days: int = 14,
    down_after: int = 2,
    up_after: int = 1,
    notify: Iterable[str] | None = None,
    db: Database | None = None,
) -> Site:
    """Register a site. ``tls_verify=False`` accepts any certificate of an https site (a weaker
    check, shown by ``sites list`` and status).

    A ping of the site is down (``assertion``) unless the decoded body matches the regular
    expression ``expect_body``, its JSON satisfies ``expect_json`` (``PATH OP VALUE`` or
    ``len(PATH) OP N``, e.g. ``$.status == "UP"``) and it took at most ``max_response_ms``
    milliseconds. ``headers`` (secret ones shown redacted) and ``body`` (for POST, PUT, PATCH,
    DELETE; its Content-Type in ``headers``) go with each request. An https site whose
    certificate expires within ``cert_min_days`` days is listed as expiring (a warning, not
    downtime). An incident is confirmed after ``down_after`` consecutive down pings of a
    location and resolved after ``up_after`` consecutive up ones; ``notify`` (apprise URLs,
    shown redacted) are told of the site's transitions beside NOTIFY_URLS. Raises InvalidURLError,
    SiteError (bad values or URL already registered)."""
    spec = site_spec(
        {
            "url": url,
            "name": name,
            "expected_status": expect,
            "method": method,
            "timeout_ms": timeout_ms,
            "follow_redirects": follow_redirects,
            "max_redirects": max_redirects,
            "interval_ms": interval_ms,
            "retry_interval_ms": retry_interval_ms,
            "tls_verify": tls_verify,
            "expect_body": expect_body,
            "expect_json": expect_json,
            "max_response_ms": max_response_ms,
            "headers": headers,
            "body": body,
            "cert_min_days": cert_min_days,
            "down_after": down_after,
            "up_after": up_after,
            "notify": None if notify is None else list(notify),
        }
    )
    check_site_cadence(spec)
    values = stored_values(spec)
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
            raise StoreError(f"cannot add {redact(url)!r}: {one_line(exc)}") from exc
    if row is None:
        raise SiteError(f"{redact(spec.url)!r} is already registered")
    return _site(row)


def stored_values(spec: SiteSpec) -> dict[str, Any]:
    """A spec's values as ``sites`` takes them (headers as jsonb)."""
    values = spec.model_dump()
    if values["headers"] is not None:
        values["headers"] = Jsonb(values["headers"])
    return values


def check_site_cadence(spec: SiteSpec, settings: Settings | None = None) -> None:
    """The rules of a site's own cadence that depend on the configuration: its interval and retry
    interval at least MIN_SITE_INTERVAL_MS and above the ping timeout in force, and a site's own
    timeout below MONITORING_INTERVAL_MS when it has no interval of its own. Raises SiteError."""
    s = settings or Settings.load()
    timeout = spec.timeout_ms or s.ping_timeout_ms
    # A ping must end before the next one of the same site is due: its timeout stays below
    # the interval in force (the site's own, else MONITORING_INTERVAL_MS).
    if spec.interval_ms is None and (spec.timeout_ms or 0) >= s.monitoring_interval_ms:
        raise SiteError(
            f"timeout_ms={spec.timeout_ms} must be below the interval "
            f"(MONITORING_INTERVAL_MS={s.monitoring_interval_ms})"
        )
    for name in ("interval_ms", "retry_interval_ms"):
        value = getattr(spec, name)
        if value is None:
            continue
        if value < s.min_site_interval_ms:
            raise SiteError(f"{name}={value}: below MIN_SITE_INTERVAL_MS={s.min_site_interval_ms}")
        if value <= timeout:
            raise SiteError(f"{name}={value}: must be above the ping timeout ({timeout} ms)")


def list_sites(*, active: bool | None = None, db: Database | None = None) -> list[Site]:
    """All sites ordered by creation, or only the active (``True``) or inactive ones."""
    return [_site(asdict(row)) for row in site_rows(active=active, db=db)]


def site_rows(*, active: bool | None = None, db: Database | None = None) -> list[SiteRow]:
    """What :func:`list_sites` returns, as plain :class:`SiteRow` values: the light read for
    listings (no SQLModel objects, so no SQLAlchemy import)."""
    where = "" if active is None else "WHERE is_active = %(active)s"
    with default_db(db).connect() as conn, conn.cursor(row_factory=class_row(SiteRow)) as cur:
        return cur.execute(
            f"SELECT {_SITE_COLUMNS} FROM sites {where} ORDER BY created_at, url",
            {"active": active},
        ).fetchall()


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
        pass
    try:  # a URL is found in any spelling of it: sites are stored in the normal form
        return normalise_url(str(site)), "url"
    except URLRuleError:
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
