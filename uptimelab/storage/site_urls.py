"""Stored site URLs brought to the normal form (:mod:`uptimelab.domain.urls`), once.

Sites added since the URL rules are stored in the normal form; rows stored before them may not
be (``HTTPS://Example.org:443/café``). ``uptimelab db init`` rewrites such rows after the
migrations, in the same transaction (:func:`init_database`): a Python step, since IDNA and the
percent-encoding are not SQL.

"Once" is by idempotence, not by a record: a row already in the normal form is never written, so
a second run changes nothing, and a row stored in an old spelling later (a restored backup, an
older uptimelab) is normalised by the next ``db init``. Checking is cheap: the fast test
:func:`~uptimelab.domain.urls.is_normal` takes about 1 us a URL, and ``db init`` over 100 000
stored URLs with nothing to change takes 0.25 s in all. A row is left alone, and reported (here
and by ``uptimelab validate``), when its normal form would collide with another row's URL or
normal form, is longer than 2 048 characters, or cannot be had (a URL that breaks the rules).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from ..domain.redaction import redact
from ..domain.sites import MAX_URL_LENGTH
from ..domain.urls import URLRuleError, is_normal, normalise_url
from ..errors import StoreError
from ..text import one_line
from .database import Database, migrate


@dataclass(frozen=True)
class UnnormalisedSite:
    """A stored row that is not in the normal form and was left so: its id, its URL (redacted)
    and why (``collides with <id>``, ``its normal form is longer than 2048 characters``, or the
    URL rule it breaks)."""

    id: uuid.UUID
    url: str
    reason: str


@dataclass
class NormaliseReport:
    """What :func:`normalise_stored_urls` did: rows rewritten, and the rows left alone by kind."""

    changed: int = 0
    collisions: list[UnnormalisedSite] = field(default_factory=list)
    too_long: list[UnnormalisedSite] = field(default_factory=list)
    invalid: list[UnnormalisedSite] = field(default_factory=list)

    @property
    def left_alone(self) -> list[UnnormalisedSite]:
        """Every row not in the normal form after the run, in id order."""
        return sorted([*self.collisions, *self.too_long, *self.invalid], key=lambda s: s.id)


def plan_normalisation(
    rows: Iterable[tuple[uuid.UUID | str, str]],
) -> tuple[list[tuple[str, uuid.UUID]], NormaliseReport]:
    """For stored ``(id, url)`` rows: the ``(normal_url, id)`` updates that can be made, and the
    report of those that cannot (``changed`` is the number of updates). Pure: no I/O."""
    report = NormaliseReport()
    stored: dict[str, uuid.UUID | str] = {}
    wanted: dict[str, list[tuple[uuid.UUID, str]]] = defaultdict(list)
    for key, url in rows:
        stored[url] = key
        if len(url) <= MAX_URL_LENGTH and is_normal(url):
            continue
        site_id = key if isinstance(key, uuid.UUID) else uuid.UUID(key)
        try:
            normal = normalise_url(url)
        except URLRuleError as exc:
            report.invalid.append(UnnormalisedSite(site_id, redact(url), str(exc)))
            continue
        if normal == url:
            if len(url) > MAX_URL_LENGTH:
                reason = f"it is longer than {MAX_URL_LENGTH} characters"
                report.too_long.append(UnnormalisedSite(site_id, redact(url), reason))
            continue
        if len(normal) > MAX_URL_LENGTH:
            reason = f"its normal form is longer than {MAX_URL_LENGTH} characters"
            report.too_long.append(UnnormalisedSite(site_id, redact(url), reason))
            continue
        wanted[normal].append((site_id, url))
    updates: list[tuple[str, uuid.UUID]] = []
    for normal, claimants in wanted.items():
        holder = stored.get(normal)
        if holder is None and len(claimants) == 1:
            updates.append((normal, claimants[0][0]))
            continue
        # Two rows for one site: which one to keep (and its pings) is the user's choice.
        for site_id, url in claimants:
            others = [str(i) for i, _ in claimants if i != site_id]
            if holder is not None:
                others.insert(0, str(holder))
            reason = f"its normal form {redact(normal)!r} collides with {', '.join(others)}"
            report.collisions.append(UnnormalisedSite(site_id, redact(url), reason))
    report.changed = len(updates)
    return updates, report


def _stored(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    # Ids as text: a uuid.UUID per row would cost a third of the time for rows that are fine.
    with conn.cursor(row_factory=tuple_row) as cur:
        return cur.execute("SELECT id::text, url FROM sites").fetchall()


def normalise_stored_urls(conn: psycopg.Connection[Any]) -> NormaliseReport:
    """Rewrite the stored site URLs that are not in the normal form, in the caller's
    transaction; rows that would collide or grow past 2 048 characters are left alone and
    reported. Idempotent: a row in the normal form is never written."""
    # Writers of sites wait until the transaction ends (readers do not), so that no site added
    # meanwhile can take a normal form this run is about to give.
    conn.execute("LOCK TABLE sites IN SHARE ROW EXCLUSIVE MODE")
    updates, report = plan_normalisation(_stored(conn))
    if updates:
        with conn.cursor() as cur:
            cur.executemany("UPDATE sites SET url = %s, updated_at = now() WHERE id = %s", updates)
    return report


def init_database(db: Database) -> tuple[list[str], NormaliseReport]:
    """What ``uptimelab db init`` does, in one transaction: apply the pending migrations, then
    bring the stored site URLs to the normal form. Returns the files applied and the report.
    Raises MigrationError (a file edited or failing), StoreError (the database)."""
    try:
        with db.connect() as conn, conn.transaction():
            applied = migrate(conn)  # a savepoint of this transaction; its lock is held to the end
            return applied, normalise_stored_urls(conn)
    except psycopg.Error as exc:
        raise StoreError(f"cannot normalise the stored site URLs: {one_line(exc)}") from exc


def unnormalised_sites(db: Database, *, timeout_ms: int | None = None) -> list[UnnormalisedSite]:
    """The stored rows not in the normal form that ``db init`` leaves alone (or has not run on
    yet: those are listed with the reason "not normalised yet: run `uptimelab db init`")."""
    try:
        with db.connect(timeout_ms=timeout_ms) as conn:
            rows = _stored(conn)
    except psycopg.Error as exc:
        raise StoreError(f"cannot read the sites: {one_line(exc)}") from exc
    updates, report = plan_normalisation(rows)
    by_id = {uuid.UUID(i): url for i, url in rows if not is_normal(url)}
    pending = [
        UnnormalisedSite(i, redact(by_id[i]), "not normalised yet: run `uptimelab db init`")
        for _, i in updates
    ]
    return sorted([*report.left_alone, *pending], key=lambda s: s.id)
