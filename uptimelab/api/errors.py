"""Every error the API answers is JSON of one shape (:class:`~.schemas.Error`), never a
traceback: HTTP errors keep their code, our own errors map to a code by kind, a database that
fails is 503, anything else 500 (and logged)."""

from __future__ import annotations

import http
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from ..errors import (
    ConfigError,
    CycleInProgressError,
    SiteError,
    StoreError,
    UnknownSiteError,
    UptimelabError,
)
from ..text import rule_broken
from .schemas import Error

log = logging.getLogger("uptimelab.api")

_LOCATIONS = ("body", "query", "path", "header")


def error_response(
    status_code: int, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The JSON answer of an error: ``{"status": ..., "error": ..., "message": ...}``."""
    body = Error(status=status_code, error=http.HTTPStatus(status_code).phrase, message=message)
    return JSONResponse(body.model_dump(), status_code=status_code, headers=headers)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of error ``codes``, for a route's decorator."""
    return {code: {"model": Error, "description": http.HTTPStatus(code).phrase} for code in codes}


def validation_message(errors: Sequence[Any]) -> str:
    """One line from pydantic's errors: ``field: what is wrong``, the input left out (it may be
    long, or a secret)."""
    parts = []
    for err in errors[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in _LOCATIONS) or "body"
        if err.get("type") == "json_invalid":
            where = "body"  # not the character offset pydantic puts in loc
        parts.append(f"{where}: {rule_broken(err)}")
    return "; ".join(parts)[:300]


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    allow = headers.get("Allow")
    if exc.status_code == 405 and allow and "GET" in allow and "HEAD" not in allow:
        headers["Allow"] = f"{allow}, HEAD"  # see HeadAsGet
    return error_response(exc.status_code, str(exc.detail), headers)


async def _on_invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError | ValidationError)
    return error_response(422, validation_message(exc.errors()))


async def _on_uptimelab_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, UnknownSiteError):
        return error_response(404, str(exc))
    if isinstance(exc, ConfigError | SiteError):
        return error_response(422, str(exc))
    if isinstance(exc, CycleInProgressError):
        return error_response(409, str(exc))
    if isinstance(exc, StoreError):
        return error_response(503, str(exc))
    log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    return await _on_unexpected(request, exc)


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    log.error(
        "database error in %s %s: %s",
        request.method,
        request.url.path,
        exc,
        extra={"component": "api", "category": type(exc).__name__},
    )
    return error_response(503, "the database failed to answer; see the server's log")


async def _on_client_gone(request: Request, exc: Exception) -> Response:
    # A client that hangs up mid-body, or sends a body the server cannot frame (the server has
    # answered 400 already): nothing of ours failed, and the answer will reach no one.
    log.warning(
        "%s %s: the client went away before its request body ended",
        request.method,
        request.url.path,
        extra={"component": "api", "category": "client_disconnect"},
    )
    return Response(status_code=400)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette re-raises the exception after this answer, so the server logs its traceback.
    return error_response(500, "internal error; see the server's log")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as JSON of the one shape."""
    app.add_exception_handler(HTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_invalid_request)
    app.add_exception_handler(ValidationError, _on_invalid_request)
    app.add_exception_handler(UptimelabError, _on_uptimelab_error)
    app.add_exception_handler(psycopg.Error, _on_database_error)
    app.add_exception_handler(ClientDisconnect, _on_client_gone)
    app.add_exception_handler(Exception, _on_unexpected)
