"""The httpx engine of the probe (``PROBE_ENGINE=httpx``): the same checks as the lean transport,
through httpx, for comparison and as a fallback."""

from __future__ import annotations

import contextlib

import httpx

from ..domain.sites import Probeable, status_expected
from .transport import BODY_CAP_BYTES


async def fetch(
    client: httpx.AsyncClient, site: Probeable, expected: tuple[tuple[int, int], ...]
) -> tuple[int, str | None, str | None]:
    """Send the request, follow redirects by the site's rules, read at most 64 KiB of body."""
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
