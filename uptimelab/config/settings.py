"""Settings, assembled from the groups of fields, and the one line a broken rule becomes."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import AliasChoices, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..errors import ConfigError
from .api import ApiSettings
from .collector import CollectorSettings
from .database import DatabaseSettings
from .notify import NotifySettings
from .places import PlacesSettings
from .probe import ProbeSettings
from .retention import RetentionSettings
from .rules import SECRET_SHOWN, RuleBroken, shown
from .verdicts import VerdictSettings


# pydantic puts the fields of the last base first: the groups are listed from the last field's to
# the first's, so that the fields keep the order they always had. That order is the schema's, the
# dump's, and the order pydantic checks them in: Settings.load names the first rule broken.
class Settings(
    BaseSettings,
    NotifySettings,
    RetentionSettings,
    ApiSettings,
    ProbeSettings,
    DatabaseSettings,
    VerdictSettings,
    CollectorSettings,
    PlacesSettings,
):
    """uptimelab's configuration. Construct it with :meth:`load`, which turns a broken rule into
    one ConfigError line."""

    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", populate_by_name=True, frozen=True
    )

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
        return f"{key.upper()}={shown(err.get('input'))}: {err['msg'][:1].lower()}{err['msg'][1:]}"
    value_shown = SECRET_SHOWN if _is_secret(field) else shown(err.get("input"))
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
    return f"{env_name(field)}={value_shown}: {rule}"


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
