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
    assertion           an expected status, but the page failed one of the site's assertions
                        (expect_body, expect_json, max_response_ms)

There is no CORS category: CORS is a browser policy, and a server-side client never meets it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http
import logging
import os
import ssl
import time
from collections.abc import Mapping
from types import TracebackType

import certifi
import httpx
import trio

from .._version import __version__
from ..domain.assertions import NO_ASSERTIONS, assertions
from ..domain.pings import PingResult
from ..domain.redaction import is_secret_header, redact
from ..domain.sites import Probeable, parse_expected_status, status_expected
from . import body, httpx_engine
from .body import Page
from .categorise import categorise, causes
from .http1 import BODY_CAP_BYTES, ResponseError
from .phases import CERT_HAS_EXPIRED, PhaseClock, expired_on
from .transport import REDIRECT_CODES, LeanClient, next_hop

log = logging.getLogger("uptimelab.probe")
ENGINES = ("lean", "httpx")
MAX_MESSAGE_CHARS = 500
USER_AGENT = f"uptimelab/{__version__} (uptime monitor)"
NO_PAGE = Page()


class Prober:
    """Pings sites, each ping on a fresh connection, through one of two engines.

    Every ping opens a new connection, so its time includes DNS, connect and TLS as a new visitor
    sees them. ``engine`` is ``"lean"`` (the default: a minimal HTTP/1.1 client on trio streams,
    a fraction of the CPU) or ``"httpx"``; both give the same Ping for the same server. Use as an
    async context manager; ``verify`` is True (certifi's CA bundle, as httpx, plus the CAs in the
    PEM file ``ca_bundle``), False, or an ``ssl.SSLContext`` used as it is. A site whose
    ``tls_verify`` is false is pinged without certificate verification whatever ``verify`` says,
    through a second, non-verifying context (and httpx client) made once per Prober.
    """

    def __init__(
        self,
        *,
        location: str,
        region_code: str,
        timeout_ms: int,
        verify: ssl.SSLContext | bool = True,
        engine: str = "lean",
        ca_bundle: str | os.PathLike[str] | None = None,
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"unknown probe engine {engine!r}; use one of {', '.join(ENGINES)}")
        self.location = location
        self.region_code = region_code
        self.timeout_ms = timeout_ms
        self.engine = engine
        context = ssl_context(verify, ca_bundle)
        # Sites with tls_verify false: a context that accepts any certificate, made once here
        # (0.2 ms: it loads no CAs), not per ping.
        unverified = self._unverified = ssl_context(False)
        self._lean = LeanClient(ssl_context=context, user_agent=USER_AGENT, body_cap=BODY_CAP_BYTES)
        self._lean_unverified = LeanClient(
            ssl_context=unverified, user_agent=USER_AGENT, body_cap=BODY_CAP_BYTES
        )
        self._client = None if engine == "lean" else _httpx_client(context)
        self._client_unverified = None if engine == "lean" else _httpx_client(unverified)
        self._expected: dict[str, tuple[tuple[int, int], ...]] = {}
        self._clients = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Prober:
        async with contextlib.AsyncExitStack() as stack:
            for client in (self._client, self._client_unverified):
                if client is not None:
                    await stack.enter_async_context(client)
            self._clients = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._clients.__aexit__(exc_type, exc, tb)

    async def ping(self, site: Probeable) -> PingResult | None:
        """Check ``site`` once within its deadline and return the Ping; never raises.

        Whatever the site does is a Ping (``down`` with a category). None means our own client
        failed (an exception no site behaviour explains: a bug): it is logged with its traceback
        under ``uptimelab.probe``, and the caller counts it as a collector fault, not as the
        site's downtime.
        """
        timeout_ms = site.timeout_ms or self.timeout_ms
        checked_at = dt.datetime.now(dt.UTC)
        clock = PhaseClock()
        checks = assertions(site.expect_body, site.expect_json, site.max_response_ms)
        if checks.reads_body or site.headers or site.body is not None:
            page = body.page(site, keep_body=checks.reads_body)
        else:
            page = NO_PAGE  # the common case: nothing to send or keep
        status_code: int | None = None
        category: str | None = None
        message: str | None = None
        with trio.move_on_after(timeout_ms / 1000) as deadline:
            try:
                status_code, category, message = await self._fetch(site, clock, page)
            except (
                httpx.HTTPError,
                httpx.InvalidURL,
                OSError,
                ResponseError,
                trio.BrokenResourceError,
            ) as exc:
                category, message = categorise(exc)
                if _expired(exc) and clock.origin is not None:
                    # Look again without verifying, to say when (within the same deadline).
                    when = await expired_on(clock.origin, self._unverified)
                    if when is not None:
                        message = f"TLS failed: certificate expired on {when:%Y-%m-%d %H:%M} UTC"
            except Exception as exc:  # noqa: BLE001 - our client's fault must not cost the cycle
                log.error(
                    "probe fault (%s engine) on %s: %s: %s",
                    self.engine,
                    redact(site.url),
                    type(exc).__name__,
                    _clean(str(exc), site.url, site.headers),
                    exc_info=exc,
                    extra={"component": "probe", "category": "fault", "site_id": str(site.id)},
                )
                return None
        if deadline.cancelled_caught:
            category, message = "timeout", f"no complete response within {timeout_ms} ms"
        elapsed_ms = round((time.perf_counter() - clock.started) * 1000)
        if category is None and checks is not NO_ASSERTIONS:
            failed = checks.check(page.body, elapsed_ms)
            if failed is not None:
                category, message = "assertion", failed
        return PingResult(
            site_id=site.id,
            checked_at=checked_at,
            status="up" if category is None else "down",
            status_code=status_code,
            response_time_ms=elapsed_ms,
            error_category=category,
            error_message=_clean(message, site.url, site.headers),
            location=self.location,
            region_code=self.region_code,
            **clock.milliseconds(),
            cert_expires_at=clock.cert_expires_at,
        )

    async def _fetch(
        self, site: Probeable, clock: PhaseClock, page: Page
    ) -> tuple[int, str | None, str | None]:
        """Send the request, follow redirects by the site's rules, read at most 64 KiB of body."""
        expected = self._expected.get(site.expected_status)
        if expected is None:
            expected = self._expected[site.expected_status] = parse_expected_status(
                site.expected_status
            )
        if self.engine == "lean":
            lean = self._lean if site.tls_verify else self._lean_unverified
            return await _fetch_lean(lean, site, expected, clock, page)
        client = self._client if site.tls_verify else self._client_unverified
        assert client is not None  # the httpx engine has its clients
        return await httpx_engine.fetch(client, site, expected, clock, page)


async def _fetch_lean(
    lean: LeanClient,
    site: Probeable,
    expected: tuple[tuple[int, int], ...],
    clock: PhaseClock,
    page: Page,
) -> tuple[int, str | None, str | None]:
    target = lean.target(site.url)
    method = site.method
    auth = target.authorization
    headers = page.headers
    redirects = 0
    while True:
        response = await lean.request(
            method,
            target,
            auth=auth,
            clock=clock,
            headers=headers,
            body=page.content_for(method),
            keep_body=page.keep_body,
        )
        code = response.status
        if site.follow_redirects and code in REDIRECT_CODES and response.location:
            if redirects >= site.max_redirects:
                return (
                    code,
                    "too_many_redirects",
                    f"more than {site.max_redirects} redirects "
                    f"(last to {response.location.decode('latin-1')})",
                )
            redirects += 1
            hop, method = next_hop(target, response.location, method, code)
            # Credentials go only where they were given: not to another origin.
            auth = hop.authorization or (auth if hop.origin == target.origin else None)
            if hop.origin != target.origin:
                headers = body.public(headers)
            target = hop
            continue
        if status_expected(code, expected):
            if page.keep_body:
                raw = response.body or b""
                page.keep(raw, response.content_encoding, response.content_type, response.more)
            return code, None, None
        reason = response.reason or _reason(code)
        return code, "http_status", f"HTTP {code} {reason} (expected {site.expected_status})"


def ssl_context(
    verify: ssl.SSLContext | bool, ca_bundle: str | os.PathLike[str] | None = None
) -> ssl.SSLContext:
    """The client TLS context for ``verify``: certifi's CA bundle (as httpx) plus the CAs of the
    PEM file ``ca_bundle`` (``UPTIMELAB_CA_BUNDLE``), no verification, or the given context as it
    is. Raises ssl.SSLError or OSError for a ``ca_bundle`` that cannot be read."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if not verify:
        # PROTOCOL_TLS_CLIENT has create_default_context's protocol defaults without loading the
        # system's CAs (20 ms) that a context verifying nothing never reads.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context(cafile=certifi.where())
    if ca_bundle is not None:
        context.load_verify_locations(cafile=os.fspath(ca_bundle))
    return context


def _httpx_client(context: ssl.SSLContext) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        verify=context,
        # No keep-alive: each request gets a new connection, closed after the response.
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
        # The deadline is ours (one cancel scope over the whole ping).
        timeout=None,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT, "Connection": "close"},
        trust_env=False,
    )


def _expired(exc: BaseException) -> bool:
    """Whether a handshake failed because a certificate expired."""
    return any(
        isinstance(e, ssl.SSLCertVerificationError) and e.verify_code == CERT_HAS_EXPIRED
        for e in causes(exc)
    )


def _reason(code: int) -> str:
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return ""


def _clean(message: str | None, url: str, headers: Mapping[str, str] | None = None) -> str | None:
    """One line, credentials redacted (the URL's, and the values of secret ``headers``, which a
    page may echo), at most MAX_MESSAGE_CHARS characters."""
    if message is None:
        return None
    text = redact(" ".join(message.split()))
    for name, value in (headers or {}).items():
        if value and is_secret_header(name):
            text = text.replace(value, "***")
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
