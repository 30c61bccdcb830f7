"""Local state that belongs to one database: the spool, the site cache, the published state.

Two collectors on one box may write to two databases; nothing one keeps on disk may reach the
other. So the data directory holds one folder per database, named by the database's identity (a
random id written once by ``sql/004_database_identity.sql``)::

    <data dir>/databases/<identity>/spool/            segments of pings not stored yet
    <data dir>/databases/<identity>/sites-cache.json   the active sites, to probe while it is down
    <data dir>/databases/<identity>/collector-state.json
    <data dir>/databases/by-url/<sha256 of the URL without its password>   -> the identity

The identity is learnt whenever the database answers and remembered under its (password-free)
URL, so that a collector started while its database is down still finds its own spool and
sites. Every file is private: 0600 in 0700 directories (site URLs may carry passwords).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from ..domain.redaction import mask_url
from ..domain.sites import ACTIVE_SITE_FIELDS, ActiveSite
from ..errors import LocalStateError, StoreError

DATABASES = "databases"
_IDENTITY = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
TRAVERSE = 0o011  # search (x) for group and others


@dataclass(frozen=True)
class LocalState:
    """The folder of one database's local state."""

    directory: Path
    identity: str

    @property
    def spool_dir(self) -> Path:
        return self.directory / "spool"

    @property
    def sites_cache(self) -> Path:
        return self.directory / "sites-cache.json"

    @property
    def collector_state(self) -> Path:
        return self.directory / "collector-state.json"


def read_identity(conn: Any) -> str:
    """The identity of the database behind ``conn`` (a psycopg connection, any row factory).

    Raises StoreError when the schema has none (``uptimelab db init`` writes it)."""
    row = conn.execute("SELECT id::text FROM uptimelab_identity").fetchone()
    if row is None:
        raise StoreError("the database has no uptimelab identity: run `uptimelab db init`")
    value = row[0] if isinstance(row, tuple) else next(iter(row.values()))
    return str(value)


def local_state(data_dir: Path, identity: str) -> LocalState:
    """The local state of the database with ``identity``, its folder made private."""
    if not _IDENTITY.fullmatch(identity):
        raise StoreError(f"not a database identity: {identity!r}")
    directory = data_dir / DATABASES / identity
    private_dir(directory, up_to=data_dir)
    return LocalState(directory, identity)


def remember(data_dir: Path, url: str, identity: str) -> LocalState:
    """Remember that ``url`` leads to the database with ``identity``; its local state."""
    state = local_state(data_dir, identity)
    link = _url_key(data_dir, url)
    with contextlib.suppress(OSError):
        if link.read_text().strip() == identity:
            return state
    private_dir(link.parent, up_to=data_dir)
    write_private(link, identity.encode())
    return state


def remembered(data_dir: Path, url: str) -> LocalState | None:
    """The local state last seen for ``url``, or None when this URL was never reached."""
    try:
        identity = _url_key(data_dir, url).read_text().strip()
    except OSError:
        return None
    return local_state(data_dir, identity) if _IDENTITY.fullmatch(identity) else None


def find_local_state(data_dir: Path, url: str, *, timeout_ms: int) -> LocalState | None:
    """The local state of the database at ``url``: by its identity when it answers within
    ``timeout_ms``, else the one remembered for this URL; None when neither is known (a
    database never reached from this data directory, or one without the schema)."""
    from .database import Database

    try:
        with Database(url=url).connect(timeout_ms=timeout_ms) as conn:
            return remember(data_dir, url, read_identity(conn))
    except (StoreError, psycopg.Error):
        return remembered(data_dir, url)


def _url_key(data_dir: Path, url: str) -> Path:
    # Keyed by the URL without its password: a changed password is the same database.
    digest = hashlib.sha256(mask_url(url).encode()).hexdigest()[:32]
    return data_dir / DATABASES / "by-url" / digest


def save_sites(local: LocalState, sites: list[ActiveSite]) -> None:
    """Keep the active sites of this database on disk (private: URLs may carry passwords)."""
    write_private(local.sites_cache, _sites_json(sites))


def _sites_json(sites: list[ActiveSite]) -> Iterator[bytes]:
    # A JSON array written site by site: built whole, it took about 1.1 KB a site at once
    # (100 000 sites: a peak of 108 MB on top of the sites themselves).
    encode = json.JSONEncoder(default=str).encode
    for k, site in enumerate(sites):
        fields = {name: getattr(site, name) for name in ACTIVE_SITE_FIELDS}
        yield (b"," if k else b"[") + encode(fields).encode()
    yield b"]" if sites else b"[]"


def load_sites(local: LocalState) -> list[ActiveSite] | None:
    """The active sites last kept for this database; None when there are none (or unreadable)."""
    try:
        raw = json.loads(local.sites_cache.read_text())
        fields = [{k: r[k] for k in ACTIVE_SITE_FIELDS if k in r} for r in raw]
        return [ActiveSite(**(f | {"id": uuid.UUID(f["id"])})) for f in fields]
    except (OSError, ValueError, TypeError, KeyError):
        return None


def private_dir(directory: Path, *, up_to: Path | None = None) -> None:
    """Make ``directory`` 0700, and so every folder from ``up_to`` (included) down to it; missing
    ones are made. Raises LocalStateError when the system refuses."""
    chain = [directory]
    if up_to is not None and directory.is_relative_to(up_to):
        chain = [up_to, *[p for p in reversed(directory.parents) if p.is_relative_to(up_to)]]
        chain = [*dict.fromkeys([*chain, directory])]
    try:
        for folder in chain:
            folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
            mode = folder.stat().st_mode & 0o777
            # The data directory itself keeps a search bit others were given (never read or
            # write): run as root, pgserver runs the embedded PostgreSQL in data_dir/pgdata as its
            # own user and opens the way there; without it that user's `pg_ctl stop` cannot reach
            # pgdata at exit. Listing stays closed, and what is inside stays 0700/0600.
            wanted = PRIVATE_DIR | (mode & TRAVERSE if folder == up_to else 0)
            if mode != wanted:
                folder.chmod(wanted)
    except OSError as exc:
        where = exc.filename or directory
        raise LocalStateError(
            f"cannot use the data directory {where}: {exc.strerror or exc}"
        ) from exc


def write_private(path: Path, data: bytes | Iterable[bytes], *, durable: bool = False) -> None:
    """Write ``data`` (bytes, or chunks of them) to ``path`` atomically (a temporary file
    renamed over it), mode 0600.

    With ``durable`` the file and its directory are fsynced, so it is whole or absent after a
    crash. Raises OSError."""
    # Unique per write: collectors of one database in one process share this folder too.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.part")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, bytes):
                handle.write(data)
            else:
                handle.writelines(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if durable:
        fsync_directory(path.parent)


def stale_partials(directory: Path) -> list[Path]:
    """Temporary files that :func:`write_private` left in ``directory`` when its process died
    (those of live processes, such as another collector's, are not stale)."""
    stale = []
    for part in directory.glob(".*.part"):
        pid = part.name.rsplit(".", 3)[-3]
        if not pid.isdigit() or not _alive(int(pid)):
            stale.append(part)
    return stale


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive(lock_file: Path, *, wait: bool) -> Iterator[bool]:
    """An advisory lock on ``lock_file`` between processes (flock). Yields whether it was taken:
    with ``wait=False`` another holder means False at once."""
    import fcntl

    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
