"""The notifications table (sql/012_notifications.sql): what people were told, and what waits.

The table is the notifier's queue: a row is recorded before its message is sent (``pending``),
claimed for a send by pushing its ``next_attempt_at`` out by a lease (a collector that dies
mid-send leaves it to be sent again after the lease), and marked ``sent`` or given its next
attempt. Each channel's messages go out in the order they were recorded: only the oldest pending
row of a channel may be claimed. Every function takes a connection in a transaction (the
caller's one hop) and raises what psycopg raises.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from ..errors import StoreError
from ..text import one_line
from .database import Database

MAX_ERROR_CHARS = 1000


@dataclass(frozen=True, slots=True)
class NotificationRow:
    """One notification to record: a transition told to one channel (``channel`` redacted)."""

    key: str
    channel: str
    site_id: uuid.UUID
    incident_id: int | None
    kind: str
    sequence: int
    location: str | None
    transition_at: dt.datetime
    started_at: dt.datetime | None
    category: str | None
    first_error: str | None
    title: str
    body: str
    message_type: str
    status: str
    error: str | None = None


_INSERT = """
INSERT INTO notifications (key, channel, site_id, incident_id, kind, sequence, location,
                           transition_at, started_at, category, first_error, title, body,
                           message_type, status, error)
VALUES (%(key)s, %(channel)s, %(site_id)s, %(incident_id)s, %(kind)s, %(sequence)s,
        %(location)s, %(transition_at)s, %(started_at)s, %(category)s, %(first_error)s,
        %(title)s, %(body)s, %(message_type)s, %(status)s, %(error)s)
ON CONFLICT (key, channel) DO NOTHING
RETURNING id
"""


def record(conn: psycopg.Connection[Any], rows: Sequence[NotificationRow]) -> int:
    """Insert ``rows``, those already recorded (same key and channel) left as they are.
    Returns how many were new."""
    new = 0
    for row in rows:
        values = {f: getattr(row, f) for f in NotificationRow.__slots__}
        values["first_error"] = _cut(row.first_error)
        values["error"] = _cut(row.error)
        values["body"] = row.body[:4000]
        values["title"] = row.title[:500]
        new += conn.execute(_INSERT, values).fetchone() is not None
    return new


def _cut(text: str | None) -> str | None:
    return None if text is None else text[:MAX_ERROR_CHARS]


_SITES = """
SELECT id, coalesce(name, '') AS name, url, coalesce(notify, '{}') AS notify
  FROM sites WHERE id = ANY(%s)
"""
_FLAPPING = """
SELECT site_id, started_at, ended_at FROM incident_flapping
 WHERE site_id = ANY(%s) AND (ended_at IS NULL OR ended_at > %s)
"""
# Where an incident was seen: its own location, or for the quorum verdict's (location NULL) the
# locations whose own incidents overlap it.
_INCIDENT_LOCATIONS = """
SELECT i.id,
       coalesce(i.location,
                (SELECT string_agg(DISTINCT l.location, ', ' ORDER BY l.location)
                   FROM incidents AS l
                  WHERE l.site_id = i.site_id AND l.location IS NOT NULL
                    AND l.started_at <= i.confirmed_at
                    AND (l.resolved_at IS NULL OR l.resolved_at > i.started_at))) AS locations
  FROM incidents AS i WHERE i.id = ANY(%s)
"""
_SITE_CHANNELS = "SELECT DISTINCT unnest(notify) AS url FROM sites WHERE notify IS NOT NULL"


def sites(conn: psycopg.Connection[Any], ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """Name, URL and own channels (``notify``) of the sites ``ids`` that exist, by id."""
    return {r["id"]: r for r in conn.execute(_SITES, (list(set(ids)),))}


def flapping(
    conn: psycopg.Connection[Any], ids: Iterable[uuid.UUID], since: dt.datetime
) -> dict[uuid.UUID, list[tuple[dt.datetime, dt.datetime | None]]]:
    """The periods the sites ``ids`` flapped (incident_flapping), as (started_at, ended_at or
    None while it lasts), of those not over by ``since``."""
    periods: dict[uuid.UUID, list[tuple[dt.datetime, dt.datetime | None]]] = {}
    for r in conn.execute(_FLAPPING, (list(set(ids)), since)):
        periods.setdefault(r["site_id"], []).append((r["started_at"], r["ended_at"]))
    return periods


def incident_locations(conn: psycopg.Connection[Any], ids: Iterable[int]) -> dict[int, str]:
    """Where each of the incidents ``ids`` was seen (``eu-west`` or ``eu-west, us-east``)."""
    found = conn.execute(_INCIDENT_LOCATIONS, (list(set(ids)),))
    return {r["id"]: r["locations"] for r in found if r["locations"]}


def site_channels(conn: psycopg.Connection[Any]) -> list[str]:
    """Every apprise URL a site names in its ``notify`` list."""
    return [r["url"] for r in conn.execute(_SITE_CHANNELS)]


# Rows pending NOTIFY_MAX_AGE_MS since recorded (too old when recorded: recorded expired).
_EXPIRE = """
UPDATE notifications
   SET status = 'expired', error = left(concat_ws('; ', error, %(why)s::text), 1000)
 WHERE status = 'pending' AND recorded_at < now() - make_interval(secs => %(max_age_s)s)
"""
_PENDING = """
SELECT count(*) AS n, min(next_attempt_at) - now() AS wait FROM notifications
 WHERE status = 'pending' AND channel = ANY(%s)
"""


def pending(conn: psycopg.Connection[Any], channels: Sequence[str]) -> tuple[int, float | None]:
    """The rows of ``channels`` pending, and seconds until the first is due (None: none)."""
    row = conn.execute(_PENDING, (list(channels),)).fetchone() or {"n": 0, "wait": None}
    return int(row["n"]), None if row["wait"] is None else row["wait"].total_seconds()


# The oldest pending row of each channel, claimed when it is due: its next attempt moves a lease
# ahead, so that no other collector sends it meanwhile. The condition is on the row itself, so
# that a collector that waited for another's lock sees the lease and leaves the row.
_CLAIM = """
WITH heads AS (
    SELECT DISTINCT ON (channel) id FROM notifications
     WHERE status = 'pending' AND channel = ANY(%(channels)s)
     ORDER BY channel, id
)
UPDATE notifications AS n
   SET next_attempt_at = now() + make_interval(secs => %(lease_s)s), attempts = n.attempts + 1
  FROM heads
 WHERE n.id = heads.id AND n.status = 'pending' AND n.next_attempt_at <= now()
RETURNING n.id, n.channel, n.title, n.body, n.message_type, n.attempts, n.key
"""
_NEXT_DUE = """
SELECT min(next_attempt_at) - now() AS wait FROM (
    SELECT DISTINCT ON (channel) next_attempt_at FROM notifications
     WHERE status = 'pending' AND channel = ANY(%(channels)s)
     ORDER BY channel, id
) AS heads
"""


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row claimed for a send."""

    id: int
    channel: str
    title: str
    body: str
    message_type: str
    attempts: int
    key: str


def claim(
    conn: psycopg.Connection[Any],
    channels: Sequence[str],
    *,
    lease_s: float,
    max_age_s: float,
    why_expired: str,
) -> tuple[list[Claimed], dt.timedelta | None]:
    """Expire the pending rows that are too old (of any channel: one nobody has any more too),
    claim the due head of each of ``channels`` for ``lease_s`` seconds; returns the claimed rows
    and how long until the next head is due (None: nothing pending)."""
    params = {
        "channels": list(channels),
        "lease_s": lease_s,
        "max_age_s": max_age_s,
        "why": why_expired,
    }
    conn.execute(_EXPIRE, params)
    claimed = [Claimed(**r) for r in conn.execute(_CLAIM, params)]
    row = conn.execute(_NEXT_DUE, params).fetchone()
    wait = row["wait"] if row else None
    return claimed, wait


def sent(conn: psycopg.Connection[Any], row_id: int) -> None:
    """Mark a claimed row sent."""
    conn.execute(
        "UPDATE notifications SET status = 'sent', sent_at = now(), error = NULL WHERE id = %s",
        (row_id,),
    )


def retry(conn: psycopg.Connection[Any], row_id: int, error: str, delay_s: float) -> None:
    """A send failed: keep the row pending, its next attempt ``delay_s`` seconds from now."""
    conn.execute(
        "UPDATE notifications SET error = %s, "
        "next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s",
        (_cut(error), delay_s, row_id),
    )


def failed(conn: psycopg.Connection[Any], row_id: int, error: str) -> None:
    """A send that can never succeed (apprise does not know the URL): status failed."""
    conn.execute(
        "UPDATE notifications SET status = 'failed', error = %s WHERE id = %s",
        (_cut(error), row_id),
    )


# Incidents still down whose last notice (down or reminder) is older than the resend interval:
# from the notifications table itself, so that an incident nobody was told of gets no reminder.
_RESEND_DUE = """
SELECT n.incident_id, n.site_id, n.location,
       max(n.started_at) AS started_at,
       max(n.category) AS category,
       max(n.first_error) AS first_error,
       max(n.sequence) FILTER (WHERE n.kind = 'resend') AS sequence
  FROM notifications AS n
  JOIN incidents AS i ON i.id = n.incident_id
  JOIN sites AS s ON s.id = n.site_id
 WHERE n.kind IN ('down', 'resend', 'recovered') AND i.resolved_at IS NULL AND s.is_active
 GROUP BY n.incident_id, n.site_id, n.location
HAVING bool_or(n.kind = 'down') AND NOT bool_or(n.kind = 'recovered')
   AND max(n.recorded_at) < now() - make_interval(secs => %s)
"""


def resend_due(conn: psycopg.Connection[Any], every_s: float) -> list[dict[str, Any]]:
    """The open incidents whose last notice is older than ``every_s`` seconds: incident_id,
    site_id, location, started_at, category, first_error, and the last reminder's sequence
    (None before the first)."""
    return list(conn.execute(_RESEND_DUE, (every_s,)))


_CERTIFICATES = """
SELECT s.id AS site_id, ss.cert_expires_at AS expires_at
  FROM site_stats AS ss JOIN sites AS s ON s.id = ss.site_id
 WHERE s.is_active AND ss.cert_expires_at > now()
   AND ss.cert_expires_at < now() + make_interval(days => s.cert_min_days)
"""


def expiring_certificates(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Active sites whose latest certificate expires within their cert_min_days (not yet
    expired: an expired one makes the site down, which is told of as such)."""
    return list(conn.execute(_CERTIFICATES))


# Per channel: what waits, since when it has failed, the last error; and what was never
# delivered lately (expired after failed attempts, or failed for good).
_DELIVERY = """
SELECT channel,
       count(*) FILTER (WHERE status = 'pending') AS waiting,
       count(*) FILTER (WHERE status = 'pending' AND attempts > 0 AND error IS NOT NULL)
           AS failing,
       min(recorded_at) FILTER (WHERE status = 'pending' AND error IS NOT NULL) AS failing_since,
       (array_agg(error ORDER BY id DESC) FILTER (WHERE error IS NOT NULL
                                                 AND status IN ('pending', 'failed')))[1]
           AS last_error,
       count(*) FILTER (WHERE status = 'failed'
                        OR (status = 'expired' AND attempts > 0)) AS undelivered,
       max(sent_at) AS last_sent_at
  FROM notifications
 WHERE recorded_at > now() - interval '24 hours' OR status = 'pending'
 GROUP BY channel ORDER BY channel
"""


def delivery(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Per channel over the last day: waiting, failing, failing_since, last_error,
    undelivered, last_sent_at."""
    return list(conn.execute(_DELIVERY))


@dataclass(frozen=True, slots=True)
class Losses:
    """Transitions a notifier lost (offered past its full queue: never recorded)."""

    notifier_id: uuid.UUID
    host: str
    pid: int
    location: str
    lost: int
    first_lost_at: dt.datetime
    last_lost_at: dt.datetime
    last_key: str | None


_RECORD_LOSSES = """
INSERT INTO notification_losses AS l (notifier_id, host, pid, location, lost, first_lost_at,
                                      last_lost_at, last_key)
VALUES (%(notifier_id)s, %(host)s, %(pid)s, %(location)s, %(lost)s, %(first_lost_at)s,
        %(last_lost_at)s, %(last_key)s)
ON CONFLICT (notifier_id) DO UPDATE
   SET lost = l.lost + EXCLUDED.lost,
       first_lost_at = least(l.first_lost_at, EXCLUDED.first_lost_at),
       last_lost_at = greatest(l.last_lost_at, EXCLUDED.last_lost_at),
       last_key = EXCLUDED.last_key
"""
_LOSSES = """
SELECT notifier_id, host, pid, location, lost, first_lost_at, last_lost_at, last_key
  FROM notification_losses
 WHERE last_lost_at > now() - interval '24 hours'
 ORDER BY last_lost_at DESC
"""


def record_losses(conn: psycopg.Connection[Any], losses: Losses) -> None:
    """Add ``losses.lost`` to the notifier's count of lost transitions (its row made at the
    first)."""
    values = {f: getattr(losses, f) for f in Losses.__slots__}
    values["host"] = values["host"][:300]
    values["location"] = values["location"][:300]
    values["last_key"] = None if losses.last_key is None else losses.last_key[:300]
    conn.execute(_RECORD_LOSSES, values)


def losses(conn: psycopg.Connection[Any]) -> list[Losses]:
    """The notifiers that lost transitions in the last day, the latest loss first."""
    return [Losses(**r) for r in conn.execute(_LOSSES)]


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What health reads of the notifications: :func:`delivery` per channel, and :func:`losses`."""

    channels: list[dict[str, Any]]
    losses: list[Losses]


def delivery_report(db: Database, *, timeout_ms: int) -> DeliveryReport:
    """:func:`delivery` and :func:`losses` on a connection of their own (health). Raises
    StoreError when the database cannot be reached or has no notifications tables yet."""
    try:
        with db.connect(timeout_ms=timeout_ms) as conn:
            return DeliveryReport(delivery(conn), losses(conn))
    except psycopg.Error as exc:
        raise StoreError(f"notifications not readable: {one_line(exc, 200)}") from exc


# Rows whose story is over (sent, expired, suppressed, collapsed, failed: all but pending) and
# that were recorded before the cut-off; never a row of an incident still open (its "down"
# notice is what NOTIFY_RESEND_MS reminds from). In slices, so that a long-unpruned table does
# not hold one huge delete's locks and WAL at once. The slice's ids as an array: `id IN
# (SELECT ...)` was planned as a hash semi-join over a scan of the whole table (0.6-1.2 s a slice
# of 10 000 on a million rows); `= ANY(ARRAY(...))` reads them by the primary key.
_PRUNE = """
DELETE FROM notifications WHERE id = ANY (ARRAY(
    SELECT n.id FROM notifications AS n
     WHERE n.recorded_at < %(cutoff)s AND n.status <> 'pending'
       AND NOT EXISTS (SELECT 1 FROM incidents AS i
                        WHERE i.id = n.incident_id AND i.resolved_at IS NULL)
     LIMIT %(slice)s))
"""
PRUNE_SLICE_ROWS = 10_000


def prune(db: Database, cutoff: dt.datetime, *, slice_rows: int = PRUNE_SLICE_ROWS) -> int:
    """Delete the notifications recorded before ``cutoff`` that are no longer pending (and not
    of an incident still open), and the notifiers' losses last seen before it, ``slice_rows``
    rows a transaction. Returns the notifications deleted. Raises StoreError when the database
    fails."""
    deleted = 0
    try:
        while True:
            with db.connect() as conn:
                n = conn.execute(_PRUNE, {"cutoff": cutoff, "slice": slice_rows}).rowcount
            deleted += n
            if n < slice_rows:
                break
        with db.connect() as conn:
            conn.execute("DELETE FROM notification_losses WHERE last_lost_at < %s", (cutoff,))
    except psycopg.Error as exc:
        raise StoreError(f"notifications not pruned: {one_line(exc, 200)}") from exc
    return deleted
