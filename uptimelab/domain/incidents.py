"""Incidents and their transitions: the stateful side of monitoring, as plain values.

An incident is a confirmed outage of a site at one location (or of the quorum verdict, location
None): it starts at its first down ping, is confirmed after the site's ``down_after`` consecutive
down pings and resolves at the first up ping of ``up_after`` consecutive up ones. The storage
layer maintains the ``incidents`` table as pings are stored and reports what changed as
``Transition`` values; the notifier turns each transition into one message.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Literal

TransitionKind = Literal["down", "recovered", "flapping", "stable", "resend", "cert_expiring"]
"""What happened: an incident confirmed (``down``) or resolved (``recovered``); the site started
(``flapping``) or stopped (``stable``) changing state too often; a reminder while still down
(``resend``); a certificate expiring within the site's ``cert_min_days``."""

TRANSITION_KINDS: tuple[TransitionKind, ...] = (
    "down",
    "recovered",
    "flapping",
    "stable",
    "resend",
    "cert_expiring",
)


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of a site's state that people are told about.

    ``location`` is None for the site's own state (the quorum verdict where two or more locations
    report, else its one location's). ``at`` is when the transition happened (the confirming ping
    of ``down``, the first up ping of ``recovered``). ``sequence`` tells repeated transitions of
    one incident apart (the n-th ``resend``); ``key`` is the stable id that deduplicates delivery.
    """

    kind: TransitionKind
    site_id: uuid.UUID
    location: str | None
    at: dt.datetime
    incident_id: int | None = None
    started_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    category: str | None = None
    message: str | None = None
    sequence: int = 0

    @property
    def key(self) -> str:
        """A stable id of this transition: the same transition always has the same key."""
        subject = (
            f"incident:{self.incident_id}"
            if self.incident_id is not None
            else f"site:{self.site_id}:{self.location or ''}:{self.at.isoformat()}"
        )
        return f"{subject}:{self.kind}:{self.sequence}"

    @property
    def duration(self) -> dt.timedelta | None:
        """How long the incident lasted, for ``recovered``."""
        if self.started_at is None or self.resolved_at is None:
            return None
        return self.resolved_at - self.started_at
