"""The API's bearer token."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, BaseModel, BeforeValidator, Field, SecretStr, field_validator

from .rules import MIN_API_TOKEN_CHARS, SECRET_SHOWN, RuleBroken


class ApiSettings(BaseModel):
    """The field of :class:`~uptimelab.config.Settings` that guards the API's POST endpoints."""

    api_token: Annotated[
        SecretStr | None,
        BeforeValidator(lambda v: (v.strip() or None) if isinstance(v, str) else v),
    ] = Field(
        default=None,
        validation_alias=AliasChoices("UPTIMELAB_API_TOKEN"),
        description="Bearer token of the API's POST endpoints (at least 16 characters); "
        "needed to serve on an address other machines can reach.",
    )

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
