"""The schema: migrations, the contract's tables, partitions, and models that match."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlmodel import SQLModel

import uptimelab.storage.database as dbmod
from uptimelab.domain.redaction import mask_url
from uptimelab.errors import MigrationError
from uptimelab.storage.database import Database, connect, migration_files
from uptimelab.storage.models import MonitoringCycle, Ping, PingRollupHourly, Site, SiteStats


@pytest.fixture
def fresh_url(create_database: Callable[[], str]) -> str:
    return create_database()


def test_init_is_idempotent_and_records_versions_with_checksums(fresh_url: str) -> None:
    db = connect(fresh_url, migrate=False)
    first = db.migrate()
    assert first == [p.name for _, p in migration_files()]
    assert db.migrate() == []
    with db.connect() as conn:
        rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    assert len(rows) == len(first)
    assert all(len(r["checksum"]) == 64 for r in rows)


def test_an_edited_applied_file_is_an_error(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql = tmp_path / "sql"
    sql.mkdir()
    for _, path in migration_files():
        (sql / path.name).write_text(path.read_text())
    monkeypatch.setattr(dbmod, "sql_dir", lambda: sql)
    db = connect(fresh_url)
    first = sorted(sql.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match=f"{first.name} changed after it was applied"):
        db.migrate()


def test_mask_url_hides_the_password_only() -> None:
    assert mask_url("postgresql://bob:secret@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert mask_url("postgresql://db/x") == "postgresql://db/x"


def _columns(
    conn: psycopg.Connection[dict[str, object]], table: str
) -> dict[str, tuple[str, bool]]:
    rows = conn.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_name = %s AND table_schema = current_schema()",
        (table,),
    ).fetchall()
    return {str(r["column_name"]): (str(r["data_type"]), r["is_nullable"] == "YES") for r in rows}


_PG_TYPES = {
    "UUID": "uuid",
    "VARCHAR": "text",
    "AUTOSTRING": "text",
    "BOOLEAN": "boolean",
    "INTEGER": "integer",
    "BIGINTEGER": "bigint",
    "FLOAT": "real",
    "DATETIME": "timestamp with time zone",
    "JSONB": "jsonb",
    "ARRAY": "ARRAY",  # information_schema's name for any array (sites.notify is text[])
}


@pytest.mark.parametrize("model", [Site, Ping, MonitoringCycle, SiteStats, PingRollupHourly])
def test_models_and_database_do_not_drift_apart(db: Database, model: type[SQLModel]) -> None:
    table = model.__table__  # type: ignore[attr-defined]
    with db.connect() as conn:
        actual = _columns(conn, table.name)
    expected = {}
    for column in table.columns:
        kind = _PG_TYPES[type(column.type).__name__.upper()]
        expected[column.name] = kind
    assert {k: v[0] for k, v in actual.items()} == expected
    for column in table.columns:
        if column.primary_key:
            assert actual[column.name][1] is False


def test_the_contract_keys(db: Database) -> None:
    with db.connect() as conn:
        pk = conn.execute(
            "SELECT array_agg(a.attname ORDER BY array_position(i.indkey, a.attnum)) AS cols "
            "FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'pings'::regclass AND i.indisprimary"
        ).fetchone()
        unique = conn.execute(
            "SELECT count(*) AS n FROM pg_constraint WHERE conrelid = 'site_stats'::regclass "
            "AND contype = 'u'"
        ).fetchone()
    assert pk is not None
    assert pk["cols"] == ["site_id", "checked_at", "location"]
    assert unique is not None
    assert unique["n"] == 1


def _insert_ping(
    conn: psycopg.Connection[dict[str, object]], site_id: uuid.UUID, at: dt.datetime
) -> None:
    conn.execute(
        "INSERT INTO pings (site_id, checked_at, status, status_code, response_time_ms, "
        "location, region_code) VALUES (%s, %s, 'up', 200, 12, 'here', 'XX')",
        (site_id, at),
    )


def test_a_ping_at_any_time_is_stored_and_its_day_partition_later_adopts_it(
    db: Database,
) -> None:
    long_ago = dt.datetime(2001, 2, 3, 4, 5, tzinfo=dt.UTC)
    with db.connect() as conn:
        site = conn.execute("INSERT INTO sites (url) VALUES ('http://a.example/') RETURNING id")
        row = site.fetchone()
        assert row is not None
        site_id = row["id"]
        _insert_ping(conn, site_id, long_ago)
        _insert_ping(conn, site_id, long_ago + dt.timedelta(hours=1))
        _insert_ping(conn, site_id, long_ago + dt.timedelta(days=1))
    with db.connect() as conn:
        in_default = conn.execute("SELECT count(*) AS n FROM pings_default").fetchone()
        assert in_default is not None
        assert in_default["n"] == 3
        created = conn.execute("SELECT uptimelab_ensure_pings_partition('2001-02-03')").fetchone()
        assert created is not None
        assert list(created.values()) == [True]
        again = conn.execute("SELECT uptimelab_ensure_pings_partition('2001-02-03')").fetchone()
        assert again is not None
        assert list(again.values()) == [False]
    with db.connect() as conn:
        moved = conn.execute("SELECT count(*) AS n FROM pings_20010203").fetchone()
        left = conn.execute("SELECT count(*) AS n FROM pings_default").fetchone()
        total = conn.execute("SELECT count(*) AS n FROM pings").fetchone()
    assert moved is not None
    assert moved["n"] == 2
    assert left is not None
    assert left["n"] == 1
    assert total is not None
    assert total["n"] == 3


def test_the_same_ping_cannot_be_stored_twice(db: Database) -> None:
    at = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    with db.connect() as conn:
        row = conn.execute(
            "INSERT INTO sites (url) VALUES ('http://a.example/') RETURNING id"
        ).fetchone()
        assert row is not None
        _insert_ping(conn, row["id"], at)
    with db.connect() as conn, pytest.raises(psycopg.errors.UniqueViolation):
        _insert_ping(conn, row["id"], at)


def test_an_up_ping_cannot_carry_an_error_category(db: Database) -> None:
    with db.connect() as conn:
        row = conn.execute(
            "INSERT INTO sites (url) VALUES ('http://a.example/') RETURNING id"
        ).fetchone()
        assert row is not None
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO pings (site_id, checked_at, status, error_category, location, "
                "region_code) VALUES (%s, now(), 'up', 'dns', 'x', 'XX')",
                (row["id"],),
            )


@pytest.mark.slow
def test_processes_share_the_embedded_database(tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in ("UPTIMELAB_DATABASE_URL", "DATABASE_URL")
    }
    env["UPTIMELAB_DATA_DIR"] = str(tmp_path / "data")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            # Holds the embedded server open until its stdin closes.
            "import sys, uptimelab as ul; print(ul.connect().url, flush=True); sys.stdin.read()",
        ],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        url = holder.stdout.readline().strip()
        other = subprocess.run(
            [sys.executable, "-m", "uptimelab", "sites", "add", "https://shared.example/"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert other.returncode == 0, other.stderr
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT url FROM sites").fetchone()
        assert row == ("https://shared.example/",)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(60)
        assert holder.stdout is not None
        holder.stdout.close()


def _insert_raw(db: Database, urls: dict[str, str]) -> dict[str, uuid.UUID]:
    """Rows as an uptimelab before the URL rules stored them: SQL, no normalisation."""
    ids = {}
    with db.connect() as conn:
        for key, url in urls.items():
            row = conn.execute(
                "INSERT INTO sites (url, name) VALUES (%s, %s) RETURNING id", (url, key)
            ).fetchone()
            assert row is not None
            ids[key] = row["id"]
    return ids


def _stored(db: Database) -> dict[uuid.UUID, tuple[str, dt.datetime]]:
    with db.connect() as conn:
        rows = conn.execute("SELECT id, url, updated_at FROM sites").fetchall()
    return {r["id"]: (r["url"], r["updated_at"]) for r in rows}


def test_db_init_normalises_stored_urls_once_and_leaves_collisions_and_overlong_ones_alone(
    db: Database,
) -> None:
    from uptimelab.ops.validate import validate
    from uptimelab.storage.site_urls import unnormalised_sites

    from .test_cli import run

    long_path = "é" * 1000  # 1 021 characters stored; 6 000 once percent-encoded
    ids = _insert_raw(
        db,
        {
            "upper": "HTTPS://Example.ORG/Path",
            "accent": "https://example.org/café",
            "idna": "https://bücher.de/",
            "port": "http://example.net:80/",
            "twin1": "https://DUP.example/",
            "twin2": "https://dup.example:443/",
            "holder": "https://kept.example/",
            "shadow": "https://KEPT.example/",
            "long": f"https://long.example/{long_path}",
            "fine": "https://fine.example/x?y=1",
        },
    )
    before = _stored(db)
    first = run("db", "init")
    assert first.returncode == 0, first.stderr
    assert "normalised 4 stored site URL(s)" in first.stdout
    assert "left 4 site URL(s) as they are (3 would collide, 1 too long, 0 break" in first.stdout
    after = _stored(db)
    urls = {key: after[i][0] for key, i in ids.items()}
    assert urls == {
        "upper": "https://example.org/Path",
        "accent": "https://example.org/caf%C3%A9",
        "idna": "https://xn--bcher-kva.de/",
        "port": "http://example.net/",
        "twin1": "https://DUP.example/",
        "twin2": "https://dup.example:443/",
        "holder": "https://kept.example/",
        "shadow": "https://KEPT.example/",
        "long": f"https://long.example/{long_path}",
        "fine": "https://fine.example/x?y=1",
    }
    for key in ("twin1", "twin2", "holder", "shadow", "long", "fine"):
        assert after[ids[key]] == before[ids[key]], key  # not written at all
    assert after[ids["upper"]][1] > before[ids["upper"]][1]

    again = run("db", "init")
    assert again.returncode == 0, again.stderr
    assert "normalised" not in again.stdout  # idempotent: nothing left to change
    assert _stored(db) == after

    left = {s.id: s.reason for s in unnormalised_sites(db)}
    assert set(left) == {ids[k] for k in ("twin1", "twin2", "shadow", "long")}
    assert str(ids["twin2"]) in left[ids["twin1"]]
    assert str(ids["holder"]) in left[ids["shadow"]]
    assert "longer than 2048" in left[ids["long"]]
    database = next(c for c in validate(db=db).checks if c.name == "database")
    assert not database.passed
    assert "4 stored site URL(s) not in the normal form" in database.detail
    assert str(min(left)) in database.detail  # listed by id


def test_normalising_stored_urls_that_need_nothing_writes_nothing(db: Database) -> None:
    from uptimelab.storage.site_urls import init_database

    with db.connect() as conn:
        conn.execute(
            "INSERT INTO sites (url) SELECT 'https://site' || i || '.example.com/health?x=' || i "
            "FROM generate_series(1, 10000) AS i"
        )
    before = _stored(db)
    applied, report = init_database(db)
    assert (applied, report.changed, report.left_alone) == ([], 0, [])
    assert _stored(db) == before


def test_each_test_starts_with_every_table_empty_but_the_singletons(db: Database) -> None:
    """A table the fixture does not empty carries one test's rows into the next (incidents,
    pruned days): the list in conftest names every table of the schema."""
    from .conftest import KEPT_TABLES, TABLES

    with db.connect() as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
        ).fetchall()
    assert {r["relname"] for r in rows} == set(TABLES) | set(KEPT_TABLES)


def test_an_embedded_server_slow_to_say_it_started_is_joined_on_the_next_try(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pgserver gives pg_ctl 10 s to say the server started; on a busy machine the server can be
    up (its log says ready) when that runs out. The next attempt finds it running and joins it."""
    import pgserver
    from pgserver import postgres_server

    real = postgres_server.pg_ctl  # type: ignore[attr-defined]
    slow: list[list[str]] = []

    def pg_ctl(args: list[str], **kwargs: Any) -> str:
        out: str = real(args, **kwargs)
        if "start" in args and not slow:
            slow.append(args)
            raise subprocess.TimeoutExpired(args, 10)
        return out

    monkeypatch.setattr(postgres_server, "pg_ctl", pg_ctl)
    parent = Path(tempfile.mkdtemp(prefix="uptimelab-slow-pg-"))
    parent.chmod(0o755)  # pgserver runs PostgreSQL as its own user when the tests run as root
    try:
        server = dbmod.embedded_server(parent)
        try:
            assert slow  # the first start did time out
            with psycopg.connect(server.get_uri()) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            assert (
                pgserver.PostgresServer._instances[  # type: ignore[attr-defined]
                    (parent / "pgdata").resolve()
                ]
                is server
            )
        finally:
            dbmod._embedded.pop((parent / "pgdata").resolve(), None)
            server.cleanup()
    finally:
        pid_file = parent / "pgdata" / "postmaster.pid"
        if pid_file.exists():  # a failure above left it running: shut it down at once
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
        shutil.rmtree(parent, ignore_errors=True)


def test_the_embedded_server_stops_cleanly_at_exit_after_the_data_dir_was_made_private() -> None:
    """Run as root, pgserver runs PostgreSQL as its own user, which must still reach pgdata at
    exit (`make demo` as root ended with pg_ctl's 'Permission denied' and a kill)."""
    parent = Path(tempfile.mkdtemp(prefix="uptimelab-private-"))
    parent.chmod(0o755)
    data_dir = parent / "data"
    env = {
        k: v for k, v in os.environ.items() if k not in ("UPTIMELAB_DATABASE_URL", "DATABASE_URL")
    }
    env["UPTIMELAB_DATA_DIR"] = str(data_dir)
    try:
        for command in (["sites", "add", "http://127.0.0.1:9/"], ["collect", "--once"]):
            done = subprocess.run(
                [sys.executable, "-m", "uptimelab", *command],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
        assert "Permission denied" not in done.stderr
        assert "killing it" not in done.stderr
        assert not (data_dir / "pgdata" / "postmaster.pid").exists()  # stopped, not left
        assert stat_mode(data_dir) & 0o066 == 0  # nobody else lists or writes it
    finally:
        pid_file = data_dir / "pgdata" / "postmaster.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
        shutil.rmtree(parent, ignore_errors=True)


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777
