"""How a site's state is judged: the quorum of locations, what uptime counts, flapping."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class VerdictSettings(BaseModel):
    """The fields of :class:`~uptimelab.config.Settings` that say when a site is up or down."""

    quorum: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Locations whose latest ping must be down for the site to count as down "
        "(the quorum verdict); unset: a majority of the locations that report.",
    )
    uptime_policy: Literal["samples", "confirmed", "time"] = Field(
        default="samples",
        description="What uptime counts in site_stats (and stats by default): samples (up "
        "pings / pings, the seed's), confirmed (down pings that never became an incident count "
        "as up) or time (up time / observed time; gaps past interval + timeout are unknown).",
    )
    uptime_exclude_maintenance: bool = Field(
        default=False,
        description="Leave pings inside maintenance windows out of uptime (true or false).",
    )
    flap_changes: int = Field(
        default=6,
        ge=1,
        le=1000,
        description="A site whose state changes (an incident confirmed or resolved) more than "
        "this many times within FLAP_WINDOW_MS is flapping: one notice instead of one per "
        "change, until a whole window passes without one; 1 to 1000.",
    )
    flap_window_ms: int = Field(
        default=3_600_000,
        ge=60_000,
        le=7 * 86_400_000,
        description="The window FLAP_CHANGES counts changes of state in, in milliseconds; "
        "1 min to 7 d.",
    )
