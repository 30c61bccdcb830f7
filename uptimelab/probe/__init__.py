"""One check of one site -> a :class:`PingResult`: the prober, its two engines (the lean
transport on trio streams, and httpx), and error categorisation."""

from ..domain.pings import PingResult
from .categorise import categorise
from .prober import ENGINES, Prober, ssl_context
from .transport import BODY_CAP_BYTES

__all__ = ["BODY_CAP_BYTES", "ENGINES", "PingResult", "Prober", "categorise", "ssl_context"]
