"""Settings: every field with its default, its environment variable, its rule and its help text.

Values come from, in order of precedence: explicit arguments (CLI options), the environment, the
defaults below (the seed's). Every rule is a constraint or a validator of its field, with an upper
bound as well as a lower one; :func:`Settings.load` raises :class:`~uptimelab.errors.ConfigError`,
one line naming the variable, its value and the rule it breaks (a secret's value is never shown).

The fields are grouped by what they govern, one module each, and :class:`Settings` (settings.py)
is assembled from the groups::

    places      database_url, data_dir, perf_json
    collector   the cycles: interval, ping timeout, location, concurrency, lease
    verdicts    quorum, uptime policy, maintenance exclusion, flapping
    database    retries, the database deadline, the circuit breaker
    probe       the probe's engine and CA bundle, the spool's cap
    api         the API's bearer token
    retention   retention_days, archive_dir, the maintenance runs
    notify      notification URLs, resends, retries, public_url
    rules       the bounds they share and the checks a constraint cannot say
    durations   parse_duration
"""

from .collector import Location, RegionCode
from .durations import parse_duration
from .places import default_data_dir, usable_directory
from .rules import (
    MAX_CONCURRENCY,
    MAX_DB_WAIT_MS,
    MAX_INTERVAL_MS,
    MAX_LOCATION_CHARS,
    MAX_NOTIFY_AGE_MS,
    MAX_REGION_CODE_CHARS,
    MAX_RETENTION_DAYS,
    MAX_SPOOL_BYTES,
    MIB,
    MIN_API_TOKEN_CHARS,
    MIN_INTERVAL_MS,
    SECRET_SHOWN,
    RuleBroken,
    expand_home,
)
from .settings import Settings, env_name, help_for

__all__ = [
    "MAX_CONCURRENCY",
    "MAX_DB_WAIT_MS",
    "MAX_INTERVAL_MS",
    "MAX_LOCATION_CHARS",
    "MAX_NOTIFY_AGE_MS",
    "MAX_REGION_CODE_CHARS",
    "MAX_RETENTION_DAYS",
    "MAX_SPOOL_BYTES",
    "MIB",
    "MIN_API_TOKEN_CHARS",
    "MIN_INTERVAL_MS",
    "SECRET_SHOWN",
    "Location",
    "RegionCode",
    "RuleBroken",
    "Settings",
    "default_data_dir",
    "env_name",
    "expand_home",
    "help_for",
    "parse_duration",
    "usable_directory",
]
