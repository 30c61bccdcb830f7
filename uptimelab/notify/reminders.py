"""Reminders and certificate notices: what the notifier tells without a new transition.

Every PERIODIC_S the notifier's reminding task asks :func:`due` what is due, in one database
hop, and offers it like any other transition (recorded once per channel, by the same rules):

- a reminder (``resend``) of each incident still open NOTIFY_RESEND_MS after its last notice,
  numbered one past the last reminder (none when NOTIFY_RESEND_MS is unset);
- a notice (``cert_expiring``) of each active site whose certificate expires within the site's
  cert_min_days; its time is the expiry, so that it is told once per site and certificate.

With them come the sites' own channels, so that the notifier also delivers the rows other
collectors recorded for them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from ..domain.incidents import Transition
from ..storage import notifications as store


def due(
    conn: psycopg.Connection[Any], now: dt.datetime, resend_ms: int | None
) -> tuple[list[Transition], list[str]]:
    """The reminders and certificate notices due at ``now``, and the URLs of the sites' own
    channels. ``resend_ms`` is NOTIFY_RESEND_MS (milliseconds; None: no reminders). Raises
    psycopg.Error from its queries."""
    reminders: list[Transition] = []
    if resend_ms is not None:
        for r in store.resend_due(conn, resend_ms / 1000):
            reminders.append(
                Transition(
                    kind="resend",
                    site_id=r["site_id"],
                    location=r["location"],
                    at=now,
                    incident_id=r["incident_id"],
                    started_at=r["started_at"],
                    category=r["category"],
                    message=r["first_error"],
                    sequence=(r["sequence"] or 0) + 1,
                )
            )
    for r in store.expiring_certificates(conn):
        # Its time is the expiry: one notice per site and certificate.
        reminders.append(Transition("cert_expiring", r["site_id"], None, r["expires_at"]))
    return reminders, store.site_channels(conn)
