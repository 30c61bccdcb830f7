"""Settings: every field with its default, its environment variable, its rule and its help text.

Values come from, in order of precedence: explicit arguments (CLI options), the environment, the
defaults below (the seed's). Every rule is a constraint or a validator of its field, with an upper
bound as well as a lower one; :func:`Settings.load` raises :class:`~uptimelab.errors.ConfigError`,
one line naming the variable, its value and the rule it breaks (a secret's value is never shown).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import platformdirs
from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import ConfigError

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


def default_data_dir() -> Path:
    """The per-user directory for the embedded database and other state."""
    return platformdirs.user_data_path("uptimelab")


class RuleBroken(ValueError):
    """A rule that a pydantic constraint cannot say: which field, its value as shown, the rule.

    :meth:`Settings.load` turns it into the ConfigError's one line.
    """

    def __init__(self, field: str, shown: str, rule: str) -> None:
        super().__init__(rule)
        self.field, self.shown, self.rule = field, shown, rule


def _blank_is_none(value: object) -> object:
    # An empty variable (``UPTIMELAB_PERF_JSON=``) means the same as an unset one.
    return (value.strip() or None) if isinstance(value, str) else value


def _data_dir_not_blank(value: object) -> object:
    # Path("") is the current directory: an empty variable would put the database there.
    if isinstance(value, str) and not value.strip():
        raise RuleBroken(
            "data_dir", _shown(value), "must not be empty (unset it for the per-user directory)"
        )
    return value


def _url_list(value: object) -> object:
    # NOTIFY_URLS="json://a/x tgram://b/c": URLs never hold spaces; a JSON list works too.
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            try:
                return json.loads(text)
            except ValueError:
                raise RuleBroken("notify_urls", SECRET_SHOWN, "not a JSON list of URLs") from None
        return text.split()
    return value


Location = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_LOCATION_CHARS)
]
RegionCode = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_REGION_CODE_CHARS)
]


class Settings(BaseSettings):
    """uptimelab's configuration. Construct it with :meth:`load`, which turns a broken rule into
    one ConfigError line."""

    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", populate_by_name=True, frozen=True
    )

    database_url: Annotated[str | None, BeforeValidator(_blank_is_none)] = Field(
        default=None,
        validation_alias=AliasChoices("UPTIMELAB_DATABASE_URL", "DATABASE_URL"),
        description="PostgreSQL URL; unset means the embedded server in the data directory.",
    )
    data_dir: Annotated[Path, BeforeValidator(_data_dir_not_blank)] = Field(
        default_factory=default_data_dir,
        validation_alias=AliasChoices("UPTIMELAB_DATA_DIR"),
        description="Directory for the embedded database and local state; not a file.",
    )
    perf_json: Annotated[Path | None, BeforeValidator(_blank_is_none)] = Field(
        default=None,
        validation_alias=AliasChoices("UPTIMELAB_PERF_JSON"),
        description="The `uptimelab perf --json` file that the notebooks and the report read; "
        "unset means perf.json in the data directory.",
    )
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
    probe_engine: Literal["lean", "httpx"] = Field(
        default="lean",
        description="HTTP client of the probe: lean (minimal, half the CPU) or httpx.",
    )
    spool_max_bytes: int = Field(
        default=1 << 30,
        ge=MIB,
        le=MAX_SPOOL_BYTES,
        description="Cap on the local spool of unstored pings, in bytes; 1 MiB to 1 TiB.",
    )
    ca_bundle: Annotated[Path | None, BeforeValidator(_blank_is_none)] = Field(
        default=None,
        validation_alias=AliasChoices("UPTIMELAB_CA_BUNDLE"),
        description="PEM file of certificate authorities the probe trusts in addition to "
        "certifi's (an internal CA); both engines use it.",
    )
    api_token: Annotated[
        SecretStr | None,
        BeforeValidator(lambda v: (v.strip() or None) if isinstance(v, str) else v),
    ] = Field(
        default=None,
        validation_alias=AliasChoices("UPTIMELAB_API_TOKEN"),
        description="Bearer token of the API's POST endpoints (at least 16 characters); "
        "needed to serve on an address other machines can reach.",
    )
    retention_days: int | None = Field(
        default=None,
        ge=8,
        le=MAX_RETENTION_DAYS,
        description="Days of raw pings kept in the database; older whole days are archived "
        f"(ARCHIVE_DIR) or dropped by `maintain`; 8 to {MAX_RETENTION_DAYS}; unset: keep "
        "everything. At least 8: the 7-day stats read raw pings.",
    )
    archive_dir: Annotated[Path | None, BeforeValidator(_blank_is_none)] = Field(
        default=None,
        validation_alias=AliasChoices("ARCHIVE_DIR"),
        description="Directory of the Parquet archive of pruned pings "
        "(pings/date=YYYY-MM-DD/part-N.parquet); the notebooks read it with the live pings.",
    )
    retention_drop_unarchived: bool = Field(
        default=False,
        description="Let `maintain` drop pings older than RETENTION_DAYS without an ARCHIVE_DIR "
        "(they are gone for good; the hourly rollups stay).",
    )
    maintain_interval_ms: int = Field(
        default=3_600_000,
        ge=1000,
        le=MAX_INTERVAL_MS,
        description="Milliseconds between the collector's maintenance runs (with RETENTION_DAYS "
        f"set); 1000 to {MAX_INTERVAL_MS} (24 h).",
    )

    notify_urls: Annotated[tuple[SecretStr, ...], NoDecode, BeforeValidator(_url_list)] = Field(
        default=(),
        validation_alias=AliasChoices("NOTIFY_URLS"),
        description="apprise URLs told of every site's transitions (json://host/path, "
        "tgram://token/chat, mailto://...), separated by spaces; sites add their own with "
        "--notify. They carry tokens: shown redacted.",
    )
    notify_resend_ms: int | None = Field(
        default=None,
        ge=MIN_INTERVAL_MS,
        le=MAX_NOTIFY_AGE_MS,
        description="Repeat the down notice this often while a site stays down, in milliseconds; "
        f"{MIN_INTERVAL_MS} to {MAX_NOTIFY_AGE_MS}; unset: never.",
    )
    notify_max_age_ms: int = Field(
        default=3_600_000,
        ge=1000,
        le=MAX_NOTIFY_AGE_MS,
        description="A transition older than this (a replayed spool) is recorded but not sent, "
        f"in milliseconds; 1000 to {MAX_NOTIFY_AGE_MS} (7 d).",
    )
    notifications_retention_days: int = Field(
        default=90,
        ge=8,
        le=MAX_RETENTION_DAYS,
        description="Days of notification rows kept when RETENTION_DAYS is unset (with it, "
        "they go with the pings); `maintain` deletes older ones that are not pending; 8 to "
        f"{MAX_RETENTION_DAYS}. At least 8: longer than NOTIFY_MAX_AGE_MS can be, so that a "
        "replayed transition whose row was pruned is recorded as too old, never sent again.",
    )
    notify_retry_delay_ms: int = Field(
        default=5000,
        ge=10,
        le=MAX_DB_WAIT_MS,
        description="First delay before a failed notification is sent again, in milliseconds, "
        f"doubled each retry up to 10 min; 10 to {MAX_DB_WAIT_MS}.",
    )
    public_url: Annotated[str | None, BeforeValidator(_blank_is_none)] = Field(
        default=None,
        validation_alias=AliasChoices("UPTIMELAB_PUBLIC_URL"),
        description="Where this uptimelab's API is reached (https://uptime.example.org); "
        "notifications link to the site's page there.",
    )

    @field_validator("notify_urls")
    @classmethod
    def _notify_urls_are_urls(cls, urls: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for url in urls:
            if not re.fullmatch(r"(?i)[a-z][a-z0-9+.-]*://\S+", url.get_secret_value()):
                raise RuleBroken(
                    "notify_urls", SECRET_SHOWN, "each must be an apprise URL like json://host/path"
                )
        return tuple({u.get_secret_value(): u for u in urls}.values())

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, url: str | None) -> str | None:
        if url is not None and not re.fullmatch(r"(?i)https?://[^\s/?#]+[^\s]*", url):
            raise RuleBroken("public_url", _shown(url), "use an http:// or https:// URL")
        return None if url is None else url.rstrip("/")

    @field_validator("archive_dir")
    @classmethod
    def _archive_dir_is_not_a_file(cls, path: Path | None) -> Path | None:
        if path is None:
            return None
        path = expand_home(path, "archive_dir")
        if path.exists() and not path.is_dir():
            raise RuleBroken("archive_dir", _shown(str(path)), "is a file, not a directory")
        return path

    @field_validator("data_dir")
    @classmethod
    def _data_dir_can_be_a_directory(cls, path: Path) -> Path:
        return usable_directory(path)

    @field_validator("perf_json")
    @classmethod
    def _perf_json_is_not_a_directory(cls, path: Path | None) -> Path | None:
        if path is None:
            return None
        path = expand_home(path, "perf_json")
        if path.is_dir():
            raise RuleBroken("perf_json", _shown(str(path)), "is a directory, not a file")
        return path

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle_is_a_pem_file(cls, path: Path | None) -> Path | None:
        if path is None:
            return None
        import ssl  # here: loading the settings stays light for commands that probe nothing

        path = expand_home(path, "ca_bundle")
        try:
            ssl.create_default_context(cafile=str(path))
        except FileNotFoundError:
            raise RuleBroken("ca_bundle", _shown(str(path)), "no such file") from None
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
            raise RuleBroken(
                "ca_bundle", _shown(str(path)), f"not a readable PEM file of CAs ({reason})"
            ) from None
        return path

    @field_validator("api_token")
    @classmethod
    def _api_token_is_long_enough(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and len(token.get_secret_value()) < MIN_API_TOKEN_CHARS:
            raise RuleBroken(
                "api_token",
                SECRET_SHOWN,
                f"the token must be at least {MIN_API_TOKEN_CHARS} characters long",
            )
        return token

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> Settings:
        if self.ping_timeout_ms >= self.monitoring_interval_ms:
            raise RuleBroken(
                "ping_timeout_ms",
                _shown(self.ping_timeout_ms),
                "the ping timeout must be below the interval "
                f"(MONITORING_INTERVAL_MS={self.monitoring_interval_ms})",
            )
        return self

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Read the environment, apply ``overrides`` (``None`` means "not given"), check the rules.

        Raises ConfigError, one line naming the variable, its value and the rule, for the first
        value that breaks a rule.
        """
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(given) - set(cls.model_fields)
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        try:
            return cls(**given)
        except ValidationError as exc:
            raise ConfigError(_one_line(exc.errors()[0])) from None


def expand_home(path: Path, field: str) -> Path:
    """``path`` with a leading ``~`` expanded. Raises RuleBroken for ``field`` when the ``~``
    names no home directory (a user that does not exist, or no HOME at all)."""
    try:
        return path.expanduser()
    except RuntimeError:
        raise RuleBroken(field, _shown(str(path)), "its ~ names no home directory") from None


def usable_directory(path: Path) -> Path:
    """``path`` (``~`` expanded) if it is a directory or could be made one: not a file, and the
    nearest existing ancestor a directory. Raises RuleBroken for the data directory otherwise.

    Nothing is created; whether the directory is writable is found out when it is first used.
    """
    path = expand_home(path, "data_dir")
    shown = _shown(str(path))
    if "\0" in str(path):
        raise RuleBroken("data_dir", shown, "not a usable path (it holds a NUL character)")
    try:
        existing = next((p for p in (path, *path.parents) if p.exists()), None)
        is_dir = existing is not None and existing.is_dir()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise RuleBroken("data_dir", shown, f"not a usable path ({reason})") from None
    if existing is None:
        raise RuleBroken("data_dir", shown, "none of its parents exists")
    if not is_dir:
        where = "it is" if existing == path else f"{existing} is"
        raise RuleBroken("data_dir", shown, f"{where} a file, not a directory")
    return path


SECRET_SHOWN = "'**********'"  # a secret's value never reaches an error message

_BOUND_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


def _one_line(err: ErrorDetails) -> str:
    """``MONITORING_INTERVAL_MS=1000: must be from 60000 to 86400000 ms`` for a pydantic error."""
    ctx = err.get("ctx") or {}
    broken = ctx.get("error")
    if isinstance(broken, RuleBroken):
        return f"{env_name(broken.field)}={broken.shown}: {broken.rule}"
    key = str(err["loc"][0]) if err["loc"] else "?"
    field = _field_named(key)
    if field is None:
        return f"{key.upper()}={_shown(err.get('input'))}: {err['msg'][:1].lower()}{err['msg'][1:]}"
    shown = SECRET_SHOWN if _is_secret(field) else _shown(err.get("input"))
    kind = err["type"]
    if kind in _BOUND_ERRORS:
        rule = f"must be {_range(field)}"
    elif kind.startswith("int_"):
        rule = f"must be a whole number {_range(field)}"
    elif kind == "string_too_short":
        rule = "must not be empty"
    elif kind == "string_too_long":
        rule = f"must be at most {ctx['max_length']} characters"
    elif kind == "literal_error":
        rule = "use " + str(ctx["expected"]).replace("'", "")
    else:
        rule = err["msg"][:1].lower() + err["msg"][1:]
    return f"{env_name(field)}={shown}: {rule}"


def _field_named(key: str) -> str | None:
    """The field that ``key`` (a field name, or any of its variables, in any case) sets."""
    for name, info in Settings.model_fields.items():
        if key.lower() in (name, *(a.lower() for a in _variables(info))):
            return name
    return None


def _variables(info: FieldInfo) -> list[str]:
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return [alias] if isinstance(alias, str) else []


def _is_secret(field: str) -> bool:
    annotation = Settings.model_fields[field].annotation
    return annotation is SecretStr or SecretStr in get_args(annotation)


def _range(field: str) -> str:
    """``from 1 to 1000``, ``above 0 and at most 86400000 ms``: the bounds of a numeric field."""
    bounds: dict[str, int] = {}
    for constraint in Settings.model_fields[field].metadata:
        for name in ("ge", "gt", "le", "lt"):
            value = getattr(constraint, name, None)
            if isinstance(value, int):
                bounds[name] = value
    unit = " ms" if field.endswith("_ms") else " bytes" if field.endswith("_bytes") else ""
    if "ge" in bounds and "le" in bounds:
        return f"from {bounds['ge']} to {bounds['le']}{unit}"
    low = f"at least {bounds['ge']}" if "ge" in bounds else f"above {bounds.get('gt')}"
    high = f"at most {bounds['le']}" if "le" in bounds else f"below {bounds.get('lt')}"
    words = [w for w, k in ((low, ("ge", "gt")), (high, ("le", "lt"))) if set(k) & set(bounds)]
    return " and ".join(words) + unit


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    variables = _variables(Settings.model_fields[field])
    return variables[0] if variables else field.upper()


def help_for(field: str) -> str:
    """Help text for a CLI option that sets ``field``: the field's description and its variable."""
    info = Settings.model_fields[field]
    default = None if info.default_factory else info.get_default()
    shown_default = "" if default is None else f" [default {default}]"
    return f"{info.description} Env: {env_name(field)}.{shown_default}"


def _shown(value: object) -> str:
    # A whole number shows as the shell would set it; any other text in quotes.
    plain = not isinstance(value, str) or re.fullmatch(r"[+-]?[0-9]+", value)
    text = str(value) if plain else repr(value)
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
