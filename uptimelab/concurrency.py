"""Two pieces of plumbing every long-running command shares: stopping on signals, and running trio
code from a thread that is not trio's (a notebook, a CLI command, a test).

    stop_on_signals(on_first, scope)   first SIGINT/SIGTERM: on_first(name); the second: cancel
    run_in_trio_thread(fn)             ``await fn()`` on trio in a fresh thread; its result
    trio_portal()                      a trio event loop in a background thread, kept open
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import trio

T = TypeVar("T")
SIGNALS = (signal.SIGINT, signal.SIGTERM)

if TYPE_CHECKING:  # anyio is imported where a portal is opened
    from anyio.from_thread import BlockingPortal


async def stop_on_signals(on_first: Callable[[str], None], scope: trio.CancelScope) -> None:
    """Watch SIGINT and SIGTERM (main thread only): the first calls ``on_first`` with the
    signal's name (stop gracefully), a second cancels ``scope`` at once."""
    # A SIGINT ignored from the start (a shell's background job, nohup) stays ignored, as
    # Python itself leaves it: otherwise it would be ignored only until this watcher starts.
    watched = [s for s in SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]
    with trio.open_signal_receiver(*watched) as signals:
        first = True
        async for signum in signals:
            if not first:
                scope.cancel()
                return
            first = False
            on_first(signal.Signals(signum).name)


@contextmanager
def trio_portal(name: str = "uptimelab") -> Iterator[BlockingPortal]:
    """anyio's blocking portal on the trio backend: a trio loop in a background thread, into which
    any thread (also one that runs an asyncio loop, as Jupyter's does) can call."""
    from anyio.from_thread import start_blocking_portal

    with start_blocking_portal(backend="trio", name=name) as portal:
        yield portal


def run_in_trio_thread(fn: Callable[[], Awaitable[T]]) -> T:
    """``await fn()`` under trio in a fresh thread; its result, or its exception re-raised here."""
    with trio_portal() as portal:
        return portal.call(fn)
