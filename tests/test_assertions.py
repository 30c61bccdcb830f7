"""Site assertions and request options: parsing and checking (pure), storing and importing them,
the CLI's validation, and secret headers redacted wherever a site is shown."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

import uptimelab as ul
from uptimelab.domain.assertions import (
    BODY_LIMIT_BYTES,
    Body,
    assertions,
    parse_expect_json,
    parse_headers,
)
from uptimelab.domain.pings import PingResult
from uptimelab.errors import InvalidSiteFileError, SiteError
from uptimelab.probe import BODY_CAP_BYTES, ENGINES, Prober
from uptimelab.storage.database import Database
from uptimelab.storage.models import Site
from uptimelab.storage.sites import site_rows
from uptimelab.testing.zoo import (
    BOMB_DECODED_BYTES,
    ZOO_KEYWORD,
    Behaviour,
    TargetSpec,
    Zoo,
    ZooSpec,
    open_zoo,
)

SECRET = "s3cr3t-value-42"
SECRET_HEADERS = {
    "Authorization": f"Bearer {SECRET}a",
    "Proxy-Authorization": f"Basic {SECRET}b",
    "Cookie": f"session={SECRET}c",
    "X-API-KEY": f"{SECRET}d",
    "x-auth-token": f"{SECRET}e",
    "X-Client-Secret": f"{SECRET}f",
    "X-Password": f"{SECRET}g",
}


def check_json(expression: str, document: object) -> str | None:
    return assertions(None, expression, None).check(Body(json.dumps(document).encode()), 1)


@pytest.mark.parametrize(
    ("expression", "document"),
    [
        ('$.status == "UP"', {"status": "UP"}),
        ('$.status != "UP"', {"status": "DOWN"}),
        ("len($.items) > 0", {"items": [1]}),
        ("len($.items) == 0", {"items": []}),
        ("len($.name) <= 3", {"name": "abc"}),
        ("$.version >= 7", {"version": 7}),
        ("$.load < 0.5", {"load": 0.25}),
        ('$.tags contains "eu"', {"tags": ["us", "eu"]}),
        ('$.motd contains "ok"', {"motd": "all ok"}),
        ('$.components contains "db"', {"components": {"db": {}}}),
        ('$["a b"].c == [1, {"d": null}]', {"a b": {"c": [1, {"d": None}]}}),
        ('$.a == "x == y"', {"a": "x == y"}),
        ("$.items[1] == 2", {"items": [1, 2]}),
    ],
)
def test_a_json_expectation_that_holds_passes(expression: str, document: object) -> None:
    assert check_json(expression, document) is None


@pytest.mark.parametrize(
    ("expression", "document", "seen"),
    [
        ('$.status == "UP"', {"status": "DOWN"}, 'saw "DOWN"'),
        ("len($.items) > 0", {"items": []}, "saw 0"),
        ("$.ok == true", {"ok": 1}, "saw 1"),  # JSON's true is not 1
        ("$.n == 1", {"n": True}, "saw true"),
        ('$.status == "UP"', {}, "no value at the path"),
        ("len($.n) > 0", {"n": 5}, "saw 5, which has no length"),
        ('$.n > "a"', {"n": 5}, "saw 5, which cannot be compared with >"),
        ('$.tags contains "eu"', {"tags": ["us"]}, 'saw ["us"]'),
    ],
)
def test_a_json_expectation_that_fails_says_what_was_seen(
    expression: str, document: object, seen: str
) -> None:
    assert check_json(expression, document) == f"expect_json {expression} failed: {seen}"


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("$.status", "no operator"),
        ("$.status == UP", "not a JSON literal"),
        ("$.status === 1", "no operator"),
        ("$.[bad == 1", "not a JSONPath"),
        ("$.items[*] == 1", "may select more than one value"),
        ("$..status == 1", "may select more than one value"),
        ("$.items[?@.a > 1] == 1", "may select more than one value"),
        ('len($.items) > "3"', "compared with an integer"),
        ("len($.items) contains 3", "compared with an integer"),
        ("$.n == NaN", "not a finite number"),
    ],
)
def test_a_bad_json_expression_is_one_line_naming_the_problem(expression: str, why: str) -> None:
    with pytest.raises(SiteError, match=why) as caught:
        parse_expect_json(expression)
    assert "\n" not in str(caught.value)


def test_expect_body_is_searched_in_the_text_and_a_miss_shows_the_start_of_the_page() -> None:
    checks = assertions(r"operational\b", None, None)
    assert checks.check(Body(b"all systems operational"), 1) is None
    failed = checks.check(Body(b"<html>" + b"x" * 500), 1)
    assert failed is not None
    assert failed.startswith("expect_body 'operational\\\\b' failed: not in the body (506 bytes)")
    assert len(failed) < 250  # the page is shown truncated


def test_a_regex_that_backtracks_catastrophically_fails_the_ping_in_bounded_time() -> None:
    checks = assertions(r"^(\w+\s?)*$", None, None)
    failed = checks.check(Body(b"a" * 5000 + b"!"), 1)
    assert failed is not None
    assert "the search took longer than" in failed


def test_max_response_ms_compares_the_response_time() -> None:
    checks = assertions(None, None, 100)
    assert checks.check(None, 100) is None
    assert checks.check(None, 101) == "max_response_ms 100 failed: the response took 101 ms"
    assert not checks.reads_body


def test_a_body_in_its_declared_charset_is_searched_as_text() -> None:
    checks = assertions("café", None, None)
    assert checks.check(Body("café".encode("latin-1"), charset="latin-1"), 1) is None
    assert checks.check(Body("café".encode()), 1) is None


@given(st.text(max_size=30), st.sampled_from(["==", "!="]))
def test_a_string_value_round_trips_through_an_expression(value: str, operator: str) -> None:
    expression = f"$.v {operator} {json.dumps(value)}"
    verdict = check_json(expression, {"v": value})
    assert (verdict is None) == (operator == "==")


def test_header_lines_are_parsed_and_a_name_given_twice_is_refused() -> None:
    assert parse_headers(["Accept: application/json", "X-Key:  a:b "]) == {
        "Accept": "application/json",
        "X-Key": "a:b",
    }
    assert parse_headers([]) is None
    with pytest.raises(SiteError, match="given twice"):
        parse_headers(["X-A: 1", "x-a: 2"])
    with pytest.raises(SiteError, match="use 'Name: value'"):
        parse_headers(["no colon"])


@pytest.mark.parametrize(
    ("values", "why"),
    [
        ({"expect_body": "(unclosed"}, "not a regular expression"),
        ({"expect_json": "$.a = 1"}, "no operator"),
        ({"max_response_ms": 0}, "max_response_ms must be from 1"),
        ({"headers": {"Host": "x"}}, "set by the probe"),
        ({"headers": {"Bad Name": "x"}}, "not a header name"),
        ({"headers": {"X-Token": f"{SECRET}\r\nInjected: 1"}}, "must be one line"),
        ({"headers": "[1, 2]"}, "JSON object"),
        ({"body": "{}"}, "a GET request has no body"),
        ({"method": "POST", "body": "{}"}, "Content-Type"),
    ],
)
def test_the_api_refuses_bad_assertions_and_request_options(
    db: Database, values: dict[str, object], why: str
) -> None:
    with pytest.raises(SiteError, match=why) as caught:
        ul.add_site("https://a.example/", db=db, **values)  # type: ignore[arg-type]
    assert SECRET not in str(caught.value)
    assert ul.list_sites(db=db) == []


def test_assertions_and_request_options_are_stored_and_read_back(db: Database) -> None:
    headers = {"Content-Type": "application/json", **SECRET_HEADERS}
    site = ul.add_site(
        "https://a.example/",
        method="POST",
        expect_body="UP",
        expect_json="len($.items) > 0",
        max_response_ms=800,
        headers=headers,
        body='{"q": 1}',
        db=db,
    )
    assert SECRET not in repr(site)
    again = ul.get_site(site.id, db=db)
    assert (again.expect_body, again.expect_json, again.max_response_ms) == (
        "UP",
        "len($.items) > 0",
        800,
    )
    assert (again.headers, again.body) == (headers, '{"q": 1}')
    (row,) = site_rows(db=db)
    assert (row.headers, row.body) == (headers, '{"q": 1}')
    assert SECRET not in repr(row)


def test_import_takes_the_new_columns_from_csv_and_json(db: Database, tmp_path: Path) -> None:
    csv_file = tmp_path / "sites.csv"
    csv_file.write_text(
        "url,expect_body,expect_json,max_response_ms,headers\n"
        "https://a.example/,UP,,500,\n"
        'https://b.example/,,"$.status == ""UP""",,"{""X-Api-Key"": ""k""}"\n'
    )
    assert ul.import_sites(csv_file, db=db).added == 2
    a = ul.get_site("https://a.example/", db=db)
    b = ul.get_site("https://b.example/", db=db)
    assert (a.expect_body, a.expect_json, a.max_response_ms, a.headers) == ("UP", None, 500, None)
    assert (b.expect_json, b.headers) == ('$.status == "UP"', {"X-Api-Key": "k"})
    json_file = tmp_path / "sites.json"
    json_file.write_text(json.dumps([{"url": "https://a.example/", "headers": {"X-B": "2"}}]))
    assert ul.import_sites(json_file, db=db).updated == 1
    assert ul.get_site("https://a.example/", db=db).headers == {"X-B": "2"}
    assert ul.import_sites(json_file, db=db).unchanged == 1


def test_an_import_with_a_bad_expression_writes_nothing(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "sites.json"
    path.write_text(
        json.dumps(
            [
                {"url": "https://good.example/", "expect_body": "ok"},
                {"url": "https://bad.example/", "expect_json": "$.a =="},
            ]
        )
    )
    with pytest.raises(InvalidSiteFileError, match=r"row 2: expect_json '\$\.a ==': .*nothing"):
        ul.import_sites(path, db=db)
    assert ul.list_sites(db=db) == []


def test_the_database_accepts_the_assertion_category_and_refuses_an_unknown_one(
    db: Database,
) -> None:
    site = ul.add_site("https://a.example/", db=db)
    insert = (
        "INSERT INTO pings (site_id, checked_at, status, error_category, location, region_code) "
        "VALUES (%s, now(), 'down', %s, 'here', 'XX')"
    )
    with db.connect() as conn:
        conn.execute(insert, (site.id, "assertion"))
    with db.connect() as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(insert, (site.id, "keyword"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "uptimelab", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"COLUMNS": "400"},  # a table wide enough to show whole cells
    )


@pytest.mark.parametrize(
    ("options", "why"),
    [
        (["--expect-body", "(("], "not a regular expression"),
        (["--expect-json", "$.status = 'UP'"], "expect_json"),
        (["--header", "no colon"], "use 'Name: value'"),
        (["--header", f"X-Token: {SECRET}", "--header", f"x-token: {SECRET}"], "given twice"),
        (["--method", "POST", "--body", "{}"], "Content-Type"),
        (["--max-response-ms", "-5"], "max_response_ms"),
    ],
)
def test_sites_add_refuses_bad_assertions_in_one_line_with_exit_2(
    db: Database, options: list[str], why: str
) -> None:
    result = run("sites", "add", "https://a.example/", *options)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ")
    assert why in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert ul.list_sites(db=db) == []


def test_sites_import_refuses_a_bad_regex_with_exit_2_and_writes_nothing(
    db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "sites.csv"
    path.write_text("url,expect_body\nhttps://a.example/,ok\nhttps://b.example/,[a-\n")
    result = run("sites", "import", str(path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "row 2: expect_body '[a-'" in result.stderr
    assert ul.list_sites(db=db) == []


def test_sites_add_takes_the_options_and_sites_list_shows_secret_headers_redacted(
    db: Database,
) -> None:
    headers = [f"{name}: {value}" for name, value in SECRET_HEADERS.items()]
    result = run(
        "sites",
        "add",
        "https://a.example/",
        "--method",
        "post",
        "--expect-body",
        "UP",
        "--expect-json",
        '$.status == "UP"',
        "--max-response-ms",
        "900",
        "--body",
        '{"q": 1}',
        "--header",
        "Content-Type: application/json",
        *[arg for h in headers for arg in ("--header", h)],
    )
    assert result.returncode == 0, result.stderr
    site = ul.get_site("https://a.example/", db=db)
    assert site.headers == {"Content-Type": "application/json", **SECRET_HEADERS}
    assert (site.expect_body, site.expect_json, site.max_response_ms, site.body) == (
        "UP",
        '$.status == "UP"',
        900,
        '{"q": 1}',
    )
    listed = run("sites", "list")
    assert listed.returncode == 0, listed.stderr
    assert SECRET not in listed.stdout
    assert "Content-Type: application/json" in listed.stdout
    assert all(f"{name}: ***" in listed.stdout for name in SECRET_HEADERS)
    as_json = run("sites", "list", "--json")
    assert SECRET not in as_json.stdout
    (row,) = json.loads(as_json.stdout)
    assert row["headers"] == {"Content-Type": "application/json"} | dict.fromkeys(
        SECRET_HEADERS, "***"
    )
    assert row["expect_json"] == '$.status == "UP"'


# The probe: assertions through both engines, against the zoo.


@pytest.fixture(params=["lean", "httpx"])
def engine(request: pytest.FixtureRequest) -> str:
    """Each probe test runs through both engines, which must give the same verdicts."""
    return str(request.param)


def site(url: str, **fields: object) -> Site:
    now = dt.datetime.now(dt.UTC)
    return Site(url=url, created_at=now, updated_at=now, **fields)


async def ping(engine: str, url: str, **fields: object) -> PingResult:
    async with Prober(location="test", region_code="TT", timeout_ms=5000, engine=engine) as prober:
        result = await prober.ping(site(url, **fields))
    assert result is not None
    return result


async def test_a_page_without_the_keyword_is_down_with_the_assertion_category(
    engine: str, zoo: Zoo
) -> None:
    result = await ping(engine, zoo.url("ok"), expect_body=ZOO_KEYWORD)
    assert (result.status, result.status_code, result.error_category) == (
        "down",
        200,
        "assertion",
    )
    assert result.error_message == (
        f'expect_body {ZOO_KEYWORD!r} failed: not in the body (3 bytes), which starts "ok\\n"'
    )


async def test_a_json_page_with_the_wrong_value_is_down_and_with_the_right_one_up(
    engine: str, zoo: Zoo
) -> None:
    wrong = await ping(engine, zoo.url("json"), expect_json='$.status == "DOWN"')
    assert (wrong.status, wrong.error_category) == ("down", "assertion")
    assert wrong.error_message == 'expect_json $.status == "DOWN" failed: saw "UP"'
    right = await ping(engine, zoo.url("json"), expect_json="len($.items) == 3")
    assert (right.status, right.error_category) == ("up", None)
    not_json = await ping(engine, zoo.url("ok"), expect_json='$.status == "UP"')
    assert not_json.error_message is not None
    assert "is not JSON" in not_json.error_message


async def test_a_gzip_page_with_the_keyword_is_up(engine: str, zoo: Zoo) -> None:
    result = await ping(engine, zoo.url("gzip"), expect_body=f"^gzip: {ZOO_KEYWORD}$")
    assert (result.status, result.error_category) == ("up", None), result.error_message
    # The same page without assertions is read and dropped: up as well.
    assert (await ping(engine, zoo.url("gzip"))).status == "up"


async def test_a_compression_bomb_is_decoded_only_up_to_the_cap(engine: str, zoo: Zoo) -> None:
    await ping(engine, zoo.url("gzip-bomb"))  # the zoo makes its bomb once, outside the count
    tracemalloc.start()
    try:
        result = await ping(engine, zoo.url("gzip-bomb"), expect_body="[^\\x00]")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (result.status, result.error_category) == ("down", "assertion")
    assert result.error_message is not None
    assert f"({BODY_LIMIT_BYTES} bytes, more not read)" in result.error_message
    # 64 KiB read from the wire would be 64 MiB decoded; the caps keep the whole ping (client,
    # server and both sides' buffers) within a few times the two 64 KiB caps.
    assert BOMB_DECODED_BYTES > 1000 * BODY_CAP_BYTES
    assert peak < 8 * (BODY_CAP_BYTES + BODY_LIMIT_BYTES), peak


async def test_a_slower_response_than_max_response_ms_is_down() -> None:
    spec = ZooSpec((TargetSpec("slow", Behaviour.OK, latency_ms=60),), duration_s=60)
    async with open_zoo(spec) as slow_zoo:
        for engine in ENGINES:
            result = await ping(engine, slow_zoo.url("slow"), max_response_ms=20)
            assert (result.status, result.error_category) == ("down", "assertion")
            assert result.response_time_ms is not None
            assert result.error_message == (
                f"max_response_ms 20 failed: the response took {result.response_time_ms} ms"
            )


async def test_headers_and_body_are_sent_and_secrets_seen_on_the_page_are_redacted(
    engine: str, zoo: Zoo
) -> None:
    headers = {"Content-Type": "application/json", "X-Api-Key": SECRET, "Accept": "text/x"}
    fields = {"method": "POST", "headers": headers, "body": '{"q": 1}'}
    sent = await ping(
        engine,
        zoo.url("echo"),
        expect_json='$.body == "{\\"q\\": 1}"',
        **fields,
    )
    assert (sent.status, sent.error_category) == ("up", None), sent.error_message
    for expression in (
        '$.method == "POST"',
        '$.headers.accept == "text/x"',
        f'$.headers["x-api-key"] == "{SECRET}"',
        '$.headers["content-type"] == "application/json"',
    ):
        result = await ping(engine, zoo.url("echo"), expect_json=expression, **fields)
        assert result.status == "up", (expression, result.error_message)
    seen = await ping(
        engine, zoo.url("echo"), expect_json='$.headers["x-api-key"] == "other"', **fields
    )
    assert seen.error_message == 'expect_json $.headers["x-api-key"] == "other" failed: saw "***"'


CASES = [
    ("ok", {"expect_body": ZOO_KEYWORD}),
    ("ok", {"expect_body": "^ok$"}),
    ("json", {"expect_json": '$.status == "DOWN"'}),
    ("json", {"expect_json": "$.version >= 7", "expect_body": '"items"'}),
    ("gzip", {"expect_body": ZOO_KEYWORD}),
    ("gzip", {"expect_json": "$.status == 1"}),
    ("gzip-bomb", {"expect_body": "x"}),
    ("status", {"expect_body": "status"}),  # the status fails first
    ("redirect", {"expect_body": "^redirect$"}),
    ("huge-body", {"expect_body": "\\x00{65536}"}),
]


@pytest.mark.parametrize(("name", "fields"), CASES)
async def test_every_engine_gives_the_same_verdict(
    zoo: Zoo, name: str, fields: dict[str, object]
) -> None:
    verdicts = []
    for engine in ENGINES:
        result = await ping(engine, zoo.url(name), **fields)
        verdicts.append(
            (result.status, result.status_code, result.error_category, result.error_message)
        )
    assert verdicts[0] == verdicts[1]
