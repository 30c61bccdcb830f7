"""``uptimelab.stats`` (``ul.stats``): the pandas API over pings, for notebooks.

A public face, re-exports only: the functions live in :mod:`uptimelab.analytics`.
"""

from .analytics.pings import *  # noqa: F403
from .analytics.pings import __all__ as __all__
