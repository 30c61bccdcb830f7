"""Fixtures: a fresh PostgreSQL database for the run, clean tables for each test, and the zoo.

The server is ``UPTIMELAB_TEST_DATABASE_URL`` where set (CI sets it to the machine's server),
else an embedded PostgreSQL that this run starts in a temporary directory. Either way the run
creates its own database and drops it at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings

from uptimelab.concurrency import trio_portal
from uptimelab.storage.database import Database, connect
from uptimelab.testing.zoo import Zoo, ZooSpec, open_zoo

from .db_snapshot import empty_tables

T = TypeVar("T")

# In CI the property tests are deterministic (the same examples every run, none kept from an
# earlier run) and have no per-example deadline (the machine is shared and its load varies);
# on a developer's machine they explore at random and remember what failed.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

# Every table a test may fill (a test starts with them empty); the singletons (ping_rollup_state,
# uptime_settings, uptimelab_identity) and schema_migrations stay. test_db checks the list.
TABLES = (
    "site_stats",
    "ping_rollup_hourly",
    "ping_rollup_daily",
    "ping_rollup_dirty",
    "pings",
    "pings_pruned_days",
    "monitoring_cycles",
    "sites",
    "collectors",
    "collector_leases",
    "incidents",
    "incident_series",
    "incident_flapping",
    "notifications",
    "maintenance",
    "maintenance_expanded",
    "maintenance_occurrences",
    "notification_losses",
    "collector_uptime_settings",
)
KEPT_TABLES = (
    "ping_rollup_state",
    "uptime_settings",
    "uptimelab_identity",
    "schema_migrations",
    "sites_version",  # a number that only moves on: a test reads it before and after
)


def database_url(server_url: str, name: str) -> str:
    """``server_url`` pointing at database ``name`` instead."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A URL of a PostgreSQL server this run may create databases on."""
    given = os.environ.get("UPTIMELAB_TEST_DATABASE_URL")
    if given:
        yield given
        return
    import pgserver

    # Not under pytest's basetemp: that is private to root, and pgserver runs PostgreSQL as an
    # unprivileged user (when run as root) that must reach the data directory to stop it.
    parent = Path(tempfile.mkdtemp(prefix="uptimelab-test-pg-"))
    parent.chmod(0o755)
    server = pgserver.get_server(parent / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="session")
def create_database(server_url: str) -> Iterator[object]:
    """A factory of fresh databases on the server; all of them are dropped at the end."""
    made: list[str] = []

    def create(prefix: str = "uptimelab_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return database_url(server_url, name)

    yield create
    with psycopg.connect(server_url, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def db_url(create_database: object) -> str:
    """The run's own database, with the schema applied."""
    url: str = create_database()  # type: ignore[operator]
    connect(url).close()
    return url


@pytest.fixture
def db(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Database]:
    """The run's database with empty tables; the environment points the CLI at it too."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        empty_tables(conn, TABLES)  # as TRUNCATE ... CASCADE leaves them, in milliseconds
        # The recorded uptime policy changes only when one is given explicitly: back to the
        # defaults, so that one test's policy is not the next one's.
        conn.execute(
            "UPDATE uptime_settings SET policy = DEFAULT, exclude_maintenance = DEFAULT, "
            "changed_at = NULL, changed_by = NULL"
        )
    monkeypatch.setenv("UPTIMELAB_DATABASE_URL", db_url)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("UPTIMELAB_DATA_DIR", str(tmp_path / "data"))
    database = Database(url=db_url)
    yield database
    database.close()


@pytest.fixture
async def zoo() -> AsyncIterator[Zoo]:
    """One target of every behaviour, served in the test's own trio run."""
    async with open_zoo(ZooSpec.every_failure(duration_s=120)) as z:
        yield z


@contextmanager
def in_trio_thread(open_context: AbstractAsyncContextManager[T]) -> Iterator[T]:
    """Enters an async context manager on trio in a thread of its own (the package's one thread
    bridge), for tests that are not async (a zoo, a server); leaving the ``with`` exits it there."""
    with (
        trio_portal("uptimelab-test") as portal,
        portal.wrap_async_context_manager(open_context) as value,
    ):
        yield value


def zoo_in_thread(spec: ZooSpec) -> AbstractContextManager[Zoo]:
    """A zoo served from a background thread."""
    return in_trio_thread(open_zoo(spec))
