"""One check of one site -> a :class:`PingResult`, and error categorisation.

A failed ping is data, not an exception: :meth:`Prober.ping` always returns a result, whose
``error_category`` says why a site is down. Categories::

    dns                 the name does not resolve
    refused             nothing listens on the port
    timeout             connect, read, or the whole ping took longer than its deadline
    tls                 the TLS handshake failed or the certificate is not trusted
    network             reset, unreachable, or closed before or during the response
    protocol            the answer is not valid HTTP
    http_status         a response whose status is not in the site's expected set
    too_many_redirects  more redirects than the site's max_redirects

There is no CORS category: CORS is a browser policy, and a server-side client never meets it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import http
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

import certifi
import httpx
import trio

from . import __version__
from .lean import REDIRECT_CODES, LeanClient, ResponseError, next_hop
from .models import Ping
from .sites import parse_expected_status, redact, status_expected

BODY_CAP_BYTES = 64 * 1024
ENGINES = ("lean", "httpx")
MAX_MESSAGE_CHARS = 500
USER_AGENT = f"uptimelab/{__version__} (uptime monitor)"

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


class Probeable(Protocol):
    """What the probe needs of a site (a :class:`~uptimelab.models.Site` has it all)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def url(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def expected_status(self) -> str: ...
    @property
    def follow_redirects(self) -> bool: ...
    @property
    def max_redirects(self) -> int: ...
    @property
    def timeout_ms(self) -> int | None: ...


@dataclass(slots=True)
class PingResult:
    """One ping, as the probe made it: the columns of ``pings``, in a small object (a cycle of
    100 000 sites holds 100 000 of them)."""

    site_id: uuid.UUID
    checked_at: dt.datetime
    status: str
    status_code: int | None
    response_time_ms: int | None
    error_category: str | None
    error_message: str | None
    location: str
    region_code: str

    def as_record(self) -> Ping:
        """The same ping as a SQLModel row."""
        return Ping(**{f: getattr(self, f) for f in self.__slots__})


class Prober:
    """Pings sites, each ping on a fresh connection, through one of two engines.

    Every ping opens a new connection, so its time includes DNS, connect and TLS as a new visitor
    sees them. ``engine`` is ``"lean"`` (the default: a minimal HTTP/1.1 client on trio streams,
    a fraction of the CPU) or ``"httpx"``; both give the same Ping for the same server. Use as an
    async context manager; ``verify`` is True (system-independent CA bundle, as httpx), False,
    or an ``ssl.SSLContext`` (to trust a private CA).
    """

    def __init__(
        self,
        *,
        location: str,
        region_code: str,
        timeout_ms: int,
        verify: ssl.SSLContext | bool = True,
        engine: str = "lean",
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"unknown probe engine {engine!r}; use one of {', '.join(ENGINES)}")
        self.location = location
        self.region_code = region_code
        self.timeout_ms = timeout_ms
        self.engine = engine
        self._lean = LeanClient(
            ssl_context=ssl_context(verify), user_agent=USER_AGENT, body_cap=BODY_CAP_BYTES
        )
        self._client = (
            None
            if engine == "lean"
            else httpx.AsyncClient(
                verify=verify,
                # No keep-alive: each request gets a new connection, closed after the response.
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
                # The deadline is ours (one cancel scope over the whole ping).
                timeout=None,
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT, "Connection": "close"},
                trust_env=False,
            )
        )
        self._expected: dict[str, tuple[tuple[int, int], ...]] = {}

    async def __aenter__(self) -> Prober:
        if self._client is not None:
            await self._client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.__aexit__(exc_type, exc, tb)

    async def ping(self, site: Probeable) -> PingResult:
        """Check ``site`` once within its deadline and return the Ping (never raises for the site's
        failures)."""
        timeout_ms = site.timeout_ms or self.timeout_ms
        checked_at = dt.datetime.now(dt.UTC)
        started = time.perf_counter()
        status_code: int | None = None
        category: str | None = None
        message: str | None = None
        with trio.move_on_after(timeout_ms / 1000) as deadline:
            try:
                status_code, category, message = await self._fetch(site)
            except (
                httpx.HTTPError,
                httpx.InvalidURL,
                OSError,
                ResponseError,
                trio.BrokenResourceError,
            ) as exc:
                category, message = categorise(exc)
        if deadline.cancelled_caught:
            category, message = "timeout", f"no complete response within {timeout_ms} ms"
        elapsed_ms = round((time.perf_counter() - started) * 1000)
        return PingResult(
            site_id=site.id,
            checked_at=checked_at,
            status="up" if category is None else "down",
            status_code=status_code,
            response_time_ms=elapsed_ms,
            error_category=category,
            error_message=_clean(message, site.url),
            location=self.location,
            region_code=self.region_code,
        )

    async def _fetch(self, site: Probeable) -> tuple[int, str | None, str | None]:
        """Send the request, follow redirects by the site's rules, read at most 64 KiB of body."""
        expected = self._expected.get(site.expected_status)
        if expected is None:
            expected = self._expected[site.expected_status] = parse_expected_status(
                site.expected_status
            )
        if self.engine == "lean":
            return await self._fetch_lean(site, expected)
        return await self._fetch_httpx(site, expected)

    async def _fetch_lean(
        self, site: Probeable, expected: tuple[tuple[int, int], ...]
    ) -> tuple[int, str | None, str | None]:
        target = self._lean.target(site.url)
        method = site.method
        auth = target.authorization
        redirects = 0
        while True:
            response = await self._lean.request(method, target, auth=auth)
            code = response.status
            if site.follow_redirects and code in REDIRECT_CODES and response.location:
                if redirects >= site.max_redirects:
                    return (
                        code,
                        "too_many_redirects",
                        f"more than {site.max_redirects} redirects (last to {response.location})",
                    )
                redirects += 1
                hop, method = next_hop(target, response.location, method, code)
                # Credentials go only where they were given: not to another origin.
                auth = hop.authorization or (auth if hop.origin == target.origin else None)
                target = hop
                continue
            if status_expected(code, expected):
                return code, None, None
            reason = response.reason or _reason(code)
            return code, "http_status", f"HTTP {code} {reason} (expected {site.expected_status})"

    async def _fetch_httpx(
        self, site: Probeable, expected: tuple[tuple[int, int], ...]
    ) -> tuple[int, str | None, str | None]:
        client = self._client
        assert client is not None  # the httpx engine has a client
        request = client.build_request(site.method, site.url)
        redirects = 0
        while True:
            response = await client.send(request, stream=True)
            try:
                next_request = response.next_request
                if site.follow_redirects and next_request is not None:
                    if redirects >= site.max_redirects:
                        return (
                            response.status_code,
                            "too_many_redirects",
                            f"more than {site.max_redirects} redirects "
                            f"(last to {response.headers.get('location', '?')})",
                        )
                    redirects += 1
                    request = next_request
                    continue
                await _read_capped(response)
                code = response.status_code
                if status_expected(code, expected):
                    return code, None, None
                return (
                    code,
                    "http_status",
                    f"HTTP {code} {response.reason_phrase} (expected {site.expected_status})",
                )
            finally:
                await response.aclose()


async def _read_capped(response: httpx.Response) -> int:
    """Read the body up to BODY_CAP_BYTES and stop: a 10 GB body costs no more than 64 KiB."""
    read = 0
    chunks = response.aiter_raw()
    async with contextlib.aclosing(chunks):  # type: ignore[type-var]
        async for chunk in chunks:
            read += len(chunk)
            if read >= BODY_CAP_BYTES:
                break
    return read


def _causes(exc: BaseException) -> Iterator[BaseException]:
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
    chain = list(_causes(exc))

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


def ssl_context(verify: ssl.SSLContext | bool) -> ssl.SSLContext:
    """The client TLS context for ``verify``: certifi's CA bundle (as httpx), none, or the given."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=certifi.where())


def _reason(code: int) -> str:
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return ""


def _strerror(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _clean(message: str | None, url: str) -> str | None:
    """One line, credentials redacted, at most MAX_MESSAGE_CHARS characters."""
    if message is None:
        return None
    text = redact(" ".join(message.split()))
    # A password may also appear on its own (a library quoting a header, say).
    try:
        password = httpx.URL(url).password
    except httpx.InvalidURL:
        password = None
    if password:
        text = text.replace(password, "***")
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 3] + "..."
    return text
