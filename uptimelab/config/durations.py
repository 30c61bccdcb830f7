"""Durations as people write them on the command line: ``90s``, ``5m``, ``1h30m``, ``7d``."""

from __future__ import annotations

import datetime as dt
import re

from ..errors import ConfigError

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
