"""What a batch of transitions is recorded as: a row per transition and channel, each to be sent
or recorded as not to be sent, and why.

The notifier's recording task calls :func:`record` in one transaction per batch. A transition
whose site is gone is skipped; any other gets its message written once, and a row for each of
its channels (the global ones of NOTIFY_URLS, then the site's own, each once) with a status:

- ``expired``: older than NOTIFY_MAX_AGE_MS (a certificate's notice never is);
- ``suppressed``: its site is in a maintenance window at the transition's time (a certificate's
  notice: now);
- ``collapsed``: a down, recovery or reminder while the site flapped: told in the one notice of
  the flapping, until the site is stable;
- ``pending`` otherwise: the delivering task sends it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import psycopg

from ..config import Settings, env_name
from ..domain.incidents import Transition
from ..storage import notifications as store
from ..storage.maintenance_windows import in_maintenance_batch
from .channels import Channel
from .messages import Message, SiteFacts, message_for


def record(
    conn: psycopg.Connection[Any],
    batch: Sequence[Transition],
    now: dt.datetime,
    settings: Settings,
    global_channels: Sequence[Channel],
    losses: store.Losses | None = None,
) -> tuple[int, list[Channel]]:
    """Record ``batch`` (and ``losses``, the transitions lost so far, when there are any).
    Returns the number of rows new to the table (a (key, channel) recorded before is not) and
    the sites' own channels seen. Raises psycopg.Error from its queries."""
    if losses is not None:
        store.record_losses(conn, losses)
    ids = {t.site_id for t in batch}
    sites = store.sites(conn, ids)
    flapping = store.flapping(conn, ids, min(t.at for t in batch))
    # A certificate's notice is asked about now; any other transition at its own time.
    maintained = in_maintenance_batch(
        conn, [(t.site_id, now if t.kind == "cert_expiring" else t.at) for t in batch]
    )
    seen_at = store.incident_locations(
        conn, {t.incident_id for t in batch if t.incident_id is not None}
    )
    rows: list[store.NotificationRow] = []
    seen: list[Channel] = []
    for t, in_window in zip(batch, maintained, strict=True):
        found = sites.get(t.site_id)
        if found is None:  # deleted meanwhile: nobody to tell of it
            continue
        site = SiteFacts(t.site_id, found["name"], found["url"], tuple(found["notify"]))
        own = [Channel(u) for u in site.notify]
        seen += own
        status, why = status_of(t, flapping, in_window, now, settings)
        where = t.location or seen_at.get(t.incident_id or -1)
        message = message_for(t, site, now=now, public_url=settings.public_url, locations=where)
        for channel in dict.fromkeys([*global_channels, *own]):
            rows.append(_row(t, channel, message, status, why))
    return store.record(conn, rows), seen


def status_of(
    t: Transition,
    flapping: dict[Any, list[tuple[dt.datetime, dt.datetime | None]]],
    in_window: bool,
    now: dt.datetime,
    settings: Settings,
) -> tuple[str, str | None]:
    """The status of ``t``'s rows and why they are not sent (None when they are to be):
    ``flapping`` holds each site's flapping periods, ``in_window`` whether a maintenance
    window covers it."""
    max_age = dt.timedelta(milliseconds=settings.notify_max_age_ms)
    if t.kind != "cert_expiring" and (t.stored_at or t.at) < now - max_age:
        return "expired", too_old(settings)
    if in_window:
        return "suppressed", "in a maintenance window: recorded, not sent"
    # A change while the site flapped (the one that started it too) is in the one notice.
    flapped = any(
        start <= t.at and (end is None or t.at < end) for start, end in flapping.get(t.site_id, ())
    )
    if t.kind in ("down", "recovered", "resend") and flapped:
        return "collapsed", "the site is flapping: told once, until it is stable"
    return "pending", None


def too_old(settings: Settings) -> str:
    """Why a row is ``expired``: recorded, or left pending, past NOTIFY_MAX_AGE_MS."""
    limit = settings.notify_max_age_ms
    return f"older than {env_name('notify_max_age_ms')}={limit} ms: recorded, not sent"


def _row(
    t: Transition, channel: Channel, message: Message, status: str, why: str | None
) -> store.NotificationRow:
    return store.NotificationRow(
        key=t.key,
        channel=channel.shown,
        site_id=t.site_id,
        incident_id=t.incident_id,
        kind=t.kind,
        sequence=t.sequence,
        location=t.location,
        transition_at=t.at,
        started_at=t.started_at,
        category=t.category,
        first_error=t.message,
        title=message.title,
        body=message.body,
        message_type=message.type,
        status=status,
        error=why,
    )
