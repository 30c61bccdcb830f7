"""Error categories: what a failed request was, found by looking through the wrappers to the causes.

dns                 the name does not resolve
refused             nothing listens on the port
timeout             connect, read, or the whole ping took longer than its deadline
tls                 the TLS handshake failed or the certificate is not trusted
network             reset, unreachable, or closed before or during the response
protocol            the answer is not valid HTTP
http_status         a response whose status is not in the site's expected set
too_many_redirects  more redirects than the site's max_redirects
assertion           the page failed one of the site's assertions (a body that does not decode)
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator

import httpx
import trio

from .http1 import ResponseError

_REFUSED_ERRNOS = {errno.ECONNREFUSED}
_NETWORK_ERRNOS = {
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.ENETUNREACH,
    errno.EHOSTUNREACH,
    errno.ENETDOWN,
    errno.EHOSTDOWN,
}


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything behind it: causes, contexts and members of exception groups."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        for nxt in (current.__cause__, current.__context__):
            if nxt is not None:
                stack.append(nxt)


def categorise(exc: BaseException) -> tuple[str, str]:
    """The error category of a failed request and a short message.

    httpx wraps transport failures (a refused connection and a bad certificate are both a
    ConnectError), so this looks through the wrappers to the causes.
    """
    if isinstance(exc, ResponseError):
        return exc.category, str(exc)
    chain = list(causes(exc))

    def first(kind: type[BaseException] | tuple[type[BaseException], ...]) -> BaseException | None:
        return next((e for e in chain if isinstance(e, kind)), None)

    def with_errno(codes: set[int]) -> OSError | None:
        return next((e for e in chain if isinstance(e, OSError) and e.errno in codes), None)

    if (found := first(socket.gaierror)) is not None:
        return "dns", f"name resolution failed: {_strerror(found)}"
    if (found := first(ssl.SSLError)) is not None:
        reason = getattr(found, "verify_message", None) or getattr(found, "reason", None)
        return "tls", f"TLS failed: {reason or found}"
    if (found := first(ConnectionRefusedError) or with_errno(_REFUSED_ERRNOS)) is not None:
        return "refused", "connection refused"
    if (found := first((httpx.TimeoutException, trio.TooSlowError, TimeoutError))) is not None:
        return "timeout", f"timed out ({type(found).__name__})"
    if (
        found := first((ConnectionResetError, ConnectionAbortedError, BrokenPipeError))
        or with_errno(_NETWORK_ERRNOS)
    ) is not None:
        return "network", f"connection failed: {_strerror(found)}"
    if (found := first(httpx.RemoteProtocolError)) is not None:
        text = str(found)
        if "disconnected" in text or "peer closed" in text.lower():
            # The server closed the connection before or during the response.
            return "network", f"connection closed: {text}"
        return "protocol", f"malformed HTTP response: {text}"
    if (found := first(httpx.ProtocolError)) is not None:
        return "protocol", f"HTTP protocol error: {found}"
    if (found := first((httpx.NetworkError, OSError, trio.BrokenResourceError))) is not None:
        return "network", f"connection failed: {_strerror(found)}"
    return "network", f"{type(exc).__name__}: {exc}"


def _strerror(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
