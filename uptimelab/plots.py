"""``uptimelab.plots``: the charts the notebooks and the report share (matplotlib).

A public face, re-exports only: the functions live in :mod:`uptimelab.analytics`.
"""

from .analytics.plots import *  # noqa: F403
from .analytics.plots import __all__ as __all__
