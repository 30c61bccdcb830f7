"""uptimelab's exceptions.

Everything uptimelab raises on purpose derives from :class:`UptimelabError`, so a caller can catch
one class; the CLI turns each into one line and an exit code::

    UptimelabError
    ├── ConfigError          a setting breaks a rule (names the variable and the rule); exit 2
    ├── SiteError            a site argument is wrong; exit 2
    │   ├── InvalidURLError      a URL uptimelab will not ping (quoted in the message)
    │   ├── InvalidSiteFileError an import file with bad rows (nothing was written)
    │   └── UnknownSiteError     no site has that id or URL
    ├── StoreError           the database refused or could not be reached; exit 1
    │   └── MigrationError       a schema file changed after it was applied, or failed
    ├── OutputError          the system refused to write a report or an export file; exit 1
    ├── LocalStateError      the data directory cannot hold local state (spool, caches); exit 1
    └── CycleInProgressError a cycle is already running in this process; exit 1

A failed ping is *not* an exception: the probe returns a Ping whose ``error_category`` says why.
"""

from __future__ import annotations


class UptimelabError(Exception):
    """The root of uptimelab's own errors."""

    exit_code = 1


class ConfigError(UptimelabError, ValueError):
    """A configuration value breaks one of the rules."""

    exit_code = 2


class SiteError(UptimelabError, ValueError):
    """A site, a URL or a site file is not acceptable."""

    exit_code = 2


class InvalidURLError(SiteError):
    """A URL that uptimelab will not ping."""


class InvalidSiteFileError(SiteError):
    """An import file has invalid rows; nothing was written."""


class UnknownSiteError(SiteError, LookupError):
    """No site has the given id or URL."""


class StoreError(UptimelabError):
    """The database could not be reached or refused an operation."""


class MigrationError(StoreError):
    """A schema migration failed or an applied file was edited."""


class OutputError(UptimelabError):
    """The operating system refused to write an output file (the path itself was acceptable)."""


class LocalStateError(UptimelabError):
    """The data directory cannot hold the local state (a folder that cannot be made, a file
    that cannot be written): the environment, not the input."""


class CycleInProgressError(UptimelabError):
    """A monitoring cycle is already running in this process."""


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside ``exc`` and its nested groups, in order (``[exc]`` when it is not a
    group): trio's nurseries wrap every error in a group."""
    if not isinstance(exc, BaseExceptionGroup):
        return [exc]
    return [leaf for member in exc.exceptions for leaf in leaves(member)]


def lone_exception(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one exception inside ``group`` and its nested groups, or None when there are
    several."""
    found = leaves(group)
    return found[0] if len(found) == 1 else None
