"""Notifications: telling people of transitions (down, recovered, flapping, stable, reminders,
certificates expiring) through apprise.

Between the storage layer (whose writer reports the transitions of each stored batch, and which
keeps the notifications table) and the collector (which runs the :class:`Notifier` and hands it
the transitions). Importing this package does not import apprise: only
:mod:`uptimelab.notify.sender` does, when a message is first sent.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from ..config import Settings, env_name
from ..errors import ConfigError
from .channels import Channel, redact_channel
from .messages import Message

__all__ = ["Channel", "redact_channel", "send_test"]


def send_test(urls: Sequence[str] = (), settings: Settings | None = None) -> list[str]:
    """Send a test message to each of ``urls`` (apprise URLs), or to every URL of NOTIFY_URLS
    when none is given; blocking. Returns the channels reached, redacted.

    Raises ConfigError when there is no URL at all or one is not a URL apprise knows (before
    anything is sent), DeliveryError (one line, the channel redacted) for the first channel that
    did not take the message."""
    from ..domain.incidents import parse_notify_urls
    from .sender import deliver

    given = ""
    if not urls:
        settings = settings or Settings.load()
        urls = [u.get_secret_value() for u in settings.notify_urls]
        given = f"{env_name('notify_urls')}: "
    if not urls:
        raise ConfigError(f"no URL given and {env_name('notify_urls')} is empty: nothing to test")
    try:  # the rules of a site's notify list: a typo is bad input, not a failed delivery
        parse_notify_urls(list(urls))
    except ValueError as exc:
        raise ConfigError(given + str(exc).removeprefix("notify: ")) from None
    message = Message(
        title="uptimelab: test notification",
        body=f"A test message from uptimelab on {socket.gethostname()}: this channel works.",
        type="info",
    )
    reached = []
    for url in dict.fromkeys(u.strip() for u in urls):
        channel = Channel(url)
        deliver(channel, message)
        reached.append(channel.shown)
    return reached
