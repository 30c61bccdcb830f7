"""The zoo's targets: the behaviours a website can show, the category a correct probe reports
for each, and the specs a zoo is opened from (one target per behaviour, many alike, or a
realistic slice of the web)."""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import math
import random
import re
import types
from collections.abc import Mapping

MAX_DURATION_S = 86_400.0
"""Longest lifetime (seconds) a zoo may be given; it always stops by itself."""

_NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# The name doubles as a DNS label for DNS targets, hence the label rules (letters, digits,
# inner hyphens, at most 63 characters).


class Behaviour(enum.StrEnum):
    """How a target answers (or fails to answer) a request; members are their string values."""

    OK = "ok"
    STATUS = "status"
    REDIRECT = "redirect"
    REFUSED = "refused"
    HANG = "hang"
    TLS_UNTRUSTED = "tls-untrusted"
    RESET = "reset"
    CLOSE = "close"
    GARBAGE = "garbage"
    REDIRECT_LOOP = "redirect-loop"
    SLOW_DRIP = "slow-drip"
    HUGE_BODY = "huge-body"
    DNS = "dns"
    # What a page says, for a site's assertions (a site without any sees each of these up).
    JSON = "json"
    GZIP = "gzip"
    GZIP_BOMB = "gzip-bomb"
    ECHO = "echo"


EXPECTED_CATEGORY: Mapping[Behaviour, str | None] = types.MappingProxyType(
    {
        Behaviour.OK: None,
        Behaviour.STATUS: "http_status",
        Behaviour.REDIRECT: None,
        Behaviour.REFUSED: "refused",
        Behaviour.HANG: "timeout",
        Behaviour.TLS_UNTRUSTED: "tls",
        Behaviour.RESET: "network",
        Behaviour.CLOSE: "network",
        Behaviour.GARBAGE: "protocol",
        Behaviour.REDIRECT_LOOP: "too_many_redirects",
        # Only when the probe's overall deadline is shorter than the ~11.6-day drip, i.e. always.
        Behaviour.SLOW_DRIP: "timeout",
        # A probe reads at most 64 KiB of a body and stops, so a huge body is still "up".
        Behaviour.HUGE_BODY: None,
        Behaviour.DNS: "dns",
        # Up without assertions; with them, see ZOO_KEYWORD, JSON_DOCUMENT and ECHO in server.py.
        Behaviour.JSON: None,
        Behaviour.GZIP: None,
        Behaviour.GZIP_BOMB: None,
        Behaviour.ECHO: None,
    }
)
"""The failure category a correct probe reports per behaviour; None means the site is up."""


@dataclasses.dataclass(frozen=True)
class TargetSpec:
    """Description of one target before the zoo has bound its ports.

    ``status`` is the HTTP status a STATUS target answers (400-599) and is ignored otherwise;
    ``latency_ms`` is the delay (milliseconds) before the response head is sent.
    """

    name: str
    behaviour: Behaviour
    status: int = 200
    latency_ms: float = 0.0

    def __post_init__(self) -> None:
        if not _NAME_RE.fullmatch(self.name):
            raise ValueError(
                f"target name {self.name!r} must be 1-63 letters, digits or inner hyphens"
            )
        if self.behaviour is Behaviour.STATUS and not 400 <= self.status <= 599:
            raise ValueError(f"STATUS target {self.name!r} needs a status in 400-599")
        if not (math.isfinite(self.latency_ms) and self.latency_ms >= 0):
            raise ValueError(f"latency_ms of {self.name!r} must be finite and >= 0")


@dataclasses.dataclass(frozen=True)
class Target:
    """One served target: where to ping it and what a correct probe reports for it.

    ``status`` is the HTTP status finally answered (STATUS targets' own status, else 200);
    ``latency_ms`` is the delay (milliseconds) before each response head, fixed for the zoo's
    life; ``expect_category`` is None when a correct probe reports the target up.
    """

    name: str
    behaviour: Behaviour
    url: str
    status: int = 200
    latency_ms: float = 0.0
    expect_category: str | None = None


@dataclasses.dataclass(frozen=True)
class ZooSpec:
    """Everything needed to open a zoo: targets, seed, lifetime (seconds) and where to listen.

    ``host`` must be a loopback IP address. ``port`` is the plain-HTTP listener's port; 0 picks
    an ephemeral one, and a nonzero port that is taken falls back to an ephemeral one.
    ``seed`` records the seed the targets were generated from (the zoo itself is deterministic).
    ``tls`` serves every target over HTTPS (TLS 1.3, an ECDSA P-256 certificate of the zoo's
    throw-away CA, X25519 key exchange), on the TLS listener: what most real sites are.
    Adjust a ready-made spec with :func:`dataclasses.replace`, e.g. ``replace(spec, port=8080)``.
    """

    targets: tuple[TargetSpec, ...]
    seed: int = 0
    duration_s: float = 600.0
    host: str = "127.0.0.1"
    port: int = 0
    tls: bool = False

    def __post_init__(self) -> None:
        if not (0 < self.duration_s <= MAX_DURATION_S):
            raise ValueError(f"duration_s must be in (0, {MAX_DURATION_S:g}] seconds")
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"the zoo only listens on a loopback IP address, not {self.host!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is out of range")
        names = [t.name for t in self.targets]
        if len(set(names)) != len(names):
            raise ValueError("target names must be unique within a zoo")

    @classmethod
    def every_failure(cls, *, latency_ms: float = 0.0, duration_s: float = 600.0) -> ZooSpec:
        """One target per behaviour, named after its value ("ok", "status" answering 500, ...).

        ``latency_ms`` (milliseconds) applies to every target; ``duration_s`` is the lifetime.
        """
        targets = tuple(
            TargetSpec(
                b.value, b, status=500 if b is Behaviour.STATUS else 200, latency_ms=latency_ms
            )
            for b in Behaviour
        )
        return cls(targets, duration_s=duration_s)

    @classmethod
    def uniform(
        cls,
        n: int,
        *,
        latency_ms: float = 0.0,
        duration_s: float = 600.0,
        prefix: str = "ok",
        tls: bool = False,
    ) -> ZooSpec:
        """``n`` OK targets named "{prefix}-0000", ... with the same latency (milliseconds);
        over HTTPS if ``tls``."""
        if n < 0:
            raise ValueError("n must be >= 0")
        targets = tuple(
            TargetSpec(f"{prefix}-{i:04d}", Behaviour.OK, latency_ms=latency_ms) for i in range(n)
        )
        return cls(targets, duration_s=duration_s, tls=tls)


def realistic_spec(
    n_sites: int,
    *,
    median_ms: float = 150.0,
    sigma: float = 0.6,
    timeout_share: float = 0.02,
    fail_fast_share: float = 0.03,
    seed: int = 0,
) -> ZooSpec:
    """A zoo of ``n_sites`` targets "site-00000", ... that looks like a slice of the real web.

    Each target's latency (milliseconds) is drawn once from a log-normal distribution with
    median ``median_ms`` and shape ``sigma``. ``round(n_sites * timeout_share)`` randomly chosen
    targets HANG, ``round(n_sites * fail_fast_share)`` others fail fast, split in turn among
    REFUSED, RESET, STATUS 500 and STATUS 503; the rest are OK. The same seed gives the same spec.
    """
    if n_sites < 0:
        raise ValueError("n_sites must be >= 0")
    if not (median_ms > 0 and sigma >= 0):
        raise ValueError("median_ms must be > 0 and sigma >= 0")
    if not (0 <= timeout_share <= 1 and 0 <= fail_fast_share <= 1):
        raise ValueError("shares must be in [0, 1]")
    n_hang = round(n_sites * timeout_share)
    n_fast = round(n_sites * fail_fast_share)
    if n_hang + n_fast > n_sites:
        raise ValueError("timeout_share + fail_fast_share must not exceed 1")
    rng = random.Random(seed)
    mu = math.log(median_ms)
    latencies = [rng.lognormvariate(mu, sigma) for _ in range(n_sites)]
    chosen = rng.sample(range(n_sites), n_hang + n_fast)
    fast_kinds = [
        (Behaviour.REFUSED, 200),
        (Behaviour.RESET, 200),
        (Behaviour.STATUS, 500),
        (Behaviour.STATUS, 503),
    ]
    kind = dict.fromkeys(chosen[:n_hang], (Behaviour.HANG, 200))
    kind.update({i: fast_kinds[k % len(fast_kinds)] for k, i in enumerate(chosen[n_hang:])})
    targets = tuple(
        TargetSpec(f"site-{i:05d}", *kind.get(i, (Behaviour.OK, 200)), latency_ms=latencies[i])
        for i in range(n_sites)
    )
    return ZooSpec(targets, seed=seed)
