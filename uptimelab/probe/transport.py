"""The lean HTTP/1.1 client of the probe: one request on a fresh trio stream, nothing more.

A monitor needs a small part of HTTP: open a connection (DNS, TCP, TLS), send one request with
``Connection: close``, read the response head, read at most 64 KiB of body, follow redirects by
the site's rules. Doing just that on trio streams costs a fraction of the CPU of a general
client (no pool, no per-request object graph), which decides how many sites one core can watch.
TLS is OpenSSL on the socket itself, trio only waiting for readiness (:mod:`.tls`).
The httpx engine (``PROBE_ENGINE=httpx``) does the same through httpx; the probe's tests run
every failure mode through both, and both must categorise alike.

The response is read by :mod:`.http1` (httptools, i.e. llhttp: framing, interim answers, the
body cap). URLs, the site's and every redirect's Location, are sent in their normal form
(:mod:`uptimelab.domain.urls`): ASCII, percent-encoded UTF-8.

Failures surface as exceptions the probe categorises: OSError and trio errors from the
transport (their causes say dns, refused, tls, network), and :class:`ResponseError`, which names
its category (``protocol`` for a malformed answer, ``network`` for one cut short).
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import trio

from ..domain.urls import URLRuleError, normalise_url, resolve_location
from .http1 import Response, ResponseError, read_response
from .phases import PhaseClock
from .tls import open_tls

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
HAPPY_EYEBALLS_DELAY_S = 0.250  # trio's default (RFC 8305 recommends 250 ms)
# A URL in the normal form with nothing unusual (no user info, no fragment, a lower-case host):
# taken apart without urlsplit, which costs ten times more (Target.parse_general is the rule).
_PLAIN_URL = re.compile(
    r"(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?(/[^?#\s]*)?(?:\?([^#\s]*))?"
)


@dataclass(slots=True)
class Target:
    """A URL taken apart: what a request to it needs (treated as read-only)."""

    url: str
    tls: bool
    host: str  # for DNS and SNI (IDNA-encoded)
    port: int
    host_header: str
    target: str  # path and query
    authorization: str | None

    @classmethod
    def parse(cls, url: str) -> Target:
        """Take ``url`` apart in its normal form. Raises ResponseError (protocol) for a URL that
        cannot be requested (stored before the URL rules, or a redirect's).

        Made for every probe rather than kept per site: a cache of every URL held 370 bytes a
        site (37 MB at 100 000 sites), grew with every site a collector ever probed, and saved
        about 3 us a probe over the plain path below."""
        plain = _PLAIN_URL.fullmatch(url) if url.isascii() and url.isprintable() else None
        if plain is not None:
            scheme, host, port_text, path, query = plain.groups()
            port = int(port_text) if port_text else (443 if scheme == "https" else 80)
            if port_text is None or 0 < port < 65536:
                host = host[1:-1] if host[0] == "[" else host
                return cls._made(url, scheme, host, port, path, query, None)
        return cls.parse_general(url)

    @classmethod
    def _made(
        cls,
        url: str,
        scheme: str,
        host: str,
        port: int,
        path: str | None,
        query: str | None,
        authorization: str | None,
    ) -> Target:
        shown = f"[{host}]" if ":" in host else host
        default = port == (443 if scheme == "https" else 80)
        return cls(
            url=url,
            tls=scheme == "https",
            host=host,
            port=port,
            host_header=shown if default else f"{shown}:{port}",
            target=(path or "/") + (f"?{query}" if query else ""),
            authorization=authorization,
        )

    @classmethod
    def parse_general(cls, url: str) -> Target:
        """:meth:`parse` for any URL (user info, fragments, a host to normalise)."""
        if not (url.isascii() and url.isprintable() and " " not in url):
            # Stored URLs are in the normal form already (the fast path: normalising costs as
            # much as the rest of a ping); one stored before the rules may not be.
            try:
                url = normalise_url(url)
            except URLRuleError as exc:
                raise ResponseError("protocol", f"cannot request this URL: {exc}") from None
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ResponseError("protocol", f"cannot request this URL: {url[:60]!r}")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as exc:
            raise ResponseError("protocol", f"bad port in URL: {exc}") from None
        authorization = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        return cls._made(url, scheme, parts.hostname, port, parts.path, parts.query, authorization)

    @property
    def origin(self) -> tuple[bool, str, int]:
        return self.tls, self.host, self.port


class LeanClient:
    """Sends one request per connection. ``ssl_context`` verifies servers (a private CA can be
    trusted by passing a context that trusts it)."""

    def __init__(self, *, ssl_context: ssl.SSLContext, user_agent: str, body_cap: int) -> None:
        self.ssl_context = ssl_context
        self.user_agent = user_agent
        self.body_cap = body_cap

    def target(self, url: str) -> Target:
        return Target.parse(url)

    async def request(
        self,
        method: str,
        target: Target,
        *,
        auth: str | None,
        clock: PhaseClock,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        keep_body: bool = False,
    ) -> Response:
        """One request on a fresh connection; the body is read up to the cap, then dropped
        (kept in the Response if ``keep_body``). ``headers`` (a site's own, which win over ours
        and over ``auth``) and ``body`` go with the request. ``clock`` is lapped at the end of
        each phase and keeps the certificate's expiry."""
        clock.origin = (target.host, target.port)
        stream: trio.abc.Stream = await _open_stream(target.host, target.port, clock)
        try:
            if target.tls:
                stream = await self.start_tls(stream, target.host, clock)
            if headers or body is not None:
                head = _head(method, target, self.user_agent, auth, headers or {}, body)
            else:
                head = (
                    f"{method} {target.target} HTTP/1.1\r\nHost: {target.host_header}\r\n"
                    f"User-Agent: {self.user_agent}\r\nAccept: */*\r\nConnection: close\r\n"
                )
                if auth is not None:
                    head += f"Authorization: {auth}\r\n"
            await stream.send_all((head + "\r\n").encode("ascii") + (body or b""))
            response = await read_response(
                stream, method, clock, body_cap=self.body_cap, keep_body=keep_body
            )
        finally:
            await trio.aclose_forcefully(stream)
        clock.lap("transfer")
        return response

    async def start_tls(
        self, stream: trio.abc.Stream, host: str, clock: PhaseClock
    ) -> trio.abc.Stream:
        """The handshake on a connected ``stream`` (lapped as ``tls``; the certificate's
        expiry kept), done by OpenSSL on the socket itself (:mod:`.tls`)."""
        assert isinstance(stream, trio.SocketStream)
        tls = await open_tls(stream, self.ssl_context, host)
        clock.lap("tls")
        clock.saw_certificate(tls.ssl_socket)
        return tls


def _head(
    method: str,
    target: Target,
    user_agent: str,
    auth: str | None,
    headers: Mapping[str, str],
    body: bytes | None,
) -> str:
    """A request head with a site's own headers (checked where the site was stored: tokens and
    one-line ASCII values), which replace ours of the same name."""
    own = {name.lower() for name in headers}
    head = f"{method} {target.target} HTTP/1.1\r\nHost: {target.host_header}\r\n"
    if "user-agent" not in own:
        head += f"User-Agent: {user_agent}\r\n"
    if "accept" not in own:
        head += "Accept: */*\r\n"
    head += "Connection: close\r\n"
    if auth is not None and "authorization" not in own:
        head += f"Authorization: {auth}\r\n"
    for name, value in headers.items():
        head += f"{name}: {value}\r\n"
    if body is not None:
        head += f"Content-Length: {len(body)}\r\n"
    return head


def next_hop(target: Target, location: bytes, method: str, status: int) -> tuple[Target, str]:
    """Where a redirect leads (its Location resolved against ``target`` and normalised), and with
    which method (303, and 301/302 after a POST, become GET, as browsers and httpx do).

    Raises ResponseError (protocol) for a Location that cannot be followed."""
    try:
        url = resolve_location(target.url, location)
    except URLRuleError as exc:
        raise ResponseError("protocol", f"cannot follow the redirect: {exc}") from None
    hop = Target.parse(url)
    if status == 303 and method != "HEAD" or status in (301, 302) and method == "POST":
        method = "GET"
    return hop, method


async def _open_stream(host: str, port: int, clock: PhaseClock) -> trio.SocketStream:
    """trio.open_tcp_stream in two timed phases: resolve ``host`` (``dns``, not lapped for an IP
    address), then connect (``connect``), racing the addresses as trio does (happy eyeballs:
    the next address is tried when the previous fails or after 250 ms, the first to connect
    wins). Raises OSError (socket.gaierror for a name that does not resolve)."""
    # trio.socket.getaddrinfo answers an IP address at once, and asks a custom hostname
    # resolver (trio.socket.set_custom_hostname_resolver) as open_tcp_stream would.
    targets = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
    if not _is_ip_address(host):
        clock.lap("dns")
    if not targets:
        raise OSError(f"name {host!r} resolved to no address")
    if len(targets) == 1:
        stream = await _connect(targets[0])
    else:
        stream = await _race(_rfc6555_order(targets), host, port)
    clock.lap("connect")
    return stream


async def _connect(target: tuple[Any, ...]) -> trio.SocketStream:
    family, kind, proto, _, address = target
    sock = trio.socket.socket(family, kind, proto)
    try:
        await sock.connect(address)
    except BaseException:  # also cancelled: the socket is ours to close either way
        sock.close()
        raise
    return trio.SocketStream(sock)


async def _race(targets: list[tuple[Any, ...]], host: str, port: int) -> trio.SocketStream:
    """Happy eyeballs over resolved addresses, as trio.open_tcp_stream does."""
    winner: trio.SocketStream | None = None
    errors: list[OSError] = []

    async def attempt(target: tuple[Any, ...], failed: trio.Event) -> None:
        nonlocal winner
        try:
            stream = await _connect(target)
        except OSError as exc:
            errors.append(exc)
            failed.set()
            return
        if winner is None:
            winner = stream
            nursery.cancel_scope.cancel()
        else:  # connected in the same instant as the winner
            await trio.aclose_forcefully(stream)

    async with trio.open_nursery() as nursery:
        for target in targets:
            failed = trio.Event()
            nursery.start_soon(attempt, target, failed)
            with trio.move_on_after(HAPPY_EYEBALLS_DELAY_S):
                await failed.wait()
    if winner is None:
        message = f"all attempts to connect to {host}:{port} failed"
        raise OSError(message) from ExceptionGroup(message, errors)
    return winner


def _rfc6555_order(targets: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The first address of the other family moves up to second place (RFC 6555 5.4)."""
    for i in range(1, len(targets)):
        if targets[i][0] != targets[0][0]:
            return [targets[0], targets[i], *targets[1:i], *targets[i + 1 :]]
    return targets


@functools.lru_cache(maxsize=4096)
def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
