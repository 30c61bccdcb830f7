"""The pure part of the synthetic history: the same ``seed``, span, interval and end give the same
sites, pings, cycles and planted incidents, ping for ping (see :mod:`uptimelab.testing.history`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from ...analytics.frames import utc_timestamp
from ...config import MIN_INTERVAL_MS
from ...errors import ConfigError
from ...text import span as shown
from .frames import (
    CATEGORY,
    HTTP_502,
    HTTP_503,
    MESSAGE_OF,
    MESSAGES,
    NO_ROUTE,
    TIMEOUT_MS,
    add_phases_and_certificates,
    category_index,
    cycles_frame,
    pings_frame,
)

HISTORY_DOMAIN: Final = "history.uptimelab.example"
CONCURRENCY: Final = 10
MIN_SITES: Final = 8  # one per planned outage, one regressing, one flapping
MAX_SITES: Final = 2000
MAX_PINGS: Final = 5_000_000
MIN_SPAN: Final = dt.timedelta(days=1)
MAX_SPAN: Final = dt.timedelta(days=90)
MAX_EVERY: Final = dt.timedelta(hours=1)
REGRESSION_FACTOR: Final = 2.2

# name: (median response ms, log-normal sigma, words for site names)
PROFILES: Final = {
    "cdn": (35.0, 0.25, ("static", "assets", "img")),
    "api": (90.0, 0.30, ("api", "auth", "search")),
    "app": (170.0, 0.35, ("shop", "app", "portal")),
    "far": (320.0, 0.20, ("mirror", "apac", "latam")),
    "cms": (480.0, 0.50, ("blog", "news", "wiki")),
}

# cause, category, shortest and longest duration in minutes
PLANNED_OUTAGES: Final = (
    ("deploy restart", "refused", 10, 20),
    ("DNS record deleted", "dns", 120, 180),
    ("certificate expired", "tls", 300, 480),
    ("backend overloaded", "http_status", 40, 70),
    ("database lock-up", "timeout", 20, 35),
)
ONGOING_OUTAGE: Final = ("network outage at the host", "network", 25, 50)


@dataclass(frozen=True)
class SyntheticSite:
    """One site of the history: its name, URL and latency profile."""

    name: str
    url: str
    profile: str
    median_ms: float


@dataclass(frozen=True)
class Incident:
    """Something the history planted: an outage, the regression, the flapping, a collector gap.

    ``site`` is a site name (None for the collector's gaps); ``ended_at`` is None while it lasts.
    """

    kind: str
    site: str | None
    cause: str
    started_at: pd.Timestamp
    ended_at: pd.Timestamp | None
    category: str | None = None


@dataclass(frozen=True)
class History:
    """A synthetic history, not yet written anywhere.

    ``pings`` is a pings frame whose ``site`` column holds site names (categorical, in the order
    of ``sites``) instead of ids; ``cycles`` has the ``monitoring_cycles`` columns.
    """

    sites: list[SyntheticSite]
    pings: pd.DataFrame
    cycles: pd.DataFrame
    incidents: list[Incident]
    start: pd.Timestamp
    end: pd.Timestamp
    every: pd.Timedelta


def synthetic_history(
    sites: int = 50,
    *,
    span: dt.timedelta = dt.timedelta(days=7),
    every: dt.timedelta = dt.timedelta(minutes=5),
    seed: int = 7,
    end: dt.datetime | pd.Timestamp,
) -> History:
    """A history of ``sites`` sites pinged every ``every`` over ``span``, ending at ``end``
    (rounded down to a multiple of ``every``; naive means UTC). Deterministic in its arguments.

    Raises ConfigError when the numbers are out of range (see :func:`check_history`).
    """
    check_history(sites, span, every)
    rng = np.random.default_rng(seed)
    step = pd.Timedelta(every)
    last = utc_timestamp(end).floor(step)
    n_slots = int(pd.Timedelta(span) // step)
    starts = pd.date_range(end=last, periods=n_slots, freq=step).as_unit("us")
    first = starts[0]
    span_td = last - first

    def at(fraction: float) -> pd.Timestamp:
        return (first + span_td * fraction).floor("1s")

    def minutes(shortest: float, longest: float) -> pd.Timedelta:
        return pd.Timedelta(minutes=float(rng.uniform(shortest, longest))).round("1s")

    def slot(when: pd.Timestamp) -> int:
        return min(int(starts.searchsorted(when)), n_slots - 1)

    # -- the sites and their latency
    roster = _sites(rng, sites)
    median = np.array([s.median_ms for s in roster])
    sigma = np.array([PROFILES[s.profile][1] for s in roster])
    amplitude = rng.uniform(0.1, 0.6, sites)
    peak_hour = rng.normal(14.0, 3.0, sites) % 24
    hours = (starts.hour + starts.minute / 60).to_numpy(dtype=float)
    weekend = np.asarray(starts.day_of_week >= 5)
    busy = 0.5 * (1 + np.cos(2 * np.pi * (hours[:, None] - peak_hour[None, :]) / 24))
    daily = 1 + amplitude[None, :] * busy * np.where(weekend, 0.5, 1.0)[:, None]
    rt = median[None, :] * daily * np.exp(sigma[None, :] * rng.standard_normal((n_slots, sites)))
    spikes = rng.random((n_slots, sites)) < 0.004
    rt = np.where(spikes, rt * rng.uniform(3, 8, (n_slots, sites)), rt)

    incidents: list[Incident] = []
    roles = rng.permutation(sites)
    regressing, flapping = int(roles[6]), int(roles[7])
    changed_at = starts[slot(at(rng.uniform(0.4, 0.6)))]
    rt[starts >= changed_at, regressing] *= REGRESSION_FACTOR
    incidents.append(
        Incident("regression", roster[regressing].name, "a slow query shipped", changed_at, None)
    )

    # -- failures: -1 is up, else the message index (which also gives the category)
    message = np.full((n_slots, sites), -1, dtype=np.int8)
    blip_rate = rng.uniform(0.0002, 0.0015, sites)
    blips = rng.random((n_slots, sites)) < blip_rate[None, :]
    blip_kind = rng.choice(
        np.array([MESSAGE_OF["timeout"], MESSAGE_OF["network"], HTTP_502], dtype=np.int8),
        size=(n_slots, sites),
        p=[0.6, 0.3, 0.1],
    )
    message[blips] = blip_kind[blips]
    message[rt >= TIMEOUT_MS] = MESSAGE_OF["timeout"]

    for k, (cause, category, shortest, longest) in enumerate(PLANNED_OUTAGES):
        length = minutes(shortest, longest)
        begin = at(rng.uniform(0.05, 0.95)) - length * 0.5
        hit = _slots(starts, begin, length)
        site = int(roles[k])
        message[hit, site] = HTTP_503 if category == "http_status" else MESSAGE_OF[category]
        incidents.append(
            Incident("outage", roster[site].name, cause, *_slot_bounds(starts, hit, step), category)
        )
    cause, category, shortest, longest = ONGOING_OUTAGE
    begin = last - minutes(shortest, longest)
    hit = starts >= begin
    message[hit, int(roles[5])] = NO_ROUTE
    incidents.append(
        Incident("outage", roster[int(roles[5])].name, cause, starts[hit][0], None, category)
    )

    flap_from = starts[slot(at(rng.uniform(0.15, 0.45)))]
    flap_to = flap_from + (span_td * 0.3).floor(step)
    flapping_slots = (starts >= flap_from) & (starts < flap_to)
    flaps = flapping_slots & (rng.random(n_slots) < 0.3)
    message[flaps, flapping] = rng.choice(
        np.array([HTTP_502, MESSAGE_OF["timeout"]], dtype=np.int8), size=int(flaps.sum())
    )
    incidents.append(
        Incident("flapping", roster[flapping].name, "a failing node behind the load balancer",
                 flap_from, flap_to)
    )  # fmt: skip

    # -- what a down ping measured: the full timeout, a quick refusal, a fast error page...
    down = message >= 0
    category_of = np.array([category_index(m) for m in range(len(MESSAGES))], dtype=np.int8)
    cat = np.where(down, category_of[np.maximum(message, 0)], -1)
    failure_ms = np.select(
        [
            cat == CATEGORY["timeout"],
            cat == CATEGORY["dns"],
            cat == CATEGORY["refused"],
            cat == CATEGORY["tls"],
            cat == CATEGORY["http_status"],
        ],
        [
            TIMEOUT_MS + rng.integers(0, 12, (n_slots, sites)),
            rng.uniform(5, 40, (n_slots, sites)),
            rng.uniform(1, 3, (n_slots, sites)),
            rng.uniform(30, 90, (n_slots, sites)),
            np.minimum(rt, 400) * 0.3,
        ],
        default=rng.uniform(50, 2000, (n_slots, sites)),
    )
    rt_ms = np.maximum(1, np.rint(np.where(down, failure_ms, rt))).astype(np.int64)

    # -- the collector: cycle lengths, overruns, its own gaps, the interrupted cycle
    ran = np.ones(n_slots, dtype=bool)
    for cause, frac_lo, frac_hi, shortest, longest in (
        ("collector upgraded and restarted", 0.25, 0.35, 20, 40),
        ("collector host down", 0.65, 0.75, 150, 240),
    ):
        length = minutes(shortest, longest)
        off = _slots(starts, at(rng.uniform(frac_lo, frac_hi)), length)
        ran &= ~off
        gap_from, gap_to = _slot_bounds(starts, off, step)
        incidents.append(Incident("collector_gap", None, cause, gap_from, gap_to))
    write_ms = rng.uniform(15, 60, n_slots)
    stall = slot(at(rng.uniform(0.8, 0.9)))
    stalled = np.arange(stall, min(stall + 12, n_slots), 4)  # three stalls in an hour
    write_ms[stalled] = step.total_seconds() * 1000 * rng.uniform(1.05, 1.4, len(stalled))
    work_ms = rt_ms.sum(axis=1) / CONCURRENCY + rt_ms.max(axis=1)
    duration_ms = np.ceil(work_ms + write_ms).astype(np.int64)
    start_us = starts.asi8
    for late in np.flatnonzero(write_ms > step.total_seconds() * 1000).tolist():
        # A fixed cadence skips the starts a cycle overran.
        finished_us = start_us[late] + duration_ms[late] * 1000
        ran[late + 1 :][start_us[late + 1 :] < finished_us] = False
    offset_ms = rng.random((n_slots, sites)) * np.maximum(
        0, duration_ms[:, None] - write_ms[:, None] - rt_ms
    )
    kept = np.broadcast_to(ran[:, None], (n_slots, sites)).copy()
    # The host went down during the cycle before the long gap: it stored what it had probed.
    interrupted = _last_before_gap(ran, incidents[-1].started_at, starts)
    if interrupted >= 0:
        cut = duration_ms[interrupted] * 0.4
        kept[interrupted] = offset_ms[interrupted] < cut
        duration_ms[interrupted] = int(cut)

    pings = pings_frame(roster, starts, kept, offset_ms, message, cat, rt_ms)
    add_phases_and_certificates(pings, sites, seed, last)
    cycles = cycles_frame(rng, starts, ran, kept, down, duration_ms, interrupted, sites)
    return History(roster, pings, cycles, incidents, first, last, step)


def check_history(sites: int, span: dt.timedelta, every: dt.timedelta) -> None:
    """Raise ConfigError when a history of ``sites`` sites over ``span``, one cycle every
    ``every``, is not offered (the message speaks of the values; a CLI adds its option names)."""
    if not MIN_SITES <= sites <= MAX_SITES:
        raise ConfigError(
            f"sites {sites} is not within {MIN_SITES} to {MAX_SITES}: a history needs one site "
            "per planned outage, one regressing and one flapping"
        )
    if not MIN_SPAN <= span <= MAX_SPAN:
        raise ConfigError(
            f"history {shown(span)} is not a span within {shown(MIN_SPAN)} to {shown(MAX_SPAN)}"
        )
    least = dt.timedelta(milliseconds=MIN_INTERVAL_MS)
    if not least <= every <= MAX_EVERY:
        raise ConfigError(
            f"every {shown(every)} is not an interval within {shown(least)} to {shown(MAX_EVERY)}"
        )
    pings = sites * int(span / every)
    if pings > MAX_PINGS:
        raise ConfigError(
            f"{sites} sites over {shown(span)} every {shown(every)} make {pings:,} pings; "
            f"a history holds at most {MAX_PINGS:,}"
        )


def _sites(rng: np.random.Generator, n: int) -> list[SyntheticSite]:
    names = list(PROFILES)
    # Every profile about equally often, in a seeded order.
    profiles = [names[i] for i in rng.permutation(n) % len(names)]
    roster = []
    for i, profile in enumerate(profiles):
        median_ms, _, words = PROFILES[profile]
        name = f"{words[int(rng.integers(len(words)))]}-{i + 1:02d}"
        roster.append(
            SyntheticSite(
                name=name,
                url=f"https://{name}.{HISTORY_DOMAIN}/",
                profile=profile,
                median_ms=median_ms * float(rng.lognormal(0, 0.25)),
            )
        )
    return roster


def _slots(
    starts: pd.DatetimeIndex, begin: pd.Timestamp, length: pd.Timedelta
) -> npt.NDArray[np.bool_]:
    """The slots starting in [begin, begin + length); at least one, however coarse the slots."""
    hit = np.asarray((starts >= begin) & (starts < begin + length))
    if not hit.any():
        hit[min(int(starts.searchsorted(begin)), len(starts) - 1)] = True
    return hit


def _slot_bounds(
    starts: pd.DatetimeIndex, hit: npt.NDArray[np.bool_], step: pd.Timedelta
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first slot in ``hit`` and the slot after its last one."""
    where = np.flatnonzero(hit)
    return starts[where[0]], starts[where[-1]] + step


def _last_before_gap(
    ran: npt.NDArray[np.bool_], gap_from: pd.Timestamp, starts: pd.DatetimeIndex
) -> int:
    before = np.flatnonzero(ran & np.asarray(starts < gap_from))
    return int(before[-1]) if len(before) else -1
