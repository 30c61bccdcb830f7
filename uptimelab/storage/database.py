"""The database: which one (a URL or the embedded server), connections, and migrations.

With no URL configured uptimelab starts an embedded PostgreSQL (pgserver) in the per-user data
directory. Several uptimelab processes share it: pgserver counts the processes using a data
directory and the last one to leave stops the server.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import re
import subprocess
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from ..config import Settings
from ..domain.redaction import mask_url, reserved_in_password, scrub
from ..errors import ConfigError, MigrationError, StoreError

if TYPE_CHECKING:
    import sqlalchemy

CONNECT_TIMEOUT_S = 10
STATEMENT_TIMEOUT_MS = 300_000
_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]*)://")
_MIGRATION_LOCK = 0x75_70_74_69  # "upti": one migrator at a time per database


def sql_dir() -> Path:
    """The directory of numbered schema files: inside the installed wheel, or the repo's sql/."""
    packaged = Path(str(resources.files("uptimelab"))) / "sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "sql"


@dataclass
class Database:
    """A handle on one PostgreSQL database. Cheap to keep; opens connections when asked.

    ``url`` is a libpq URL or key=value conninfo (else ConfigError). For an embedded server
    ``server`` holds pgserver's handle, which keeps the server alive while this process uses it.
    """

    url: str = field(repr=False)  # shown masked by __repr__: it may carry a password
    embedded: bool = False
    server: Any = field(default=None, repr=False)
    _engine: sqlalchemy.Engine | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_database_url(self.url)

    def __repr__(self) -> str:
        return f"Database(url={self.masked_url!r}, embedded={self.embedded})"

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

    @contextlib.contextmanager
    def connect(
        self, *, autocommit: bool = False, timeout_ms: int | None = None
    ) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A new psycopg connection (rows as dicts), committed on success, closed after.

        ``timeout_ms`` bounds connecting and each statement (default: 10 s and 300 s).
        Raises StoreError when the database cannot be reached.
        """
        connect_s = CONNECT_TIMEOUT_S if timeout_ms is None else max(1, -(-timeout_ms // 1000))
        try:
            conn = psycopg.connect(
                self.url,
                autocommit=autocommit,
                connect_timeout=connect_s,
                # Bounded, so that a stuck server cannot hang a command forever; generous, since
                # the reference stats over a big history take seconds.
                options=f"-c statement_timeout={timeout_ms or STATEMENT_TIMEOUT_MS}",
                row_factory=dict_row,
            )
        except psycopg.OperationalError as exc:
            reason = scrub(_first_line(exc), self.url)
            raise StoreError(f"cannot connect to {self.masked_url}: {reason}") from exc
        with conn:
            yield conn

    @property
    def engine(self) -> sqlalchemy.Engine:
        """A SQLAlchemy engine on the same database (for pandas and SQLModel sessions)."""
        if self._engine is None:
            import sqlalchemy

            # libpq reads the URL (any of its forms: a socket URL, key=value pairs), as connect()
            self._engine = sqlalchemy.create_engine(
                "postgresql+psycopg://",
                connect_args=conninfo_to_dict(self.url),
                pool_pre_ping=True,
                pool_size=2,
                max_overflow=2,
            )
        return self._engine

    def migrate(self) -> list[str]:
        """Apply the ``sql/`` files not yet applied, in order. Returns the names applied now."""
        with self.connect() as conn:
            return migrate(conn)

    def schema_version(self) -> int:
        """The highest applied migration number (0 for an empty database)."""
        with self.connect() as conn:
            exists = conn.execute("SELECT to_regclass('schema_migrations') AS t").fetchone()
            if not exists or exists["t"] is None:
                return 0
            row = conn.execute(
                "SELECT coalesce(max(version), 0) AS v FROM schema_migrations"
            ).fetchone()
            return int(row["v"]) if row else 0

    def close(self) -> None:
        """Drop pooled connections. The embedded server stops when its last process exits."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def check_database_url(url: str) -> None:
    """Raise ConfigError (naming ``url`` masked) unless libpq can read it: a ``postgresql://`` or
    ``postgres://`` URL, or key=value pairs (``host=db dbname=uptime``)."""
    scheme = _SCHEME.match(url)
    if scheme and scheme.group(1).lower() not in ("postgresql", "postgres"):
        raise ConfigError(
            f"database URL {mask_url(url)!r}: the scheme must be postgresql:// or postgres:// "
            "(or give key=value pairs such as 'host=db dbname=uptime')"
        )
    reserved = reserved_in_password(url) if scheme else None
    if reserved is not None:
        raise ConfigError(
            f"database URL {mask_url(url)!r}: the password holds {reserved!r}; reserved "
            "characters in a password must be percent-encoded ('@' as %40, '/' as %2F, "
            "'?' as %3F, '#' as %23)"
        )
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        if not scheme and "=" not in url:
            # Text that is neither form may be anything, a password pasted by mistake among
            # them: it is not shown, nor is libpq's reading of it.
            raise ConfigError(
                "the database URL is neither a postgresql:// URL nor key=value pairs such as "
                "'host=db dbname=uptime' (not shown: it may hold a secret)"
            ) from None
        reason = scrub(_first_line(exc), url)
        raise ConfigError(f"database URL {mask_url(url)!r}: {reason}") from None


def migration_files() -> list[tuple[int, Path]]:
    """``(version, path)`` of every numbered ``.sql`` file, in order."""
    found = []
    for path in sorted(sql_dir().glob("*.sql")):
        match = re.match(r"^(\d+)_", path.name)
        if match:
            found.append((int(match.group(1)), path))
    return found


def migrate(conn: psycopg.Connection[dict[str, Any]]) -> list[str]:
    """Apply pending migrations on ``conn`` in one transaction; idempotent.

    Raises MigrationError when an applied file was edited since, or a file fails.
    """
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer     PRIMARY KEY,
                   name       text        NOT NULL,
                   checksum   text        NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied = {
            r["version"]: r
            for r in conn.execute("SELECT version, name, checksum FROM schema_migrations")
        }
        for version, path in migration_files():
            text = path.read_text(encoding="utf-8")
            checksum = hashlib.sha256(text.encode()).hexdigest()
            if version in applied:
                if applied[version]["checksum"] != checksum:
                    raise MigrationError(
                        f"sql/{path.name} changed after it was applied (checksum differs) to "
                        f"database {conn.info.dbname!r}: another version or checkout of uptimelab "
                        "migrated it. Use a database of this version (UPTIMELAB_DATABASE_URL, "
                        "or UPTIMELAB_DATA_DIR for the embedded one); to change the schema, "
                        "add a new numbered file instead of editing an applied one"
                    )
                continue
            try:
                conn.execute(text.encode())  # no parameters: several statements are allowed
            except psycopg.Error as exc:
                raise MigrationError(f"sql/{path.name} failed: {_first_line(exc)}") from exc
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (version, path.name, checksum),
            )
            applied_now.append(path.name)
    return applied_now


log = logging.getLogger("uptimelab.store")

_embedded_lock = threading.Lock()
_embedded: dict[Path, Any] = {}


def embedded_server(data_dir: Path) -> Any:
    """Start (or join) the embedded PostgreSQL whose data lives in ``data_dir/pgdata``."""
    with _embedded_lock:
        pgdata = (data_dir / "pgdata").resolve()
        if pgdata not in _embedded:
            pgdata.parent.mkdir(parents=True, exist_ok=True)
            try:
                with warnings.catch_warnings():
                    # pgserver asks platformdirs for a runtime dir at import; without
                    # XDG_RUNTIME_DIR that warns and falls back to /tmp, which is fine here.
                    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
                    import pgserver

                    _embedded[pgdata] = _start_embedded(pgserver, pgdata)
            except Exception as exc:  # pgserver raises plain subprocess/OS errors
                raise StoreError(
                    f"cannot start the embedded PostgreSQL in {pgdata}: {_first_line(exc)}"
                ) from exc
        return _embedded[pgdata]


EMBEDDED_START_ATTEMPTS = 3


def _start_embedded(pgserver: Any, pgdata: Path) -> Any:
    """pgserver's start, again after its fixed 10-s wait for ``pg_ctl start`` ran out: on a busy
    machine the server can be up (its log says ready) while pg_ctl has not said so in time, and
    the next attempt finds it running and joins it."""
    for attempt in range(1, EMBEDDED_START_ATTEMPTS + 1):
        try:
            return pgserver.get_server(pgdata, cleanup_mode="stop")
        except subprocess.TimeoutExpired:
            if attempt == EMBEDDED_START_ATTEMPTS:
                raise
            # pgserver registered the handle before starting: get_server would hand it back,
            # never started, and its exit hook would run for nothing.
            stale = pgserver.PostgresServer._instances.pop(pgdata, None)
            if stale is not None:
                atexit.unregister(stale._cleanup)
            log.warning("the embedded PostgreSQL was slow to start; trying again (%d)", attempt)
    raise AssertionError("unreachable")


def connect(
    url: str | None = None, *, settings: Settings | None = None, migrate: bool = True
) -> Database:
    """Open uptimelab's database.

    ``url`` (else ``UPTIMELAB_DATABASE_URL``, else ``DATABASE_URL``) names a PostgreSQL server; with
    none, the embedded server in the data directory is started or joined. The schema is brought up
    to date unless ``migrate=False``. Raises ConfigError for a URL libpq cannot read, StoreError
    when the database cannot be reached.
    """
    settings = settings or Settings.load(database_url=url)
    url = url or settings.database_url
    if url:
        db = Database(url=url)
    else:
        server = embedded_server(settings.data_dir)
        db = Database(url=server.get_uri(), embedded=True, server=server)
    if migrate:
        db.migrate()
    return db


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


_default_lock = threading.Lock()
_default: Database | None = None


def default_db(db: Database | None = None) -> Database:
    """``db`` itself, or the process's default database (connected and migrated once)."""
    global _default
    if db is not None:
        return db
    with _default_lock:
        if _default is None:
            _default = connect()
        return _default
