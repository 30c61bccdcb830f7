"""Certificates: when each site's certificate expires, and which expire soon."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .frames import require_columns, utc_timestamp

DEFAULT_MIN_DAYS = 14


def certificate_expiry(
    pings: pd.DataFrame,
    *,
    names: Mapping[str, str] | None = None,
    now: dt.datetime | pd.Timestamp | str | None = None,
    min_days: Mapping[str, int] | int = DEFAULT_MIN_DAYS,
) -> pd.DataFrame:
    """Per site with a certificate seen, the expiry of its latest one (the latest ping with a
    ``cert_expires_at``), the days left at ``now`` (default: the present; negative once
    expired) and whether that is fewer than ``min_days`` (per site id, or one number; the
    sites' ``cert_min_days``): a warning, not downtime.

    Indexed by ``site_id`` (str); columns ``site``, ``expires_at`` (UTC), ``days_left``
    (float64), ``min_days`` (int64), ``expiring`` (bool); soonest first. Raises ValueError for
    a missing column.
    """
    require_columns(pings, "site_id", "checked_at", "cert_expires_at")
    at = pd.Timestamp.now(tz="UTC") if now is None else utc_timestamp(now)
    seen = pings.loc[pings["cert_expires_at"].notna(), ["site_id", "checked_at", "cert_expires_at"]]
    columns = ["site", "expires_at", "days_left", "min_days", "expiring"]
    if seen.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="site_id", dtype="str"))
    latest = (
        seen.sort_values("checked_at", kind="stable")
        .groupby(seen["site_id"].astype(str), observed=True)
        .tail(1)
    )
    ids = latest["site_id"].astype(str).to_numpy()
    expires = pd.DatetimeIndex(latest["cert_expires_at"])
    days_left = ((expires - at) / pd.Timedelta(days=1)).to_numpy(dtype=np.float64)
    limit = np.array(
        [min_days if isinstance(min_days, int) else min_days.get(s, DEFAULT_MIN_DAYS) for s in ids],
        dtype=np.int64,
    )
    frame = pd.DataFrame(
        {
            "site": [(names or {}).get(s, s) for s in ids],
            "expires_at": expires,
            "days_left": days_left,
            "min_days": limit,
            "expiring": days_left < limit,
        },
        index=pd.Index(ids, name="site_id"),
    )
    return frame.sort_values("days_left", kind="stable")
