"""What stands before the endpoints: the bearer token of the POST endpoints, the Host header
guard, the request body cap, and HEAD served as GET.

The token is compared in constant time (digests of equal length: neither the token nor its
length leaks through timing). With no token configured, POST endpoints answer 401.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response

MAX_BODY_BYTES = 64 * 1024
"""Largest request body (bytes) the API reads; a longer one is answered 413."""

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="uptimelab"'}
_bearer = HTTPBearer(auto_error=False, scheme_name="bearer")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class BearerToken:
    """A dependency that answers 401 unless the request sends ``Authorization: Bearer
    <token>`` with the configured token."""

    def __init__(self, token: SecretStr | None) -> None:
        self._digest = None if token is None else _digest(token.get_secret_value())

    async def __call__(
        self, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
    ) -> None:
        if self._digest is None:
            raise HTTPException(
                401,
                "POST endpoints are disabled: the server has no UPTIMELAB_API_TOKEN",
                _CHALLENGE,
            )
        given = "" if credentials is None else credentials.credentials.strip()
        if not given:
            raise HTTPException(401, "send Authorization: Bearer <token>", _CHALLENGE)
        if not hmac.compare_digest(_digest(given), self._digest):
            raise HTTPException(401, "wrong token", _CHALLENGE)


class HostGuard:
    """Answers 400 to a request whose Host header is not one of ``allowed`` (protects a
    loopback-only API from DNS rebinding: a web page cannot reach it under its own name)."""

    def __init__(self, app: ASGIApp, allowed: Collection[str]) -> None:
        self.app = app
        self.allowed = frozenset(h.lower() for h in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                name = urlsplit("//" + Headers(scope=scope).get("host", "")).hostname
            except ValueError:
                name = None
            if name not in self.allowed:
                answer = error_response(400, "this server does not answer for that Host header")
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyCap:
    """Answers 413 to a request body longer than ``max_bytes``: at once when its Content-Length
    says so, else as soon as the bytes read pass the cap."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"the body is larger than {self.max_bytes} bytes"
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(413, too_large)(scope, receive, send)
            return
        received = 0

        async def capped() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the endpoint's read: the app's handlers answer it.
                    raise HTTPException(413, too_large)
            return message

        await self.app(scope, capped, send)


class HeadAsGet:
    """Serves HEAD as GET without the body (FastAPI routes answer the methods they name only)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
