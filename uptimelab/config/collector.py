"""How a collector runs its cycles: cadence, the ping's deadline, where it stands, how many at
once, the shortest interval a site may ask for, its lease on its share of the sites."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

from ..text import NOT_ON_ONE_LINE
from .rules import (
    MAX_CONCURRENCY,
    MAX_INTERVAL_MS,
    MAX_LOCATION_CHARS,
    MAX_REGION_CODE_CHARS,
    MIN_INTERVAL_MS,
    RuleBroken,
    shown,
)


def _one_line(value: str, info: ValidationInfo) -> str:
    """A location or region code is shown in table rows and stored with each ping: one line."""
    if NOT_ON_ONE_LINE.search(value):
        rule = "must be one line, without control characters"
        raise RuleBroken(str(info.field_name), shown(value), rule)
    return value


Location = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_LOCATION_CHARS),
    AfterValidator(_one_line),
]
RegionCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_REGION_CODE_CHARS),
    AfterValidator(_one_line),
]


class CollectorSettings(BaseModel):
    """The fields of :class:`~uptimelab.config.Settings` that shape a collector's cycles."""

    monitoring_interval_ms: int = Field(
        default=300_000,
        ge=MIN_INTERVAL_MS,
        le=MAX_INTERVAL_MS,
        description="Milliseconds between cycle starts (fixed cadence); "
        f"{MIN_INTERVAL_MS} (1 min) to {MAX_INTERVAL_MS} (24 h).",
    )
    ping_timeout_ms: int = Field(
        default=10_000,
        gt=0,
        le=MAX_INTERVAL_MS,
        description="Hard deadline of one ping in milliseconds; above 0 and below the interval.",
    )
    monitoring_location: Location = Field(
        default="Unknown",
        description=f"Location stored with every ping; 1 to {MAX_LOCATION_CHARS} characters.",
    )
    monitoring_region_code: RegionCode = Field(
        default="XX",
        description=f"Region code stored with every ping; 1 to {MAX_REGION_CODE_CHARS} characters.",
    )
    max_concurrent_pings: int = Field(
        default=10,
        ge=1,
        le=MAX_CONCURRENCY,
        description=f"Pings in flight at once, 1 to {MAX_CONCURRENCY}.",
    )
    min_site_interval_ms: int = Field(
        default=10_000,
        ge=1000,
        le=MIN_INTERVAL_MS,
        description="The shortest interval a site may ask for (sites add --interval-ms), in "
        f"milliseconds; 1000 to {MIN_INTERVAL_MS}. An advanced setting: short intervals cost load.",
    )
    collector_lease_ms: int = Field(
        default=30_000,
        ge=1000,
        le=MAX_INTERVAL_MS,
        description="How long a collector's hold on its share of the sites lasts without a "
        "heartbeat, in milliseconds; a collector that dies has its sites taken over after it.",
    )

    # Both fields it reads are this group's; it runs on Settings after every field is valid.
    @model_validator(mode="after")
    def _timeout_below_interval(self) -> Self:
        if self.ping_timeout_ms >= self.monitoring_interval_ms:
            raise RuleBroken(
                "ping_timeout_ms",
                shown(self.ping_timeout_ms),
                "the ping timeout must be below the interval "
                f"(MONITORING_INTERVAL_MS={self.monitoring_interval_ms})",
            )
        return self
