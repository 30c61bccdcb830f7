"""A circuit breaker in front of the database (the seed's numbers by default).

``failures`` consecutive failed calls open it; while open no call is attempted; after
``recovery_s`` one trial call is let through (half-open); ``successes`` successful trials close it,
and a failed trial opens it again. Every transition is logged and kept for status and health.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import StoreError

log = logging.getLogger("uptimelab.breaker")
T = TypeVar("T")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class BreakerOpenError(StoreError):
    """The breaker is open: no database call was attempted."""


@dataclass(frozen=True)
class Transition:
    at: dt.datetime
    old: str
    new: str
    reason: str


class CircuitBreaker:
    """Thread-safe: the writer's threads call through it, status reads it from the trio thread."""

    def __init__(
        self,
        *,
        failures: int = 5,
        recovery_s: float = 60.0,
        successes: int = 2,
        clock: Callable[[], float] = time.monotonic,
        on_transition: Callable[[Transition], None] | None = None,
    ) -> None:
        self.failures_to_open = failures
        self.recovery_s = recovery_s
        self.successes_to_close = successes
        self._clock = clock
        self._on_transition = on_transition
        self._lock = threading.Lock()
        self.state = CLOSED
        self.consecutive_failures = 0
        self._trial_successes = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self.since = dt.datetime.now(dt.UTC)
        self.transitions: list[Transition] = []

    def call(self, fn: Callable[[], T], *, answered: tuple[type[StoreError], ...] = ()) -> T:
        """Run ``fn`` through the breaker. Raises BreakerOpenError without calling it when open.

        A StoreError from ``fn`` counts as a failure and is re-raised, except the ``answered``
        kinds (the database answered: a refusal of the data is no outage), which count as a
        success. Any other exception leaves the counts alone but frees a half-open trial slot,
        so that the next call can try again."""
        self._before()
        try:
            result = fn()
        except answered:
            self.record_success()
            raise
        except StoreError as exc:
            self.record_failure(str(exc))
            raise
        except BaseException:
            self._release_trial()
            raise
        self.record_success()
        return result

    def _release_trial(self) -> None:
        with self._lock:
            self._trial_in_flight = False

    def _before(self) -> None:
        with self._lock:
            if self.state == OPEN:
                if self._clock() - self._opened_at < self.recovery_s:
                    left = self.recovery_s - (self._clock() - self._opened_at)
                    raise BreakerOpenError(
                        f"the database circuit breaker is open (trial in {left:.0f} s)"
                    )
                self._trial_successes = 0
                self._move(HALF_OPEN, "recovery time passed: one trial call")
            if self.state == HALF_OPEN:
                if self._trial_in_flight:
                    raise BreakerOpenError(
                        "the database circuit breaker is half-open (trial running)"
                    )
                self._trial_in_flight = True

    def record_success(self) -> None:
        with self._lock:
            self.consecutive_failures = 0
            if self.state == HALF_OPEN:
                self._trial_in_flight = False
                self._trial_successes += 1
                if self._trial_successes >= self.successes_to_close:
                    self._move(CLOSED, f"{self._trial_successes} trial call(s) succeeded")

    def record_failure(self, reason: str = "") -> None:
        with self._lock:
            self.consecutive_failures += 1
            if self.state == HALF_OPEN:
                self._trial_in_flight = False
                self._open(f"trial call failed: {reason}")
            elif self.state == CLOSED and self.consecutive_failures >= self.failures_to_open:
                self._open(f"{self.consecutive_failures} consecutive failures; last: {reason}")

    def _open(self, reason: str) -> None:
        self._opened_at = self._clock()
        self._trial_successes = 0
        self._move(OPEN, reason)

    def _move(self, new: str, reason: str) -> None:
        transition = Transition(dt.datetime.now(dt.UTC), self.state, new, reason[:300])
        self.state = new
        self.since = transition.at
        self.transitions = [*self.transitions[-19:], transition]
        level = logging.INFO if new == CLOSED else logging.WARNING
        log.log(
            level,
            "circuit breaker %s -> %s: %s",
            transition.old,
            new,
            transition.reason,
            extra={"component": "breaker", "category": new},
        )
        if self._on_transition is not None:
            self._on_transition(transition)

    def snapshot(self) -> dict[str, object]:
        """State for status and health."""
        with self._lock:
            return {
                "state": self.state,
                "since": self.since.isoformat(),
                "consecutive_failures": self.consecutive_failures,
                "last_transition": None
                if not self.transitions
                else {
                    "at": self.transitions[-1].at.isoformat(),
                    "from": self.transitions[-1].old,
                    "to": self.transitions[-1].new,
                    "reason": self.transitions[-1].reason,
                },
            }
