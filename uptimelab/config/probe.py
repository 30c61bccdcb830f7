"""The probe's HTTP client (its engine, the CAs it trusts) and the spool its pings wait in while
the database cannot take them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, Field, field_validator

from .rules import MAX_SPOOL_BYTES, MIB, RuleBroken, blank_is_none, expand_home, shown


class ProbeSettings(BaseModel):
    """The fields of :class:`~uptimelab.config.Settings` for the probe and the pings it makes.

    The spool's cap sits between the engine and the CA bundle, as it always has: the fields keep
    their order in Settings (see there).
    """

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
    ca_bundle: Annotated[Path | None, BeforeValidator(blank_is_none)] = Field(
        default=None,
        validation_alias=AliasChoices("UPTIMELAB_CA_BUNDLE"),
        description="PEM file of certificate authorities the probe trusts in addition to "
        "certifi's (an internal CA); both engines use it.",
    )

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
            raise RuleBroken("ca_bundle", shown(str(path)), "no such file") from None
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
            raise RuleBroken(
                "ca_bundle", shown(str(path)), f"not a readable PEM file of CAs ({reason})"
            ) from None
        return path
