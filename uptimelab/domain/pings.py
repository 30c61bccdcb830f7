"""Pings: what one check of one site found, its columns and its error categories."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

# The columns of ``pings``, in the order the writer copies them.
PING_COLUMNS = (
    "site_id",
    "checked_at",
    "status",
    "status_code",
    "response_time_ms",
    "error_category",
    "error_message",
    "location",
    "region_code",
    # Added by sql/008_probe_depth.sql: phase timings and the server certificate's expiry.
    "dns_ms",
    "connect_ms",
    "tls_ms",
    "ttfb_ms",
    "transfer_ms",
    "cert_expires_at",
)

PHASES = ("dns", "connect", "tls", "ttfb", "transfer")
"""The phases of a ping, in order; ``pings`` has a ``<phase>_ms`` column for each."""

ERROR_CATEGORIES = (
    "dns",
    "refused",
    "timeout",
    "tls",
    "network",
    "protocol",
    "http_status",
    "too_many_redirects",
    # Added by sql/009_assertions.sql: an expected status, but the page failed an assertion.
    "assertion",
)


@dataclass(slots=True)
class PingResult:
    """One ping, as the probe made it: the columns of ``pings``, in a small object (a cycle of
    100 000 sites holds 100 000 of them).

    The phases (milliseconds, None where a phase did not happen or did not end): ``dns_ms``
    name resolution, ``connect_ms`` TCP connect, ``tls_ms`` the handshake, ``ttfb_ms`` from the
    request sent to the first response byte, ``transfer_ms`` from there to the end of what was
    read. Over redirects each is the sum over the hops. ``cert_expires_at``: the expiry of the
    server's certificate, for an HTTPS ping whose handshake succeeded (the earliest over the
    hops).
    """

    site_id: uuid.UUID
    checked_at: dt.datetime
    status: str
    status_code: int | None
    response_time_ms: int | None
    error_category: str | None
    error_message: str | None
    location: str
    region_code: str
    dns_ms: int | None = None
    connect_ms: int | None = None
    tls_ms: int | None = None
    ttfb_ms: int | None = None
    transfer_ms: int | None = None
    cert_expires_at: dt.datetime | None = None
