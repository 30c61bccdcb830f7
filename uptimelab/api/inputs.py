"""What the API reads from a request beyond FastAPI's parameters: query values given once, the
body of a dry run, and the sites it names."""

from __future__ import annotations

import contextlib
import uuid

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from ..domain.redaction import redact
from ..errors import UnknownSiteError
from ..storage.database import Database
from ..storage.models import Site
from ..storage.sites import list_sites
from .schemas import DryRunRequest


async def each_query_value_once(request: Request) -> None:
    """422 when a query parameter is given more than once."""
    query = request.query_params
    repeated = sorted({name for name in query if len(query.getlist(name)) > 1})
    if repeated:
        raise RequestValidationError(
            [{"loc": ("query", name), "msg": "give it once"} for name in repeated]
        )


async def dry_run_request(request: Request) -> DryRunRequest | None:
    """The body of a dry run (read within the body cap); None when there is none."""
    body = await request.body()
    if not body.strip():
        return None
    try:
        return DryRunRequest.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


def sites_to_test(db: Database, wanted: list[str] | None) -> list[Site]:
    """The sites a dry run probes: those named (by id or URL, inactive ones too; each once),
    or every active site. Raises UnknownSiteError for a name no site has."""
    if wanted is None:
        return list_sites(active=True, db=db)
    known = list_sites(db=db)
    by_key: dict[str, Site] = {s.url: s for s in known}
    by_key.update({str(s.id): s for s in known})
    chosen: dict[uuid.UUID, Site] = {}
    for key in wanted:
        with contextlib.suppress(ValueError):
            key = str(uuid.UUID(key))
        site = by_key.get(key)
        if site is None:
            shown = redact(key if len(key) <= 120 else key[:117] + "...")
            raise UnknownSiteError(f"no site with id or URL {shown!r}")
        chosen[site.id] = site
    return list(chosen.values())
