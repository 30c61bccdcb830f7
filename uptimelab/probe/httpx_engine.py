"""The httpx engine of the probe (``PROBE_ENGINE=httpx``): the same checks as the lean transport,
through httpx, for comparison and as a fallback.

Phases come from httpcore's ``trace`` extension: connect (its connect_tcp resolves the name too,
so ``dns`` stays None), the TLS handshake, the time to the end of the response head (``ttfb``:
the trace has no first-byte event), and the rest of what was read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from ..domain.redaction import is_secret_header
from ..domain.sites import Probeable, status_expected
from .body import Page
from .http1 import BODY_CAP_BYTES
from .phases import PhaseClock

_LAPS = {
    "connection.connect_tcp.complete": "connect",
    "connection.start_tls.complete": "tls",
    "http11.receive_response_headers.complete": "ttfb",
}


async def fetch(
    client: httpx.AsyncClient,
    site: Probeable,
    expected: tuple[tuple[int, int], ...],
    clock: PhaseClock,
    page: Page,
) -> tuple[int, str | None, str | None]:
    """Send the request (with ``page``'s headers and body), follow redirects by the site's
    rules, read at most 64 KiB of body (kept in ``page`` if it asks); lap ``clock`` at the end
    of each phase."""
    request = client.build_request(
        site.method, site.url, headers=page.headers, content=page.content
    )
    trace = _tracer(clock)
    redirects = 0
    secrets_go = True  # until a redirect leads to another origin
    while True:
        request.extensions["trace"] = trace
        url = request.url
        clock.origin = (url.host, url.port or (443 if url.scheme == "https" else 80))
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
                if _origin(next_request.url) != _origin(request.url):
                    # As the lean engine: secret headers go only to the origin they were given
                    # (httpx itself drops only Authorization, and keeps it on http -> https).
                    secrets_go = False
                    for name in list(next_request.headers):
                        if is_secret_header(name):
                            del next_request.headers[name]
                elif secrets_go:
                    # httpx drops Cookie on every redirect (its cookie jar would give one); a
                    # site's own goes on to the same origin, as with the lean engine.
                    for name, value in (page.headers or {}).items():
                        if is_secret_header(name) and name not in next_request.headers:
                            next_request.headers[name] = value
                request = next_request
                continue
            code = response.status_code
            if page.keep_body and status_expected(code, expected):
                raw, more = await _read_kept(response)
                headers = response.headers
                page.keep(raw, headers.get("content-encoding"), headers.get("content-type"), more)
                return code, None, None
            await _read_capped(response)
            if status_expected(code, expected):
                return code, None, None
            return (
                code,
                "http_status",
                f"HTTP {code} {response.reason_phrase} (expected {site.expected_status})",
            )
        finally:
            await response.aclose()
            clock.lap("transfer")


def _tracer(clock: PhaseClock) -> Callable[[str, dict[str, Any]], Awaitable[None]]:
    async def trace(event: str, info: dict[str, Any]) -> None:
        phase = _LAPS.get(event)
        if phase is not None:
            clock.lap(phase)
            if phase == "tls":
                clock.saw_certificate(info["return_value"].get_extra_info("ssl_object"))

    return trace


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


async def _read_kept(response: httpx.Response) -> tuple[bytes, bool]:
    """The body as sent, up to BODY_CAP_BYTES, and whether it went on past that."""
    kept = bytearray()
    chunks = response.aiter_raw()
    async with contextlib.aclosing(chunks):  # type: ignore[type-var]
        async for chunk in chunks:
            kept += chunk[: BODY_CAP_BYTES - len(kept)]
            if len(kept) >= BODY_CAP_BYTES:
                return bytes(kept), True
    return bytes(kept), False


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
