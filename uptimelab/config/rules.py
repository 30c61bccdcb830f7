"""The bounds the settings share, and the checks that a pydantic constraint cannot say.

A broken rule is a :class:`RuleBroken`: the field, its value as shown, the rule;
:meth:`Settings.load <uptimelab.config.Settings.load>` turns it into the ConfigError's one line.
"""

from __future__ import annotations

import re
from pathlib import Path

MIN_INTERVAL_MS = 60_000
MAX_INTERVAL_MS = 86_400_000  # 24 h
MAX_CONCURRENCY = 1000
MAX_DB_WAIT_MS = 3_600_000  # 1 h: the longest retry delay or database deadline that makes sense
MIB = 1 << 20
MAX_SPOOL_BYTES = 1 << 40  # 1 TiB
MAX_LOCATION_CHARS = 100
MAX_REGION_CODE_CHARS = 32
MIN_API_TOKEN_CHARS = 16
MAX_RETENTION_DAYS = 36_500  # a hundred years
MAX_NOTIFY_AGE_MS = 7 * 86_400_000  # 7 d

SECRET_SHOWN = "'**********'"  # a secret's value never reaches an error message


class RuleBroken(ValueError):
    """A rule that a pydantic constraint cannot say: which field, its value as shown, the rule.

    :meth:`Settings.load` turns it into the ConfigError's one line.
    """

    def __init__(self, field: str, shown: str, rule: str) -> None:
        super().__init__(rule)
        self.field, self.shown, self.rule = field, shown, rule


def shown(value: object) -> str:
    """``value`` as an error message shows it: a whole number as the shell would set it, any
    other text in quotes, at most 80 characters."""
    plain = not isinstance(value, str) or re.fullmatch(r"[+-]?[0-9]+", value)
    text = str(value) if plain else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def blank_is_none(value: object) -> object:
    """An empty variable (``UPTIMELAB_PERF_JSON=``) means the same as an unset one."""
    return (value.strip() or None) if isinstance(value, str) else value


def expand_home(path: Path, field: str) -> Path:
    """``path`` with a leading ``~`` expanded. Raises RuleBroken for ``field`` when the ``~``
    names no home directory (a user that does not exist, or no HOME at all)."""
    try:
        return path.expanduser()
    except RuntimeError:
        raise RuleBroken(field, shown(str(path)), "its ~ names no home directory") from None
