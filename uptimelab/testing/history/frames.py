"""The synthetic history's arrays made into frames: the pings (with their phases and
certificates) and the cycles, and what a down ping's message index stands for (its text, its
category, its status code). :mod:`.generate` draws the arrays; nothing here draws from its
random stream (the phases have their own, the cycles' ids take the one they are given).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from ...domain.pings import ERROR_CATEGORIES

if TYPE_CHECKING:
    from .generate import SyntheticSite

HISTORY_LOCATION: Final = "demo-history"
HISTORY_REGION: Final = "ZZ"
TIMEOUT_MS: Final = 10_000

# A down ping is a message index: MESSAGES[i] is its text, category_index(i) its category.
CATEGORY: Final = {name: i for i, name in enumerate(ERROR_CATEGORIES)}
MESSAGES: Final = (
    "name resolution failed: Name or service not known",
    "connection refused",
    f"no complete response within {TIMEOUT_MS} ms",
    "TLS failed: certificate has expired",
    "connection failed: Connection reset by peer",
    "connection failed: No route to host",
    "HTTP 502 Bad Gateway (expected 200-399)",
    "HTTP 503 Service Unavailable (expected 200-399)",
)
MESSAGE_OF: Final = {"dns": 0, "refused": 1, "timeout": 2, "tls": 3, "network": 4}
NO_ROUTE, HTTP_502, HTTP_503 = 5, 6, 7


def category_index(message: int) -> int:
    """The index in ERROR_CATEGORIES of the category of message index ``message``."""
    if message in (HTTP_502, HTTP_503):
        return CATEGORY["http_status"]
    if message == NO_ROUTE:
        return CATEGORY["network"]
    return CATEGORY[next(c for c, m in MESSAGE_OF.items() if m == message)]


def pings_frame(
    roster: list[SyntheticSite],
    starts: pd.DatetimeIndex,
    kept: npt.NDArray[np.bool_],
    offset_ms: npt.NDArray[np.float64],
    message: npt.NDArray[np.int8],
    cat: npt.NDArray[np.int8],
    rt_ms: npt.NDArray[np.int64],
) -> pd.DataFrame:
    """The pings of the slots and sites ``kept``: site names, times, status, code, message."""
    slot_idx, site_idx = np.nonzero(kept)
    start_us = starts.as_unit("us").asi8[slot_idx]
    checked_us = start_us + np.rint(offset_ms[slot_idx, site_idx] * 1000).astype(np.int64)
    msg = message[slot_idx, site_idx]
    category = cat[slot_idx, site_idx]
    up = msg < 0
    code = np.where(up, 200, np.where(msg == HTTP_502, 502, np.where(msg == HTTP_503, 503, 0)))
    messages = np.array([None, *MESSAGES], dtype=object)
    return pd.DataFrame(
        {
            "site": pd.Categorical.from_codes(
                site_idx, categories=pd.Index([s.name for s in roster])
            ),
            "checked_at": pd.to_datetime(checked_us, unit="us", utc=True),
            "status": pd.Categorical(np.where(up, "up", "down"), categories=["up", "down"]),
            "status_code": pd.arrays.IntegerArray(code.astype(np.int32), mask=code == 0),
            "response_time_ms": pd.array(rt_ms[slot_idx, site_idx], dtype="Int32"),
            "error_category": pd.Categorical.from_codes(
                category.astype(np.int64), categories=pd.Index(list(ERROR_CATEGORIES))
            ),
            "error_message": messages[msg.astype(np.int64) + 1],
            "location": HISTORY_LOCATION,
            "region_code": HISTORY_REGION,
        }
    )


def cycles_frame(
    rng: np.random.Generator,
    starts: pd.DatetimeIndex,
    ran: npt.NDArray[np.bool_],
    kept: npt.NDArray[np.bool_],
    down: npt.NDArray[np.bool_],
    duration_ms: npt.NDArray[np.int64],
    interrupted: int,
    sites: int,
) -> pd.DataFrame:
    """A ``monitoring_cycles`` row for each slot that ``ran``; ids drawn from ``rng``."""
    idx = np.flatnonzero(ran)
    checked = kept[idx].sum(axis=1)
    n_down = (down & kept)[idx].sum(axis=1)
    started_at = pd.DatetimeIndex(starts[idx]).as_unit("us")
    errors = np.full(len(idx), None, dtype=object)
    if interrupted >= 0:
        where = int(np.searchsorted(idx, interrupted))
        errors[where] = f"interrupted after {checked[where]} of {sites} sites"
    return pd.DataFrame(
        {
            "id": [uuid.UUID(bytes=rng.bytes(16), version=4) for _ in idx],
            "started_at": started_at,
            "finished_at": started_at + pd.to_timedelta(duration_ms[idx], unit="ms"),
            "location": HISTORY_LOCATION,
            "region_code": HISTORY_REGION,
            "sites_checked": checked.astype(np.int64),
            "up": (checked - n_down).astype(np.int64),
            "down": n_down.astype(np.int64),
            "duration_ms": duration_ms[idx],
            "dry_run": False,
            "error": errors,
        }
    )


def add_phases_and_certificates(
    pings: pd.DataFrame, sites: int, seed: int, last: pd.Timestamp
) -> None:
    """Split each up ping's response time into phases by its site's shares (one site slow to
    resolve, one slow in TLS, the rest mostly the server), and give each site's up pings its
    certificate's expiry (two expiring within two weeks of the end). A stream of random numbers
    of its own: the rest of the history stays what the seed made before phases existed."""
    rng = np.random.default_rng([seed, 13])
    shares = np.column_stack(
        [
            rng.uniform(0.01, 0.08, sites),  # dns
            rng.uniform(0.05, 0.15, sites),  # connect
            rng.uniform(0.08, 0.2, sites),  # tls
            rng.uniform(0.02, 0.08, sites),  # transfer
        ]
    )
    order = rng.permutation(sites)
    shares[order[0], 0] = 0.55  # a slow resolver
    shares[order[1], 2] = 0.45  # a slow handshake
    days = rng.uniform(25, 120, sites)
    days[order[2]], days[order[3]] = 3.5, 10.5
    site_idx = pings["site"].cat.codes.to_numpy()
    up = (pings["status"] == "up").to_numpy()
    rt = pings["response_time_ms"].to_numpy(dtype=np.int64, na_value=0)
    parts = np.floor(rt[:, None] * shares[site_idx]).astype(np.int64)
    ttfb = rt - parts.sum(axis=1)
    for name, values in zip(
        ("dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "transfer_ms"),
        (parts[:, 0], parts[:, 1], parts[:, 2], ttfb, parts[:, 3]),
        strict=True,
    ):
        pings[name] = pd.arrays.IntegerArray(values.astype(np.int32), mask=~up)
    expiry = (last + pd.to_timedelta(days, unit="D")).floor("s").as_unit("us")
    pings["cert_expires_at"] = pd.Series(expiry[site_idx]).where(up).array
