"""Settings: every field with its default, its environment variable, its rule and its help text.

Values come from, in order of precedence: explicit arguments (CLI options), the environment, the
defaults below (the seed's). :func:`Settings.load` checks every rule and raises
:class:`~uptimelab.errors.ConfigError` naming the variable and the rule it breaks.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

MIN_INTERVAL_MS = 60_000
MAX_CONCURRENCY = 1000


def default_data_dir() -> Path:
    """The per-user directory for the embedded database and other state."""
    return platformdirs.user_data_path("uptimelab")


class Settings(BaseSettings):
    """uptimelab's configuration. Construct it with :meth:`load` so that the rules are checked."""

    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", populate_by_name=True, frozen=True
    )

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("UPTIMELAB_DATABASE_URL", "DATABASE_URL"),
        description="PostgreSQL URL; unset means the embedded server in the data directory.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        validation_alias=AliasChoices("UPTIMELAB_DATA_DIR"),
        description="Directory for the embedded database and local state.",
    )
    monitoring_interval_ms: int = Field(
        default=300_000,
        description="Milliseconds between cycle starts (fixed cadence); at least 60000.",
    )
    ping_timeout_ms: int = Field(
        default=10_000,
        description="Hard deadline of one ping in milliseconds; above 0 and below the interval.",
    )
    monitoring_location: str = Field(
        default="Unknown", description="Location stored with every ping; non-empty."
    )
    monitoring_region_code: str = Field(
        default="XX", description="Region code stored with every ping; non-empty."
    )
    max_concurrent_pings: int = Field(
        default=10, description=f"Pings in flight at once, 1 to {MAX_CONCURRENCY}."
    )
    db_retry_attempts: int = Field(
        default=3, description="Attempts of a database operation before it fails; at least 1."
    )
    db_retry_delay_ms: int = Field(
        default=1000, description="First retry delay in milliseconds, doubled each retry; >= 0."
    )
    db_timeout_ms: int = Field(
        default=15_000,
        description="Bound on connecting and on each statement or write, in milliseconds; "
        "at least 100.",
    )
    breaker_failures: int = Field(
        default=5, description="Consecutive failed database calls that open the breaker; >= 1."
    )
    breaker_recovery_ms: int = Field(
        default=60_000,
        description="Milliseconds an open breaker waits before one trial call; >= 0.",
    )
    breaker_successes: int = Field(
        default=2, description="Successful trial calls that close a half-open breaker; >= 1."
    )
    probe_engine: str = Field(
        default="lean",
        description="HTTP client of the probe: lean (minimal, half the CPU) or httpx.",
    )
    spool_max_bytes: int = Field(
        default=1 << 30,
        description="Cap on the local spool of unstored pings, in bytes; at least 1 MiB.",
    )

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Read the environment, apply ``overrides`` (``None`` means "not given"), check the rules.

        Raises ConfigError naming the variable and the rule on the first value that breaks one.
        """
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(given) - set(cls.model_fields)
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        try:
            settings = cls(**given)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else "?"
            name = env_name(field) if field in cls.model_fields else field.upper()
            raise ConfigError(f"{name}={_shown(err.get('input'))}: {err['msg'].lower()}") from None
        settings.check()
        return settings

    def check(self) -> None:
        """Raise ConfigError for the first rule this configuration breaks."""
        rules: list[tuple[str, bool, str]] = [
            (
                "monitoring_interval_ms",
                self.monitoring_interval_ms >= MIN_INTERVAL_MS,
                f"the interval must be at least {MIN_INTERVAL_MS} ms (60 s)",
            ),
            ("ping_timeout_ms", self.ping_timeout_ms > 0, "the ping timeout must be above 0 ms"),
            (
                "ping_timeout_ms",
                self.ping_timeout_ms < self.monitoring_interval_ms,
                f"the ping timeout must be below the interval "
                f"(MONITORING_INTERVAL_MS={self.monitoring_interval_ms})",
            ),
            (
                "monitoring_location",
                bool(self.monitoring_location.strip()),
                "the location must not be empty",
            ),
            (
                "monitoring_region_code",
                bool(self.monitoring_region_code.strip()),
                "the region code must not be empty",
            ),
            (
                "max_concurrent_pings",
                1 <= self.max_concurrent_pings <= MAX_CONCURRENCY,
                f"concurrency must be from 1 to {MAX_CONCURRENCY}",
            ),
            ("db_retry_attempts", self.db_retry_attempts >= 1, "attempts must be at least 1"),
            ("db_retry_delay_ms", self.db_retry_delay_ms >= 0, "the delay must not be negative"),
            ("db_timeout_ms", self.db_timeout_ms >= 100, "the timeout must be at least 100 ms"),
            ("breaker_failures", self.breaker_failures >= 1, "it must be at least 1"),
            ("breaker_recovery_ms", self.breaker_recovery_ms >= 0, "it must not be negative"),
            ("breaker_successes", self.breaker_successes >= 1, "it must be at least 1"),
            ("spool_max_bytes", self.spool_max_bytes >= 1 << 20, "the cap must be at least 1 MiB"),
            ("probe_engine", self.probe_engine in ("lean", "httpx"), "use lean or httpx"),
        ]
        for field, ok, rule in rules:
            if not ok:
                value = getattr(self, field)
                raise ConfigError(f"{env_name(field)}={_shown(value)}: {rule}")


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return {"database_url": "UPTIMELAB_DATABASE_URL", "data_dir": "UPTIMELAB_DATA_DIR"}.get(
        field, field.upper()
    )


def help_for(field: str) -> str:
    """Help text for a CLI option that sets ``field``: the field's description and its variable."""
    info = Settings.model_fields[field]
    default = info.get_default(call_default_factory=False)
    shown_default = "" if default is None else f" [default {default}]"
    return f"{info.description} Env: {env_name(field)}.{shown_default}"


def _shown(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


_DURATION_PIECE = (
    r"(\d+(?:\.\d+)?)\s*"
    r"(ms|weeks?|w|days?|d|hours?|h|minutes?|mins?|m|seconds?|secs?|s)?"
)
_DURATION = re.compile(rf"\s*(?:{_DURATION_PIECE}\s*)+", re.IGNORECASE)
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_duration(text: str, *, name: str = "duration") -> dt.timedelta:
    """``"90s"``, ``"5m"``, ``"1h"``, ``"7d"``, ``"2w"``, ``"90min"``, ``"1h30m"`` (a bare number is
    seconds) as a timedelta.

    Raises ConfigError naming ``name`` for anything else or for zero.
    """
    text = str(text)
    seconds = 0.0
    if _DURATION.fullmatch(text):
        for number, unit in re.findall(_DURATION_PIECE, text, flags=re.IGNORECASE):
            unit = unit.lower()
            seconds += float(number) * _UNIT_S[unit if unit == "ms" else (unit or "s")[0]]
    if seconds <= 0:
        raise ConfigError(f"{name}={text!r}: use a positive duration like 60s, 5m, 1h or 7d")
    return dt.timedelta(seconds=seconds)
