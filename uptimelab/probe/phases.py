"""What a ping measures besides its outcome: the time of each phase, and the server's certificate.

Both engines lap a :class:`PhaseClock` as a ping goes: each lap gives the time since the
previous one to a phase, so the phases of a ping add up to its whole time (less the phase it
failed in, and the microseconds after its last lap). A phase that did not happen (DNS for an IP
address, TLS for plain HTTP) is never lapped and stays None.

Certificates: :func:`expiry` reads the expiry of a handshake's certificate (the earliest in the
verified chain where Python exposes the chain, 3.13 and later; the server's own certificate
before that). When a handshake fails because a certificate expired, :func:`expired_on` looks
again without verifying, so that the error can say when.
"""

from __future__ import annotations

import datetime as dt
import math
import ssl
import time
from typing import Any

import trio

from ..domain.pings import PHASES

# The verify_code of a certificate past its notAfter (OpenSSL's X509_V_ERR_CERT_HAS_EXPIRED).
CERT_HAS_EXPIRED = 10
_EXPIRY_CACHE_SIZE = 4096
_expiry_of_der: dict[bytes, dt.datetime] = {}


class PhaseClock:
    """The phases of one ping in seconds, summed over its hops; the earliest certificate expiry
    seen; and the origin (host, port) of the hop under way, for an error to look at."""

    __slots__ = (
        "_mark",
        "cert_expires_at",
        "connect",
        "dns",
        "origin",
        "started",
        "tls",
        "transfer",
        "ttfb",
    )

    def __init__(self) -> None:
        self.started = self._mark = time.perf_counter()
        self.dns: float | None = None
        self.connect: float | None = None
        self.tls: float | None = None
        self.ttfb: float | None = None
        self.transfer: float | None = None
        self.cert_expires_at: dt.datetime | None = None
        self.origin: tuple[str, int] | None = None

    def lap(self, phase: str) -> None:
        """Give the time since the previous lap (or the start) to ``phase``."""
        now = time.perf_counter()
        spent = now - self._mark
        self._mark = now
        setattr(self, phase, (getattr(self, phase) or 0.0) + spent)

    def saw_certificate(self, ssl_object: Any) -> None:
        """Keep the expiry of a completed handshake's certificate (the earliest over hops)."""
        expires = expiry(ssl_object)
        if expires is not None and (self.cert_expires_at is None or expires < self.cert_expires_at):
            self.cert_expires_at = expires

    def milliseconds(self) -> dict[str, int | None]:
        """The phases as ``<phase>_ms`` columns, whole milliseconds that add up to their rounded
        sum (the largest remainders round up), so that they add up to the ping's time."""
        exact = {p: s * 1000 for p in PHASES if (s := getattr(self, p)) is not None}
        whole = {p: math.floor(ms) for p, ms in exact.items()}
        short = round(sum(exact.values())) - sum(whole.values())
        for p in sorted(exact, key=lambda p: exact[p] - whole[p], reverse=True)[:short]:
            whole[p] += 1
        return {f"{p}_ms": whole.get(p) for p in PHASES}


def expiry(ssl_object: Any) -> dt.datetime | None:
    """The expiry (UTC) of the certificate an ``ssl.SSLSocket``, ``ssl.SSLObject`` or
    trio.SSLStream completed a handshake with: the earliest in the verified chain where Python
    exposes it."""
    # trio.SSLStream forwards getpeercert but not the chain methods of its SSLObject.
    inner = getattr(ssl_object, "_ssl_object", ssl_object)
    chain = getattr(inner, "get_verified_chain", None)
    if chain is not None and inner.context.verify_mode != ssl.CERT_NONE:
        ders = [_der(c) for c in chain()]
        found = [e for e in map(_expiry_of, ders) if e is not None]
        if found:
            return min(found)
    der = inner.getpeercert(binary_form=True)
    return None if der is None else _expiry_of(der)


async def expired_on(origin: tuple[str, int], context: ssl.SSLContext) -> dt.datetime | None:
    """The expiry of the certificate ``origin`` (host, port) shows, read through ``context``
    (one that does not verify); None when it cannot be read. Never raises for the server's
    behaviour: this only adds a date to an error already found."""
    host, port = origin
    try:
        stream = await trio.open_tcp_stream(host, port)
        tls = trio.SSLStream(stream, context, server_hostname=host, https_compatible=True)
        try:
            await tls.do_handshake()
            inner = getattr(tls, "_ssl_object", tls)
            unverified = getattr(inner, "get_unverified_chain", None)
            if unverified is not None:
                found = [e for e in map(_expiry_of, map(_der, unverified())) if e is not None]
                return min(found) if found else None
            der = tls.getpeercert(binary_form=True)
            return None if der is None else _expiry_of(der)
        finally:
            await trio.aclose_forcefully(tls)
    except (OSError, trio.BrokenResourceError):
        return None


def _der(cert: Any) -> bytes:
    # Python 3.13 gives DER bytes; later versions may give objects with public_bytes().
    if isinstance(cert, bytes):
        return cert
    return bytes(cert.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]


def _expiry_of(der: bytes) -> dt.datetime | None:
    found = _expiry_of_der.get(der)
    if found is None:
        # Imported here: only HTTPS pings need it, and a plain-HTTP probe starts faster.
        from cryptography import x509

        try:
            found = x509.load_der_x509_certificate(der).not_valid_after_utc
        except ValueError:
            return None
        if len(_expiry_of_der) >= _EXPIRY_CACHE_SIZE:
            _expiry_of_der.clear()
        _expiry_of_der[der] = found
    return found
