"""One check of one site -> a :class:`PingResult`: the prober, its two engines (the lean
transport on trio streams, and httpx), and error categorisation."""

from ..domain.pings import PingResult
from .categorise import categorise
from .http1 import BODY_CAP_BYTES
from .prober import ENGINES, Prober, ssl_context

__all__ = ["BODY_CAP_BYTES", "ENGINES", "PingResult", "Prober", "categorise", "ssl_context"]
