"""Serving the API: hypercorn's trio worker, and with ``collect`` the collector, in one nursery.

The shape of ``uptimelab serve --collect``::

    serve                      one nursery: a signal watcher (or a stop event) and the two below
    ├── Collector.run          the schedule (only with collect=True)
    └── hypercorn's trio worker
        └── the app's lifespan a nursery for the cycles that POST /monitoring/trigger starts

The first SIGINT or SIGTERM stops the collector (its cycle stores what it probed) and asks the
server to finish its requests; a second one cancels everything.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import trio

from ..collector import Collector, Reporter
from ..concurrency import stop_on_signals
from ..config import Settings
from ..errors import ConfigError, UptimelabError, lone_exception
from ..storage.database import Database
from .app import create_app

GRACEFUL_TIMEOUT_S = 5.0
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP address or ``localhost``) only accepts connections from this
    machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, port: int, token: object | None) -> None:
    """Raise ConfigError unless the API may listen on ``host``:``port`` (0 picks a free port):
    an address other than loopback needs a ``token``."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"port={port}: use a port from 0 to 65535 (0 picks a free one)")
    if not host.strip():
        raise ConfigError("host='': give an address to listen on, such as 127.0.0.1")
    if not is_loopback(host) and token is None:
        raise ConfigError(
            f"host={host!r}: set UPTIMELAB_API_TOKEN to listen on an address other machines "
            "can reach (the POST endpoints need it)"
        )


async def serve(
    settings: Settings,
    db: Database,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    collect: bool = False,
    reporter: Reporter | None = None,
    stop: trio.Event | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the API on ``host``:``port`` (0 picks a free port) with hypercorn on trio; with
    ``collect``, run the collector on its schedule in the same nursery (``reporter`` is its
    reporter). The POST endpoints need ``settings.api_token``.

    Runs until ``stop`` is set or, with no ``stop`` given, until SIGINT or SIGTERM (main thread
    only); then the collector's cycle stores what it probed and the server finishes its
    requests. A second signal cancels at once. ``task_status.started`` gets the URLs served.

    Raises ConfigError for an address it may not listen on (public without a token),
    UptimelabError for one it cannot (taken, not this machine's), and what the collector raises
    (StoreError).
    """
    check_bind(host, port, settings.api_token)
    import hypercorn.config
    import hypercorn.trio

    collector = Collector(db, settings, reporter=reporter)
    allowed = None
    if is_loopback(host):
        allowed = {"127.0.0.1", "::1", *LOOPBACK_NAMES, host.strip("[]")}
    # An ASGI 3 app; hypercorn's own protocol types do not name it.
    app: Any = create_app(settings, db, collector=collector, allowed_hosts=allowed)
    config = hypercorn.config.Config()
    config.bind = [f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = GRACEFUL_TIMEOUT_S
    config.accesslog = logging.getLogger("uptimelab.api.access")
    config.errorlog = logging.getLogger("uptimelab.api.server")
    shutdown = trio.Event()

    def stop_gracefully() -> None:
        collector.stop()
        shutdown.set()

    def on_signal(name: str) -> None:
        cycle = " after the cycle stores what it probed" if collect else ""
        collector.reporter.note(f"{name}: stopping{cycle}")
        stop_gracefully()

    bound = False
    try:
        async with trio.open_nursery() as nursery:
            if stop is None:
                nursery.start_soon(stop_on_signals, on_signal, nursery.cancel_scope)
            else:
                nursery.start_soon(_stop_when_set, stop, stop_gracefully)
            async with trio.open_nursery() as work:
                if collect:
                    work.start_soon(collector.run)
                urls = await work.start(
                    partial(hypercorn.trio.serve, app, config, shutdown_trigger=shutdown.wait)
                )
                bound = True
                task_status.started(urls)
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        only = lone_exception(group)
        if isinstance(only, OSError) and not bound:
            # The address may be fine and taken, or not this machine's: the environment's
            # answer, not bad input (exit 1).
            raise UptimelabError(
                f"cannot listen on {host}:{port}: {only.strerror or only}"
            ) from only
        if isinstance(only, UptimelabError):
            raise only from None
        raise


async def _stop_when_set(stop: trio.Event, stop_gracefully: Callable[[], None]) -> None:
    await stop.wait()
    stop_gracefully()
