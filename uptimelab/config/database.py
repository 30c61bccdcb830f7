"""How the database is called: retries, the deadline of each call, the circuit breaker."""

from __future__ import annotations

from pydantic import BaseModel, Field

from .rules import MAX_DB_WAIT_MS, MAX_INTERVAL_MS


class DatabaseSettings(BaseModel):
    """The fields of :class:`~uptimelab.config.Settings` that bound database calls."""

    db_retry_attempts: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Attempts of a database operation before it fails; 1 to 100.",
    )
    db_retry_delay_ms: int = Field(
        default=1000,
        ge=0,
        le=MAX_DB_WAIT_MS,
        description="First retry delay in milliseconds, doubled each retry; "
        f"0 to {MAX_DB_WAIT_MS} (1 h).",
    )
    db_timeout_ms: int = Field(
        default=15_000,
        ge=100,
        le=MAX_DB_WAIT_MS,
        description="Bound on connecting and on each statement or write, in milliseconds; "
        f"100 to {MAX_DB_WAIT_MS} (1 h).",
    )
    breaker_failures: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Consecutive failed database calls that open the breaker; 1 to 1000.",
    )
    breaker_recovery_ms: int = Field(
        default=60_000,
        ge=0,
        le=MAX_INTERVAL_MS,
        description="Milliseconds an open breaker waits before one trial call; "
        f"0 to {MAX_INTERVAL_MS} (24 h).",
    )
    breaker_successes: int = Field(
        default=2,
        ge=1,
        le=100,
        description="Successful trial calls that close a half-open breaker; 1 to 100.",
    )
