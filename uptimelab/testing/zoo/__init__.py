"""The target zoo: many simulated websites on loopback, each with one way of behaving or failing.

Tests, the demo and the benchmarks point the collector at a zoo instead of the internet. Every
target answers (or fails) in one fixed way, described by a :class:`Behaviour`, after a fixed
latency, and knows which failure category a correct probe must report for it.

The server is a deliberately tiny HTTP/1.1 implementation on trio streams: it reads the request
head (up to 16 KiB), looks only at the request line's path, answers with ``Connection: close`` and
closes. All plain-HTTP targets share one listener and are selected by the path ``/t/{name}``;
TLS targets live on a second listener whose certificate comes from a throw-away trustme CA.

Usage::

    async with open_zoo(ZooSpec.every_failure()) as zoo:
        url = zoo.url("hang")
"""

from .http1 import MAX_HEAD_BYTES
from .server import (
    BOMB_DECODED_BYTES,
    HUGE_BODY_LENGTH,
    JSON_DOCUMENT,
    SLOW_DRIP_LENGTH,
    ZOO_KEYWORD,
    Zoo,
    open_zoo,
)
from .targets import (
    EXPECTED_CATEGORY,
    MAX_DURATION_S,
    Behaviour,
    Target,
    TargetSpec,
    ZooSpec,
    realistic_spec,
)

__all__ = [
    "BOMB_DECODED_BYTES",
    "EXPECTED_CATEGORY",
    "HUGE_BODY_LENGTH",
    "JSON_DOCUMENT",
    "MAX_DURATION_S",
    "MAX_HEAD_BYTES",
    "SLOW_DRIP_LENGTH",
    "ZOO_KEYWORD",
    "Behaviour",
    "Target",
    "TargetSpec",
    "Zoo",
    "ZooSpec",
    "open_zoo",
    "realistic_spec",
]
