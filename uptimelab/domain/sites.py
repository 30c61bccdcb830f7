"""Sites as rules, without I/O: URL rules, expected-status sets, the validated site spec, and the
small site record a collector holds."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..errors import InvalidURLError, SiteError
from ..text import rule_broken
from .assertions import (
    check_body,
    check_headers,
    parse_expect_body,
    parse_expect_json,
)
from .incidents import parse_notify_urls
from .redaction import MASK, holds_mask, redact, redact_headers
from .urls import URLRuleError, normalise_url

MAX_URL_LENGTH = 2048
# The table's bounds of a site's own interval; the setting MIN_SITE_INTERVAL_MS (10 s unless
# lowered) is the bound users meet, checked where a site is stored.
SITE_INTERVAL_BOUNDS_MS = (1000, 86_400_000)
MAX_TIMEOUT_MS = 86_400_000  # as PING_TIMEOUT_MS; the table's integer holds it
# Control characters would break a line of output; lone surrogates cannot be stored as UTF-8.
_NOT_IN_A_NAME = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_STATUS_ITEM = re.compile(r"^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$")
COLUMNS = (
    "name",
    "url",
    "is_active",
    "method",
    "expected_status",
    "follow_redirects",
    "max_redirects",
    "timeout_ms",
    "interval_ms",
    "retry_interval_ms",
    "tls_verify",
    "cert_min_days",
    "expect_body",
    "expect_json",
    "max_response_ms",
    "headers",
    "body",
    "down_after",
    "up_after",
    "notify",
)
IGNORED_COLUMNS = ("id", "created_at", "updated_at")
# Whole-number columns: true/false is not a number (pydantic would read it as 1/0).
INT_COLUMNS = (
    "max_redirects",
    "timeout_ms",
    "interval_ms",
    "retry_interval_ms",
    "cert_min_days",
    "max_response_ms",
    "down_after",
    "up_after",
)
_REDACTED = (
    "holds *** where `sites list` hid a secret; give the real value "
    "(`sites export --include-secrets` writes it)"
)


def validate_url(url: str) -> str:
    """The normal form of ``url`` (see :mod:`uptimelab.domain.urls`) if uptimelab can ping it;
    else raise InvalidURLError quoting it (redacted) and naming the rule it breaks."""

    def bad(rule: str) -> InvalidURLError:
        shown = redact(url if len(url) <= 120 else url[:117] + "...")
        return InvalidURLError(f"invalid URL {shown!r}: {rule}")

    if not isinstance(url, str) or not url:
        raise bad("it is empty")
    if len(url) > MAX_URL_LENGTH:
        raise bad(f"it is longer than {MAX_URL_LENGTH} characters")
    try:
        normal = normalise_url(url)
    except URLRuleError as exc:
        raise bad(str(exc)) from None
    if len(normal) > MAX_URL_LENGTH:
        raise bad(f"its normal form is longer than {MAX_URL_LENGTH} characters")
    return normal


def parse_expected_status(spec: str) -> tuple[tuple[int, int], ...]:
    """Parse an expected-status set such as ``200-399``, ``200,204`` or ``200-299,301``.

    Returns inclusive ``(low, high)`` ranges. Raises SiteError for anything else.
    """
    ranges = []
    for item in str(spec).split(","):
        match = _STATUS_ITEM.match(item)
        if not match:
            raise SiteError(
                f"invalid expected status {spec!r}: use codes and ranges like 200-399 or 200,204"
            )
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if not (100 <= low <= high <= 599):
            raise SiteError(
                f"invalid expected status {spec!r}: ranges go from low to high within 100-599"
            )
        ranges.append((low, high))
    return tuple(ranges)


def status_expected(code: int, ranges: Iterable[tuple[int, int]]) -> bool:
    """Whether ``code`` falls in one of ``ranges``."""
    return any(low <= code <= high for low, high in ranges)


class SiteSpec(BaseModel):
    """One site as given by a user or a file row: validated, with the table's defaults."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str
    name: str | None = None
    is_active: bool = True
    method: str = "GET"
    expected_status: str = "200-399"
    follow_redirects: bool = True
    max_redirects: int = 5
    timeout_ms: int | None = None
    interval_ms: int | None = None
    retry_interval_ms: int | None = None
    # False accepts any certificate (self-signed, expired, another name): a weaker check.
    tls_verify: bool = True
    # A certificate expiring in fewer days is a warning (status, health), not downtime.
    cert_min_days: int = Field(default=14, ge=0, le=3650)
    # What the page must say, and what the request carries (see domain/assertions.py).
    expect_body: str | None = None
    expect_json: str | None = None
    max_response_ms: int | None = None
    headers: dict[str, str] | None = None
    body: str | None = None
    # Incidents (see domain/incidents.py): consecutive down pings of a location that confirm
    # one, consecutive up pings that resolve it; apprise URLs told of the site's transitions.
    down_after: int = Field(default=2, ge=1, le=1000)
    up_after: int = Field(default=1, ge=1, le=1000)
    notify: list[str] | None = Field(default=None, repr=False)

    @field_validator(*INT_COLUMNS, mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, bool):
            raise SiteError(f"{info.field_name}: give a whole number, not {str(value).lower()}")
        return value

    @field_validator("expected_status", mode="before")
    @classmethod
    def _status_from_numbers(cls, value: object) -> object:
        # YAML and JSON give `expected_status: 200` (or [200, 204]) as numbers.
        def text(item: object) -> object:
            return str(item) if isinstance(item, int) and not isinstance(item, bool) else item

        if isinstance(value, list) and value and all(isinstance(text(v), str) for v in value):
            return ",".join(str(text(v)) for v in value)
        return text(value)

    @field_validator("notify", mode="before")
    @classmethod
    def _notify(cls, value: object) -> object:
        urls = parse_notify_urls(value)
        if urls and any(MASK in u for u in urls):
            raise SiteError(f"notify: {_REDACTED}")
        return urls

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if holds_mask(value):
            raise SiteError(f"url: {_REDACTED}")
        return validate_url(value)

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        method = value.upper()
        if method not in METHODS:
            raise ValueError(f"method {value!r} is not one of {', '.join(METHODS)}")
        return method

    @field_validator("expected_status")
    @classmethod
    def _expected(cls, value: str) -> str:
        parse_expected_status(value)
        return value.replace(" ", "")

    @field_validator("max_redirects")
    @classmethod
    def _redirects(cls, value: int) -> int:
        if not 0 <= value <= 50:
            raise ValueError("max_redirects must be from 0 to 50")
        return value

    @field_validator("timeout_ms")
    @classmethod
    def _timeout(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= MAX_TIMEOUT_MS:
            raise ValueError(f"timeout_ms must be from 1 to {MAX_TIMEOUT_MS} (24 h)")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and _NOT_IN_A_NAME.search(value):
            raise ValueError("name must be text without control characters")
        return value

    @field_validator("interval_ms", "retry_interval_ms")
    @classmethod
    def _interval(cls, value: int | None, info: ValidationInfo) -> int | None:
        low, high = SITE_INTERVAL_BOUNDS_MS
        if value is not None and not low <= value <= high:
            raise ValueError(f"{info.field_name} must be from {low} to {high} (24 h)")
        return value

    @field_validator("expect_body", "expect_json", "body", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # An empty cell of a site file means "none", as for the other optional columns.
        return None if value == "" else value

    @field_validator("expect_body")
    @classmethod
    def _expect_body(cls, value: str | None) -> str | None:
        if value is not None:
            parse_expect_body(value)
        return value

    @field_validator("expect_json")
    @classmethod
    def _expect_json(cls, value: str | None) -> str | None:
        if value is not None:
            parse_expect_json(value)
        return value

    @field_validator("max_response_ms")
    @classmethod
    def _max_response(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= MAX_TIMEOUT_MS:
            raise ValueError(f"max_response_ms must be from 1 to {MAX_TIMEOUT_MS} (24 h)")
        return value

    @field_validator("headers", mode="before")
    @classmethod
    def _headers(cls, value: object) -> object:
        if value is None or value == "" or value == {}:
            return None
        if isinstance(value, str):  # a CSV cell: a JSON object
            try:
                value = json.loads(value)
            except ValueError:
                raise SiteError("headers: give a JSON object of header names and values") from None
        headers = check_headers(value)  # type: ignore[arg-type]
        secret = next((k for k, v in headers.items() if v.strip() == MASK), None)
        if secret is not None:
            raise SiteError(f"headers: the value of {secret!r} {_REDACTED}")
        return headers

    @model_validator(mode="after")
    def _body_fits_the_method(self) -> SiteSpec:
        if self.body is not None:
            check_body(self.body, self.method, self.headers)
        return self

    @model_validator(mode="after")
    def _intervals_above_the_timeout(self) -> SiteSpec:
        for name in ("interval_ms", "retry_interval_ms"):
            value = getattr(self, name)
            if value is not None and self.timeout_ms is not None and value <= self.timeout_ms:
                raise ValueError(f"{name}={value} must be above timeout_ms={self.timeout_ms}")
        return self


def site_spec(values: Mapping[str, Any]) -> SiteSpec:
    """Validate ``values`` into a SiteSpec, turning pydantic's report into one SiteError line."""
    try:
        return SiteSpec(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        ctx = err.get("ctx") or {}
        cause = ctx.get("error")
        if isinstance(cause, SiteError):
            raise type(cause)(str(cause)) from None
        message = str(cause) if cause is not None else rule_broken(err)
        if err["type"] == "extra_forbidden":
            message = f"unknown column (the columns are: {', '.join(COLUMNS)})"
        # A rule over several fields has no place; one whose message names its field already
        # needs no prefix ("method 'FOO' is not ...", not "method: method 'FOO' ...").
        if not where or message.startswith((where, where.replace("_", " "))):
            raise SiteError(message) from None
        raise SiteError(f"{where}: {message}") from None


@dataclass(frozen=True, slots=True)
class ActiveSite:
    """What a cycle needs of a site, small: a collector may hold 100 000 of them."""

    def __repr__(self) -> str:
        # A notebook shows reprs: the URL's password and secret header values never are.
        shown = {f: getattr(self, f) for f in self.__slots__}
        shown["url"] = redact(self.url)
        if shown.get("headers"):
            shown["headers"] = redact_headers(shown["headers"])
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    id: uuid.UUID
    url: str
    name: str | None = None
    method: str = "GET"
    expected_status: str = "200-399"
    follow_redirects: bool = True
    max_redirects: int = 5
    timeout_ms: int | None = None
    interval_ms: int | None = None
    retry_interval_ms: int | None = None
    tls_verify: bool = True
    expect_body: str | None = None
    expect_json: str | None = None
    max_response_ms: int | None = None
    headers: Mapping[str, str] | None = None
    body: str | None = None


ACTIVE_SITE_FIELDS = tuple(f for f in ActiveSite.__slots__)


class Probeable(Protocol):
    """What the probe needs of a site (a :class:`ActiveSite` or a stored ``Site`` has it all)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def url(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def expected_status(self) -> str: ...
    @property
    def follow_redirects(self) -> bool: ...
    @property
    def max_redirects(self) -> int: ...
    @property
    def timeout_ms(self) -> int | None: ...
    @property
    def tls_verify(self) -> bool: ...
    @property
    def expect_body(self) -> str | None: ...
    @property
    def expect_json(self) -> str | None: ...
    @property
    def max_response_ms(self) -> int | None: ...
    @property
    def headers(self) -> Mapping[str, str] | None: ...
    @property
    def body(self) -> str | None: ...
