"""Incidents and their transitions: the stateful side of monitoring, as plain values.

An incident is a confirmed outage of a site at one location (or of the quorum verdict, location
None): it starts at its first down ping, is confirmed after the site's ``down_after`` consecutive
down pings and resolves at the first up ping of ``up_after`` consecutive up ones. The storage
layer maintains the ``incidents`` table as pings are stored and reports what changed as
``Transition`` values; the notifier turns each transition into one message.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
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
    ``stored_at`` is when its ping was stored by a direct write, as soon as its batch was complete
    (a ``collect --once`` cycle's at its end): its age for NOTIFY_MAX_AGE_MS counts from then;
    None (a replayed spool, or not known) counts it from ``at``.
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
    stored_at: dt.datetime | None = None

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


# --------------------------------------------------------------------------------------------
# A site's own notification URLs (the ``notify`` column)

MAX_NOTIFY_URLS = 20
MAX_NOTIFY_URL_CHARS = 2048
_NOTIFY_URL = re.compile(r"(?i)[a-z][a-z0-9+.-]*://\S+")


def parse_notify_urls(value: object) -> list[str] | None:
    """A site's ``notify`` list from what a user gave: a list of apprise URLs, or text (a site
    file's cell) holding a JSON list or URLs separated by white space. Empty means None.

    Each URL is ``scheme://...`` without white space, at most 2048 characters, and one that
    apprise knows (:func:`apprise_knows`); at most 20.
    Raises ValueError naming the rule broken (quoting no URL: they carry tokens)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise ValueError(
                    "notify: give a JSON list of URLs, or URLs separated by spaces"
                ) from None
        else:
            value = text.split()
    if not isinstance(value, list | tuple) or not all(isinstance(u, str) for u in value):
        raise ValueError("notify: give a list of apprise URLs")
    urls = list(dict.fromkeys(u.strip() for u in value if u.strip()))
    if not urls:
        return None
    if len(urls) > MAX_NOTIFY_URLS:
        raise ValueError(f"notify: at most {MAX_NOTIFY_URLS} URLs")
    for number, url in enumerate(urls, 1):
        if len(url) > MAX_NOTIFY_URL_CHARS or not _NOTIFY_URL.fullmatch(url):
            raise ValueError(
                f"notify: URL {number} is not an apprise URL (scheme://..., no spaces, "
                f"at most {MAX_NOTIFY_URL_CHARS} characters)"
            )
    for number, url in enumerate(urls, 1):
        if not apprise_knows(url):
            raise ValueError(
                f"notify: URL {number} ({redact_notify_url(url)}) is not a notification URL "
                "apprise knows"
            )
    return urls


def apprise_knows(url: str) -> bool:
    """Whether apprise takes ``url`` as a notification service, as ``notify test`` asks it:
    parsing only, nothing is sent."""
    import apprise  # here: apprise is heavy, loaded only when a notify list is checked

    # apprise logs an unknown URL as an error line (quoting it, token included); we say it once.
    logging.getLogger(apprise.LOGGER_NAME).propagate = False
    return bool(apprise.Apprise().add(url))


def redact_notify_url(url: str) -> str:
    """An apprise URL as it may be shown: its scheme only (``tgram://***``); whatever follows
    may be a token."""
    return f"{url.partition('://')[0].lower()}://***"


def shown_notify(urls: list[str] | tuple[str, ...] | None) -> str:
    """A site's notify list as it may be shown, e.g. ``json://***, tgram://***``."""
    return ", ".join(redact_notify_url(u) for u in urls or ())
