"""uptimelab: a website-uptime collector on trio + httpx + PostgreSQL, and reliability analytics.

import uptimelab as ul
db = ul.connect()                       # the embedded PostgreSQL, or UPTIMELAB_DATABASE_URL
ul.add_site("https://example.org", db=db)
summary = ul.collect_once(db=db)        # one cycle now; works in a notebook too
"""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from .collector import BackgroundCollector, Collector, CycleSummary, collect_once, start_collector
from .config import Settings
from .errors import (
    ConfigError,
    CycleInProgressError,
    InvalidSiteFileError,
    InvalidURLError,
    MigrationError,
    SiteError,
    StoreError,
    UnknownSiteError,
    UptimelabError,
)
from .probe import Prober, categorise
from .storage.database import Database, connect
from .storage.models import MonitoringCycle, Ping, Site, SiteStats
from .storage.site_stats import get_site_stats, refresh_stats, site_stats
from .storage.sites import (
    ImportReport,
    add_site,
    disable_site,
    enable_site,
    get_site,
    import_sites,
    list_sites,
    remove_site,
)

if TYPE_CHECKING:
    from . import stats


def __getattr__(name: str) -> Any:
    # ``ul.stats`` (pandas) is imported on first use, so that the CLI starts without pandas.
    if name == "stats":
        import importlib

        return importlib.import_module(".stats", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BackgroundCollector",
    "Collector",
    "ConfigError",
    "CycleInProgressError",
    "CycleSummary",
    "Database",
    "ImportReport",
    "InvalidSiteFileError",
    "InvalidURLError",
    "MigrationError",
    "MonitoringCycle",
    "Ping",
    "Prober",
    "Settings",
    "Site",
    "SiteError",
    "SiteStats",
    "StoreError",
    "UnknownSiteError",
    "UptimelabError",
    "__version__",
    "add_site",
    "categorise",
    "collect_once",
    "connect",
    "disable_site",
    "enable_site",
    "get_site",
    "get_site_stats",
    "import_sites",
    "list_sites",
    "refresh_stats",
    "remove_site",
    "site_stats",
    "start_collector",
    "stats",
]
