"""``uptimelab.analysis``: the tables the notebooks and the report share.

A public face, re-exports only: the functions live in :mod:`uptimelab.analytics`.
"""

from .analytics.tables import *  # noqa: F403
from .analytics.tables import __all__ as __all__
