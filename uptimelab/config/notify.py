"""Who is told of a site's transitions, how often, how late, and where the messages link to."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AliasChoices, BaseModel, BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from .rules import (
    MAX_DB_WAIT_MS,
    MAX_NOTIFY_AGE_MS,
    MAX_RETENTION_DAYS,
    MIN_INTERVAL_MS,
    SECRET_SHOWN,
    RuleBroken,
    blank_is_none,
    shown,
)


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


class NotifySettings(BaseModel):
    """The fields of :class:`~uptimelab.config.Settings` for notifications."""

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
        description="A transition older than this when stored (a replayed spool) is recorded but "
        "not sent, and a message pending this long after it was recorded is expired; in "
        f"milliseconds, 1000 to {MAX_NOTIFY_AGE_MS} (7 d).",
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
    public_url: Annotated[str | None, BeforeValidator(blank_is_none)] = Field(
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
            raise RuleBroken("public_url", shown(url), "use an http:// or https:// URL")
        return None if url is None else url.rstrip("/")
