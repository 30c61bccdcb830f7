"""What a transition says: one message (title, body, type) per transition, for people.

Pure: the site's name and URL come in as a :class:`SiteFacts`; the URL is shown redacted (its
userinfo and secret query values hidden), as everywhere else.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Literal

from ..domain.incidents import Transition
from ..domain.redaction import redact
from ..text import one_line, span

MessageType = Literal["info", "success", "warning", "failure"]
"""apprise's notification types; a receiver may colour by them."""


@dataclass(frozen=True, slots=True)
class SiteFacts:
    """What a message says of its site: name (may be empty), URL, the channels it adds."""

    id: uuid.UUID
    name: str
    url: str
    notify: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Message:
    """One notification as sent: a title, a body of a few lines, apprise's type."""

    title: str
    body: str
    type: MessageType


_TITLES: dict[str, tuple[str, MessageType]] = {
    "down": ("DOWN", "failure"),
    "recovered": ("UP", "success"),
    "flapping": ("FLAPPING", "warning"),
    "stable": ("STABLE", "info"),
    "resend": ("STILL DOWN", "failure"),
    "cert_expiring": ("CERTIFICATE EXPIRING", "warning"),
}


def _when(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def message_for(
    transition: Transition,
    site: SiteFacts,
    *,
    now: dt.datetime,
    public_url: str | None = None,
    locations: str | None = None,
) -> Message:
    """The message telling people of ``transition`` of ``site``. ``now`` (aware) dates a
    reminder's "down for"; ``public_url`` (the API's base URL) adds a link to the site;
    ``locations`` says where it was seen (default: the transition's location)."""
    t = transition
    locations = locations or t.location
    label, kind = _TITLES[t.kind]
    name = site.name or redact(site.url)
    where = f" at {t.location}" if t.location else ""
    if t.kind == "down":
        since = t.started_at or t.at
        lead = f"{name} is down{where} since {_when(since)}."
    elif t.kind == "recovered":
        lasted = f" after {span(t.duration)}" if t.duration is not None else ""
        lead = f"{name} is up again{where}{lasted} (since {_when(t.at)})."
    elif t.kind == "resend":
        since = t.started_at or t.at
        lead = (
            f"{name} is still down{where}: down for {span(max(now - since, dt.timedelta(0)))} "
            f"(since {_when(since)}; reminder {t.sequence})."
        )
    elif t.kind == "flapping":
        why = f" ({t.message})" if t.message else ""
        lead = (
            f"{name} is flapping{where}: its state changes too often{why}. Further notices "
            "are held until it is stable."
        )
    elif t.kind == "stable":
        now_is = f" ({t.message})" if t.message else ""
        lead = f"{name} is stable again{where}{now_is}; notices resume."
    else:
        left = (t.at - now).total_seconds() / 86_400
        lead = f"{name}'s certificate expires {_when(t.at)} " + (
            f"(in {left:.0f} days)." if left >= 0 else "(it has expired)."
        )
    lines = [lead, f"URL: {redact(site.url)}"]
    if locations:
        lines.append(f"{'Locations' if ', ' in locations else 'Location'}: {locations}")
    if t.category and t.kind in ("down", "resend"):
        lines.append(f"Category: {t.category}")
    if t.message and t.kind in ("down", "resend"):
        lines.append(f"First error: {one_line(redact(t.message), 300)}")
    if public_url:
        lines.append(f"{public_url}/site-stats/{site.id}")
    return Message(title=f"{label}: {name}", body="\n".join(lines), type=kind)
