"""URL rules, expected-status sets, and the sites API."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

import uptimelab as ul
from uptimelab.config import Settings
from uptimelab.domain.redaction import redact
from uptimelab.domain.sites import parse_expected_status, status_expected, validate_url
from uptimelab.errors import InvalidSiteFileError, InvalidURLError, SiteError, UnknownSiteError
from uptimelab.ops.health import status
from uptimelab.storage.database import Database
from uptimelab.storage.sites import SITE_COLUMNS


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("example.org", "no scheme"),
        ("ftp://example.org/", "scheme must be http or https"),
        ("http://", "no host"),
        ("http:///path", "no host"),
        ("https://example.org/" + "a" * 2048, "longer than 2048"),
        ("https://exa mple.org/", "cannot exist"),
        ("https://example.org/\x07", "whitespace or control"),
        ("https://example.org:99999/", "port"),
        ("", "empty"),
    ],
)
def test_a_bad_url_is_refused_with_a_message_that_quotes_it(url: str, rule: str) -> None:
    with pytest.raises(InvalidURLError) as info:
        validate_url(url)
    assert rule in str(info.value)
    assert repr(url[:20])[:-1] in str(info.value) or url == ""


def test_a_refused_url_with_credentials_is_quoted_redacted() -> None:
    with pytest.raises(InvalidURLError) as info:
        validate_url("ftp://bob:hunter2@example.org/")
    assert "hunter2" not in str(info.value)
    assert "***@example.org" in str(info.value)


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("http://example.org", "http://example.org/"),
        ("https://a.b/c?d=e#f", "https://a.b/c?d=e"),
        ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080/x"),
        ("http://[::1]/", "http://[::1]/"),
    ],
)
def test_a_good_url_is_accepted_in_its_normal_form(url: str, normal: str) -> None:
    assert validate_url(url) == normal


@pytest.mark.parametrize(
    ("spec", "yes", "no"),
    [
        ("200-399", [200, 301, 399], [199, 400, 500]),
        ("200,204", [200, 204], [201, 301]),
        ("200-299,301", [250, 301], [302, 404]),
        ("404", [404], [200]),
    ],
)
def test_expected_status_sets(spec: str, yes: list[int], no: list[int]) -> None:
    ranges = parse_expected_status(spec)
    assert all(status_expected(c, ranges) for c in yes)
    assert not any(status_expected(c, ranges) for c in no)


@pytest.mark.parametrize("spec", ["", "2xx", "399-200", "200-", "700", "200;204"])
def test_a_bad_expected_status_is_refused(spec: str) -> None:
    with pytest.raises(SiteError, match="invalid expected status"):
        parse_expected_status(spec)


def test_redact_hides_credentials_anywhere_in_a_text() -> None:
    text = "GET https://bob:s3cret@example.org/x failed; see http://amy@b.c/"
    assert redact(text) == "GET https://***@example.org/x failed; see http://***@b.c/"


def test_add_list_disable_enable_remove(db: Database) -> None:
    site = ul.add_site("https://example.org/health", expect="200,204", db=db)
    assert site.name == "example.org"
    assert site.expected_status == "200,204"
    assert [s.url for s in ul.list_sites(db=db)] == ["https://example.org/health"]
    assert ul.disable_site(site.url, db=db).is_active is False
    assert ul.list_sites(active=True, db=db) == []
    assert ul.enable_site(str(site.id), db=db).is_active is True
    ul.remove_site(site.id, db=db)
    assert ul.list_sites(db=db) == []


def test_status_lists_the_active_sites_whose_certificate_is_not_verified(
    db: Database, tmp_path: Path
) -> None:
    ul.add_site("https://checked.example/", db=db)
    weak = ul.add_site("https://bob:hunter2@weak.example/", name="weak", tls_verify=False, db=db)
    off = ul.add_site("https://off.example/", tls_verify=False, db=db)
    ul.disable_site(off.id, db=db)
    facts = status(Settings.load(database_url=db.url, data_dir=tmp_path)).database
    assert facts.tls_unverified_sites == 1
    assert facts.tls_unverified is not None
    assert [(s.id, s.name, s.url) for s in facts.tls_unverified] == [
        (weak.id, "weak", "https://***@weak.example/")
    ]


def test_site_rows_are_list_sites_as_plain_values(db: Database) -> None:
    assert set(SITE_COLUMNS) == set(ul.Site.model_fields)  # every column, read by both
    ul.add_site("https://example.org/", name="one", interval_ms=60_000, db=db)
    ul.disable_site(ul.add_site("https://example.com/", db=db).id, db=db)
    for active in (None, True, False):
        rows = ul.site_rows(active=active, db=db)
        sites = ul.list_sites(active=active, db=db)
        assert [r.url for r in rows] == [s.url for s in sites]
        assert [{c: getattr(r, c) for c in SITE_COLUMNS} for r in rows] == [
            s.model_dump() for s in sites
        ]
    assert [r.url for r in ul.site_rows(active=False, db=db)] == ["https://example.com/"]


def test_adding_a_registered_url_again_is_an_error(db: Database) -> None:
    ul.add_site("https://example.org/", db=db)
    with pytest.raises(SiteError, match="already registered"):
        ul.add_site("https://example.org/", db=db)


def test_an_unknown_site_is_an_unknown_site_error(db: Database) -> None:
    with pytest.raises(UnknownSiteError):
        ul.disable_site("https://nowhere.example/", db=db)
    with pytest.raises(UnknownSiteError):
        ul.get_site("1f0e2d3c-0000-4000-8000-000000000000", db=db)


def test_import_is_idempotent_by_url_and_reports_added_and_updated(
    db: Database, tmp_path: Path
) -> None:
    csv_file = tmp_path / "sites.csv"
    csv_file.write_text(
        "url,name,expected_status\nhttps://a.example/,A,200\nhttps://b.example/,,200-299\n"
    )
    first = ul.import_sites(csv_file, db=db)
    assert (first.added, first.updated, first.unchanged) == (2, 0, 0)
    again = ul.import_sites(csv_file, db=db)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
    json_file = tmp_path / "sites.json"
    json_file.write_text(json.dumps([{"url": "https://a.example/", "is_active": False}]))
    changed = ul.import_sites(json_file, db=db)
    assert (changed.added, changed.updated) == (0, 1)
    a = ul.get_site("https://a.example/", db=db)
    assert (a.name, a.is_active, a.expected_status) == ("A", False, "200")


def test_import_takes_a_tls_verify_column_and_updates_only_what_a_row_gives(
    db: Database, tmp_path: Path
) -> None:
    csv_file = tmp_path / "sites.csv"
    csv_file.write_text("url,tls_verify\nhttps://a.example/,false\nhttps://b.example/,true\n")
    assert ul.import_sites(csv_file, db=db).added == 2
    assert ul.get_site("https://a.example/", db=db).tls_verify is False
    assert ul.get_site("https://b.example/", db=db).tls_verify is True
    renamed = tmp_path / "renamed.csv"
    renamed.write_text("url,name\nhttps://a.example/,A\n")
    assert ul.import_sites(renamed, db=db).updated == 1
    assert ul.get_site("https://a.example/", db=db).tls_verify is False  # not given: kept
    json_file = tmp_path / "sites.json"
    json_file.write_text(json.dumps([{"url": "https://a.example/", "tls_verify": True}]))
    assert ul.import_sites(json_file, db=db).updated == 1
    assert ul.get_site("https://a.example/", db=db).tls_verify is True


def test_import_reads_yaml(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text("- url: https://a.example/\n  method: head\n  timeout_ms: 2500\n")
    assert ul.import_sites(path, db=db).added == 1
    site = ul.get_site("https://a.example/", db=db)
    assert (site.method, site.timeout_ms) == ("HEAD", 2500)


def test_a_file_with_a_bad_row_writes_nothing(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "sites.csv"
    path.write_text("url\nhttps://good.example/\nftp://bad.example/\n")
    with pytest.raises(InvalidSiteFileError, match=r"row 2: .*ftp://bad.example/"):
        ul.import_sites(path, db=db)
    assert ul.list_sites(db=db) == []


def test_skip_invalid_imports_the_good_rows_and_reports_the_bad(
    db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "sites.csv"
    path.write_text(
        "url,max_redirects\nhttps://good.example/,3\nnot a url,1\nhttps://c.example/,99\n"
    )
    report = ul.import_sites(path, skip_invalid=True, db=db)
    assert report.added == 1
    assert [n for n, _ in report.invalid] == [2, 3]


def test_an_unknown_column_is_reported(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "sites.json"
    path.write_text(json.dumps([{"url": "https://a.example/", "colour": "red"}]))
    with pytest.raises(InvalidSiteFileError, match="unknown column"):
        ul.import_sites(path, db=db)


def test_the_database_refuses_a_bad_method_too(db: Database) -> None:
    with db.connect() as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO sites (url, method) VALUES ('http://x.example/', 'BREW')")


# A value other than the default for every column a site file may give (url aside).
NON_DEFAULT = {
    "name": "Named",
    "is_active": False,
    "method": "POST",
    "expected_status": "204",
    "follow_redirects": False,
    "max_redirects": 2,
    "timeout_ms": 2000,
    "interval_ms": 120_000,
    "retry_interval_ms": 30_000,
    "tls_verify": False,
    "cert_min_days": 3,
    "expect_body": "UP",
    "expect_json": '$.status == "UP"',
    "max_response_ms": 900,
    "headers": {"Content-Type": "application/json"},
    "body": "{}",
    "down_after": 4,
    "up_after": 3,
    "notify": ["json://127.0.0.1:1/hook"],
}


def test_every_column_a_file_may_give_has_a_non_default_value_here() -> None:
    from uptimelab.domain.sites import COLUMNS

    assert set(NON_DEFAULT) == set(COLUMNS) - {"url"}


# Columns whose default would break a rule across columns of this site (a body needs a method
# that takes one and its Content-Type): resetting them alone is refused, nothing written.
NEEDED_BY_OTHERS = {"method": "body", "headers": "Content-Type"}


@pytest.mark.parametrize("column", sorted(NON_DEFAULT))
@pytest.mark.parametrize("how", ["csv empty cell", "json null"])
def test_a_column_given_empty_goes_back_to_its_default_and_one_not_given_is_kept(
    db: Database, tmp_path: Path, column: str, how: str
) -> None:
    url = "https://a.example/"
    fresh = ul.get_site(ul.add_site("https://fresh.example/", db=db).id, db=db)
    first = tmp_path / "first.json"
    first.write_text(json.dumps([{"url": url, **NON_DEFAULT}]))
    assert ul.import_sites(first, db=db).added == 1
    before = ul.get_site(url, db=db)
    assert getattr(before, column) == NON_DEFAULT[column]
    again = tmp_path / ("again.csv" if how == "csv empty cell" else "again.json")
    if how == "csv empty cell":
        again.write_text(f"url,{column}\n{url},\n")
    else:
        again.write_text(json.dumps([{"url": url, column: None}]))
    if column in NEEDED_BY_OTHERS:
        with pytest.raises(InvalidSiteFileError, match=NEEDED_BY_OTHERS[column]):
            ul.import_sites(again, db=db)
        assert ul.get_site(url, db=db) == before
        return
    assert ul.import_sites(again, db=db).updated == 1
    after = ul.get_site(url, db=db)
    expected = "a.example" if column == "name" else getattr(fresh, column)
    assert getattr(after, column) == expected
    assert all(getattr(after, c) == getattr(before, c) for c in NON_DEFAULT if c != column)


def test_a_row_is_checked_against_the_site_it_updates(db: Database, tmp_path: Path) -> None:
    """A rule across columns holds for the site as it will be stored, not the row alone."""
    ul.add_site("https://a.example/", interval_ms=60_000, db=db)
    path = tmp_path / "sites.csv"
    path.write_text("url,timeout_ms\nhttps://a.example/,60000\n")  # not below its interval
    with pytest.raises(InvalidSiteFileError, match="row 1: .*interval"):
        ul.import_sites(path, db=db)
    assert ul.get_site("https://a.example/", db=db).timeout_ms is None
