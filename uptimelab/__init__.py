"""uptimelab: a website-uptime collector on trio + httpx + PostgreSQL, and reliability analytics.

import uptimelab as ul
db = ul.connect()                       # the embedded PostgreSQL, or UPTIMELAB_DATABASE_URL
ul.add_site("https://example.org", db=db)
summary = ul.collect_once(db=db)        # one cycle now; works in a notebook too
"""

__version__ = "0.1.0"

from .collector import (
    BackgroundCollector,
    Collector,
    CycleSummary,
    collect_once,
    start_collector,
)
from .config import Settings
from .db import Database, connect
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
from .models import MonitoringCycle, Ping, Site, SiteStats
from .probe import Prober, categorise
from .sites import (
    ImportReport,
    add_site,
    disable_site,
    enable_site,
    get_site,
    import_sites,
    list_sites,
    remove_site,
)

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
    "import_sites",
    "list_sites",
    "remove_site",
    "start_collector",
]
