"""uptimelab: a website-uptime collector on trio + httpx + PostgreSQL, and reliability analytics.

import uptimelab as ul
db = ul.connect()                       # the embedded PostgreSQL, or UPTIMELAB_DATABASE_URL
ul.add_site("https://example.org", db=db)
summary = ul.collect_once(db=db)        # one cycle now; works in a notebook too
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

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

__version__ = "0.1.0"

# Where each public name lives. A name is imported on first use, so that ``import uptimelab`` and
# the CLI start without SQLAlchemy, trio, pandas or matplotlib until a command needs them.
_HOMES = {
    ".collector": [
        "BackgroundCollector",
        "Collector",
        "CycleSummary",
        "collect_once",
        "start_collector",
    ],
    ".config": ["Settings"],
    ".probe": ["Prober", "categorise"],
    ".storage.database": ["Database", "connect"],
    ".storage.models": ["MonitoringCycle", "Ping", "Site", "SiteStats"],
    ".storage.site_export": ["ExportReport", "export_sites"],
    ".storage.site_import": ["ImportReport", "import_sites"],
    ".storage.site_stats": ["get_site_stats", "refresh_stats", "site_stats"],
    ".storage.sites": [
        "SiteRow",
        "add_site",
        "disable_site",
        "enable_site",
        "get_site",
        "list_sites",
        "remove_site",
        "site_rows",
    ],
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}
# The notebooks' faces (pandas, matplotlib): ``ul.stats`` or ``from uptimelab import plots``.
_SUBMODULES = frozenset({"stats", "analysis", "plots"})

if TYPE_CHECKING:
    from . import stats
    from .collector import (
        BackgroundCollector,
        Collector,
        CycleSummary,
        collect_once,
        start_collector,
    )
    from .config import Settings
    from .probe import Prober, categorise
    from .storage.database import Database, connect
    from .storage.models import MonitoringCycle, Ping, Site, SiteStats
    from .storage.site_export import ExportReport, export_sites
    from .storage.site_import import ImportReport, import_sites
    from .storage.site_stats import get_site_stats, refresh_stats, site_stats
    from .storage.sites import (
        SiteRow,
        add_site,
        disable_site,
        enable_site,
        get_site,
        list_sites,
        remove_site,
        site_rows,
    )


if not TYPE_CHECKING:  # type checkers see the imports above; a typo stays an error

    def __getattr__(name: str) -> Any:
        if name in _SUBMODULES:
            return import_module(f".{name}", __name__)
        home = _HOME_OF.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(import_module(home, __name__), name)
        globals()[name] = value  # the next lookup is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(__all__))


__all__ = [
    "BackgroundCollector",
    "Collector",
    "ConfigError",
    "CycleInProgressError",
    "CycleSummary",
    "Database",
    "ExportReport",
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
    "SiteRow",
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
    "export_sites",
    "get_site",
    "get_site_stats",
    "import_sites",
    "list_sites",
    "refresh_stats",
    "remove_site",
    "site_rows",
    "site_stats",
    "start_collector",
    "stats",
]
