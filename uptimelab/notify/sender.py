"""Sending one message to one channel through apprise: the only module that imports it.

apprise is heavy (its plugins, requests, markdown): ``import uptimelab`` and the CLI's help never
load it, and a collector loads it on its first notification. Its ``async_notify`` runs on
asyncio, so under trio the synchronous ``notify`` runs in a worker thread (the notifier's
limiter bounds them); apprise's own log lines become the one-line reason of a failure instead of
reaching stderr.
"""

from __future__ import annotations

import logging
import re

import apprise

from ..domain.redaction import redact
from ..errors import UptimelabError
from ..text import one_line
from .channels import MASK, Channel
from .messages import Message

# apprise logs each failure as a warning; the notifier says it once, redacted, in its own words.
logging.getLogger(apprise.LOGGER_NAME).propagate = False

_TYPES = {
    "info": apprise.NotifyType.INFO,
    "success": apprise.NotifyType.SUCCESS,
    "warning": apprise.NotifyType.WARNING,
    "failure": apprise.NotifyType.FAILURE,
}
_PIECES = re.compile(r"[^/:@?&=#]{4,}")
# An IPv4 address or a dotted host name: what apprise names a receiver by, never a secret.
_ADDRESS = re.compile(r"(?i)\d{1,3}(?:\.\d{1,3}){3}|[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}")


class DeliveryError(UptimelabError):
    """A notification could not be delivered (the receiver refused it or was not reached, or
    the URL is not one apprise knows); the message names the channel redacted."""


class UnknownChannelError(DeliveryError):
    """apprise knows no service by this URL: no retry can help."""


def deliver(channel: Channel, message: Message) -> None:
    """Send ``message`` to ``channel`` now (blocking: call it in a worker thread).

    Raises DeliveryError, one line naming the channel redacted and apprise's reason."""
    sender = apprise.Apprise()
    if not sender.add(channel.url):
        raise UnknownChannelError(f"{channel.shown}: not a notification URL apprise knows")
    try:
        result = sender.notify(
            body=message.body, title=message.title, notify_type=_TYPES[message.type]
        )
    except Exception as exc:  # noqa: BLE001 - a plugin's fault is this channel's failure
        reason = _scrub(f"{type(exc).__name__}: {exc}", channel.url)
        raise DeliveryError(f"{channel.shown}: apprise failed: {reason}") from exc
    if result:
        return
    reasons = [
        entry.message
        for entry in result.logs()
        if entry.level in ("WARNING", "ERROR", "CRITICAL") and entry.message.strip()
    ]
    reason = reasons[0] if reasons else "the receiver did not accept it"
    raise DeliveryError(f"{channel.shown}: {_scrub(reason, channel.url)}")


def _scrub(text: str, url: str) -> str:
    """apprise's reason without any piece of the URL it might quote (tokens, passwords)."""
    scheme, _, rest = url.partition("://")
    for piece in sorted(set(_PIECES.findall(rest)), key=len, reverse=True):
        if not _ADDRESS.fullmatch(piece):
            text = text.replace(piece, MASK)  # a host name or an address says no secret
    return one_line(redact(text), 300)
