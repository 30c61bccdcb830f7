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

from ..domain.sites import Probeable, status_expected
from .phases import PhaseClock
from .transport import BODY_CAP_BYTES

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
) -> tuple[int, str | None, str | None]:
    """Send the request, follow redirects by the site's rules, read at most 64 KiB of body;
    lap ``clock`` at the end of each phase."""
    request = client.build_request(site.method, site.url)
    trace = _tracer(clock)
    redirects = 0
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
            clock.lap("transfer")


def _tracer(clock: PhaseClock) -> Callable[[str, dict[str, Any]], Awaitable[None]]:
    async def trace(event: str, info: dict[str, Any]) -> None:
        phase = _LAPS.get(event)
        if phase is not None:
            clock.lap(phase)
            if phase == "tls":
                clock.saw_certificate(info["return_value"].get_extra_info("ssl_object"))

    return trace


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
