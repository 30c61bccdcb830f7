"""Bad input gets one line and an exit code, never a traceback, and nothing half-written: site
files, database URLs, the benchmarks' scratch databases, and the API's broken requests."""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import psycopg
import pytest
import trio
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

import uptimelab as ul
from uptimelab.domain.sites import COLUMNS, IGNORED_COLUMNS
from uptimelab.errors import ConfigError, SiteError, StoreError
from uptimelab.storage.database import Database
from uptimelab.testing.bench import scratch_database

from .test_api import TOKEN, load_settings, serving

SECRET = "s3cr3t-pw"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "uptimelab", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def assert_one_error_line(out: subprocess.CompletedProcess[str], code: int) -> str:
    """The command failed with ``code`` and said why in one line: ``error: ...``."""
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: "), out.stderr
    assert out.returncode == code, out.stderr
    return lines[0]


def site_count(db: Database) -> int:
    with db.connect() as conn:
        row = conn.execute("SELECT count(*) AS n FROM sites").fetchone()
    assert row is not None
    return int(row["n"])


# -- site files ----------------------------------------------------------------------------------

GOOD = "http://good.example/"
DEEP = 100_000


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        pytest.param(
            "more.csv",
            f"url,name\n{GOOD},g\nhttp://a.example/,a,extra\n".encode(),
            "row 2 (line 3) has 3 fields but the header has 2",
            id="csv-row-longer-than-header",
        ),
        pytest.param(
            "keys.yaml",
            f"- url: {GOOD}\n- 1: 2\n".encode(),
            "row 2: unknown column 1 (int, not text)",
            id="yaml-number-as-column",
        ),
        pytest.param(
            "latin1.csv",
            f"url\n{GOOD}\nhttp://caf".encode() + b"\xe9.example/\n",
            "not UTF-8 (byte 0xe9 on line 3)",
            id="not-utf8",
        ),
        pytest.param(
            "deep.json",
            b"[" * DEEP + b"]" * DEEP,
            "not valid json: nested too deeply",
            id="json-deep",
        ),
        pytest.param(
            "deep.yaml",
            b"[" * DEEP + b"]" * DEEP,
            "not valid yaml: nested too deeply",
            id="yaml-deep",
        ),
        pytest.param(
            "timeout.json",
            json.dumps(
                [{"url": GOOD}, {"url": "http://a.example/", "timeout_ms": 99999999999}]
            ).encode(),
            "row 2: timeout_ms must be from 1 to 86400000",
            id="timeout-ms-out-of-range",
        ),
        pytest.param(
            "redirects.json",
            json.dumps(
                [{"url": GOOD}, {"url": "http://a.example/", "max_redirects": 10**12}]
            ).encode(),
            "row 2: max_redirects must be from 0 to 50",
            id="max-redirects-out-of-range",
        ),
        pytest.param(
            "unknown.csv",
            b"adress\nhttp://a.example/\n",
            "row 1: unknown column 'adress' (the columns are: name, url,",
            id="unknown-column-named",
        ),
        pytest.param(
            "twice.csv",
            f"url,url\n{GOOD},http://b.example/\n".encode(),
            "column 'url' appears twice in the header",
            id="csv-column-twice",
        ),
        pytest.param(
            "dup.csv",
            f"url\n{GOOD}\nhttp://a.example/\nHTTP://GOOD.example:80\n".encode(),
            f"row 3: url '{GOOD}' is also row 1",
            id="same-url-twice-after-normalisation",
        ),
        pytest.param(
            "nul.json",
            json.dumps([{"url": GOOD}, {"url": "http://a.example/", "name": "a\x00b"}]).encode(),
            "row 2: name must be text without control characters",
            id="nul-in-name",
        ),
    ],
)
def test_a_bad_site_file_is_one_error_line_and_nothing_is_written(
    db: Database, tmp_path: Path, name: str, content: bytes, said: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    out = run("sites", "import", str(path))
    line = assert_one_error_line(out, 2)
    assert said in line
    assert "Field required" not in line
    assert site_count(db) == 0


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("bom.csv", b"\xef\xbb\xbfurl,name\nhttp://a.example/,a\n", id="utf8-bom"),
        pytest.param("semi.csv", b"url;name\nhttp://a.example/;a\n", id="semicolons"),
        pytest.param("tab.csv", b"url\tname\nhttp://a.example/\ta\n", id="tabs"),
        pytest.param(
            "bom.json", b'\xef\xbb\xbf[{"url": "http://a.example/", "name": "a"}]', id="json-bom"
        ),
    ],
)
def test_a_site_file_with_a_bom_or_another_delimiter_is_read(
    db: Database, tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    report = ul.import_sites(path, db=db)
    assert report.added == 1
    assert [(s.url, s.name) for s in ul.list_sites(db=db)] == [("http://a.example/", "a")]


def test_with_skip_invalid_a_duplicate_url_is_reported_and_the_first_row_kept(
    db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("url,name\nhttp://a.example/,first\nhttp://A.example:80/,second\n")
    report = ul.import_sites(path, skip_invalid=True, db=db)
    assert (report.added, report.invalid) == (1, [(2, "url 'http://a.example/' is also row 1")])
    assert [s.name for s in ul.list_sites(db=db)] == ["first"]


# Anything a YAML or JSON file can hold in a row: keys that are columns or not (or not text),
# values of every type, URLs that are nearly right.
_URLS = st.one_of(
    st.text(max_size=30),
    st.builds(lambda s: "http://" + s, st.text(max_size=30)),
    st.builds(lambda h, p: f"https://{h}.example/{p}", st.text(min_size=1, max_size=8), st.text()),
    # valid, and new to the database, so that the other values are what is tested
    st.builds(lambda u, p: f"http://s{u.hex[:12]}.example/{p}", st.uuids(), st.text(max_size=8)),
)
# Integers at the edges of PostgreSQL's integer (int4) and bigint, and around zero.
_INTS = st.one_of(st.integers(), st.sampled_from([-1, 0, 1, 2**31 - 1, 2**31, 2**63]))
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    _INTS,
    st.floats(),
    st.text(max_size=20),
    _URLS,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_KEYS = st.one_of(st.sampled_from(COLUMNS + IGNORED_COLUMNS), st.text(max_size=8), st.integers())
_ROWS = st.lists(
    st.one_of(
        st.fixed_dictionaries({"url": _URLS}, optional={"name": _VALUES, "timeout_ms": _VALUES}),
        st.dictionaries(_KEYS, _VALUES, max_size=4),
    ),
    max_size=4,
)
_PROPERTY = settings(
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_PROPERTY
@given(rows=_ROWS, format=st.sampled_from(["yaml", "json", "csv"]))
def test_importing_arbitrary_rows_writes_all_or_raises_only_our_errors(
    db: Database, tmp_path: Path, rows: list[dict[Any, Any]], format: str
) -> None:
    path = tmp_path / f"sites.{format}"
    if format == "yaml":
        path.write_text(yaml.safe_dump(rows), encoding="utf-8")
    elif format == "json":
        path.write_text(json.dumps({"sites": rows}), encoding="utf-8")
    else:
        columns = list(dict.fromkeys(str(k) for row in rows for k in row))
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(columns)
            for row in rows:
                by_name = {str(k): v for k, v in row.items()}
                writer.writerow(["" if by_name.get(c) is None else by_name[c] for c in columns])
    before = site_count(db)
    try:
        report = ul.import_sites(path, db=db)
    except SiteError:  # bad input, exit 2: never a StoreError from the database refusing a value
        assert site_count(db) == before  # nothing half-written
    else:
        assert site_count(db) == before + report.added


@_PROPERTY
@given(url=_URLS, name=st.none() | st.text(max_size=10), timeout_ms=st.none() | _INTS)
def test_adding_an_arbitrary_url_stores_its_normal_form_or_raises_only_our_errors(
    db: Database, url: str, name: str | None, timeout_ms: int | None
) -> None:
    try:
        site = ul.add_site(url, name=name, timeout_ms=timeout_ms, db=db)
    except SiteError:  # bad input, exit 2: never a StoreError from the database refusing a value
        return
    assert ul.get_site(url, db=db).id == site.id


# -- database URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("mysql://x/y", "the scheme must be postgresql:// or postgres://"),
        ("not a url", "neither a postgresql:// URL nor key=value pairs"),
        (f"postgresql://u:{SECRET}@[::1/x", 'looking for matching "]"'),
        (f"postgresql://h/d?foo=bar&password={SECRET}", 'invalid URI query parameter: "foo"'),
        # Text that is neither form is not shown: it may be a pasted password.
        (SECRET, "not shown: it may hold a secret"),
        (f"host=127.0.0.1 password='{SECRET}", "unterminated quoted string"),
    ],
)
@pytest.mark.parametrize("given_as", ["environment", "option"])
def test_a_database_url_libpq_cannot_read_is_a_config_error(
    tmp_path: Path, url: str, said: str, given_as: str
) -> None:
    env = {"UPTIMELAB_DATA_DIR": str(tmp_path / "data")}
    if given_as == "environment":
        out = run("sites", "list", env=env | {"UPTIMELAB_DATABASE_URL": url})
    else:
        out = run("--database-url", url, "sites", "list", env=env)
    line = assert_one_error_line(out, 2)
    assert line.startswith(("error: database URL '", "error: the database URL is neither"))
    assert said in line
    assert SECRET not in line
    with pytest.raises(ConfigError):
        Database(url=url)


def test_an_unreachable_database_is_an_environment_failure(tmp_path: Path) -> None:
    out = run(
        "sites",
        "list",
        env={
            "UPTIMELAB_DATABASE_URL": f"postgresql://app:{SECRET}@127.0.0.1:1/none",
            "UPTIMELAB_DATA_DIR": str(tmp_path / "data"),
        },
    )
    line = assert_one_error_line(out, 1)
    assert "cannot connect to postgresql://app:***@127.0.0.1:1/none" in line


# -- scratch databases of perf and bench ---------------------------------------------------------


@pytest.fixture
def socket_style_url(server_url: str) -> str:
    """The test server as a URL with no authority (``postgresql:///db?host=...``), the form a
    Unix socket URL takes: the host, port and user move into the query."""
    params = conninfo_to_dict(server_url)
    dbname = params.pop("dbname", "postgres")
    return f"postgresql:///{dbname}?{urlencode(params)}"


def database_exists(server_url: str, name: str) -> bool:
    with psycopg.connect(server_url) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def test_a_scratch_database_on_a_socket_style_url_is_made_and_dropped(
    server_url: str, socket_style_url: str
) -> None:
    with scratch_database(Database(url=socket_style_url)) as db:
        with db.connect() as conn:
            row = conn.execute("SELECT current_database() AS name").fetchone()
        assert row is not None
        name = row["name"]
        assert name.startswith("uptimelab_bench_")
        assert db.schema_version() > 0
        assert database_exists(server_url, name)
    assert not database_exists(server_url, name)


def test_a_scratch_database_is_dropped_when_the_work_in_it_fails(server_url: str) -> None:
    names: list[str] = []

    def work_that_fails() -> None:
        with scratch_database(Database(url=server_url)) as db:
            names.append(str(conninfo_to_dict(db.url)["dbname"]))
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        work_that_fails()
    assert names
    assert not database_exists(server_url, names[0])


def test_a_scratch_database_on_an_unreachable_server_is_a_store_error() -> None:
    with pytest.raises(StoreError), scratch_database(Database(url="postgresql://x@127.0.0.1:1/x")):
        pytest.fail("no scratch database without a server")


def test_bench_runs_on_a_socket_style_url(tmp_path: Path, socket_style_url: str) -> None:
    out = run(
        "--database-url",
        socket_style_url,
        "bench",
        "stats",
        "--sites",
        "2",
        "--days",
        "1",
        "--every",
        "1h",
        "--repeat",
        "1",
        env={"UPTIMELAB_DATA_DIR": str(tmp_path / "data")},
    )
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode == 0, out.stderr
    assert "both paths give identical rows:       yes" in out.stdout


# -- the API -------------------------------------------------------------------------------------


@contextmanager
def api_records() -> Iterator[tuple[list[logging.LogRecord], trio.Event]]:
    """The records of the API's loggers (the app's, hypercorn's error and access logs), and an
    event set by the first one at WARNING or above."""
    records: list[logging.LogRecord] = []
    warned = trio.Event()

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)
            if record.levelno >= logging.WARNING:
                warned.set()

    logger = logging.getLogger("uptimelab.api")
    handler = Keep(logging.DEBUG)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield records, warned
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


_HEAD = (
    "POST /monitoring/test HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
)


@pytest.mark.parametrize(
    ("request_bytes", "hang_up"),
    [
        pytest.param(
            _HEAD + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n", False, id="bad-chunk-size"
        ),
        pytest.param(_HEAD + 'Content-Length: 100\r\n\r\n{"sites"', True, id="hang-up-mid-body"),
        pytest.param(
            _HEAD + 'Transfer-Encoding: chunked\r\n\r\n8\r\n{"sites"', True, id="hang-up-mid-chunk"
        ),
    ],
)
async def test_a_broken_request_body_logs_one_line_and_no_traceback(
    db: Database, request_bytes: str, hang_up: bool
) -> None:
    with api_records() as (records, warned):
        async with serving(load_settings(), db) as url:
            where = urlsplit(url)
            assert where.hostname is not None
            assert where.port is not None
            with trio.fail_after(60):  # a hang guard
                async with await trio.open_tcp_stream(where.hostname, where.port) as stream:
                    await stream.send_all(request_bytes.encode())
                    if not hang_up:
                        answer = await stream.receive_some()
                        assert answer.startswith(b"HTTP/1.1 400"), answer
                await warned.wait()
    loud = [r for r in records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in loud] == [
        "POST /monitoring/test: the client went away before its request body ended"
    ]
    assert not any(r.exc_info for r in records)


def test_perf_runs_on_a_socket_style_url_and_an_unwritable_json_path_is_one_line(
    tmp_path: Path, socket_style_url: str
) -> None:
    out = run(
        "--database-url",
        socket_style_url,
        "perf",
        "--sites",
        "2",
        "--timeout-ms",
        "2000",
        "--json",
        "/proc/uptimelab-perf.json",
        env={"UPTIMELAB_DATA_DIR": str(tmp_path / "data")},
    )
    line = assert_one_error_line(out, 1)
    assert line.startswith("error: --json=/proc/uptimelab-perf.json: cannot write it: ")
    assert "2 sites: cycle 1 of 2 sites" in out.stdout  # the run itself went through
