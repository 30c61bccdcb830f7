"""Site files keep what users meant: a redacted secret is never imported over a real one, an
export imports back as no change, columns take their own types only, a timeout stays below the
interval, and a file without sites is one answer whatever its format."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import uptimelab as ul
from uptimelab.domain.sites import COLUMNS, INT_COLUMNS
from uptimelab.errors import InvalidSiteFileError, SiteError
from uptimelab.storage.database import Database

from .test_bad_input import run

SECRET_URL = "http://user:pw@127.0.0.1:9/a?token=t0k&x=1"


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    """``rows`` as a site file of ``path``'s format."""
    if path.suffix == ".json":
        path.write_text(json.dumps(rows))
    elif path.suffix == ".yaml":
        path.write_text(yaml.safe_dump(rows))
    else:
        columns = list(dict.fromkeys(k for row in rows for k in row))
        lines = [",".join(columns)]
        for row in rows:
            cells = [row.get(c, "") for c in columns]
            lines.append(",".join(_csv(c) for c in cells))
        path.write_text("\n".join(lines) + "\n")
    return path


def _csv(value: object) -> str:
    text = json.dumps(value) if isinstance(value, dict | list) else str(value)
    return '"' + text.replace('"', '""') + '"'


def stored(db: Database, url: str) -> dict[str, Any]:
    with db.connect() as conn:
        row = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM sites WHERE url = %s", (url,))
        found = row.fetchone()
    assert found is not None
    return dict(found)


def site_count(db: Database) -> int:
    with db.connect() as conn:
        row = conn.execute("SELECT count(*) AS n FROM sites").fetchone()
    assert row is not None
    return int(row["n"])


# ---- 1. the redaction placeholder is refused -------------------------------------------------

PLACEHOLDERS: dict[str, tuple[str, dict[str, Any]]] = {
    "header value": ("headers", {"url": "http://127.0.0.1:9/a", "headers": {"X-Token": "***"}}),
    "url userinfo": ("url", {"url": "http://***@127.0.0.1:9/a"}),
    "url password": ("url", {"url": "http://user:***@127.0.0.1:9/a"}),
    "url query value": ("url", {"url": "http://127.0.0.1:9/a?token=***&x=1"}),
    "url query encoded": ("url", {"url": "http://127.0.0.1:9/a?k=%2A%2A%2A"}),
    "notify url": ("notify", {"url": "http://127.0.0.1:9/a", "notify": ["json://***"]}),
    "notify url long": (
        "notify",
        {"url": "http://127.0.0.1:9/a", "notify": ["json://***@host:8080/***"]},
    ),
}


@pytest.mark.parametrize("fmt", ["csv", "json", "yaml"])
@pytest.mark.parametrize("case", sorted(PLACEHOLDERS))
def test_a_redaction_placeholder_is_refused_naming_row_and_column(
    db: Database, tmp_path: Path, case: str, fmt: str
) -> None:
    ul.add_site("http://127.0.0.1:9/a", headers={"X-Token": "abc123"}, db=db)
    column, row = PLACEHOLDERS[case]
    path = write(tmp_path / f"sites.{fmt}", [{"url": "http://127.0.0.1:9/ok"}, row])
    with pytest.raises(InvalidSiteFileError) as caught:
        ul.import_sites(path, db=db)
    message = str(caught.value)
    assert "row 2: " in message
    assert column in message
    assert "***" in message
    assert "nothing was imported" in message
    assert "\n" not in message
    assert site_count(db) == 1
    assert stored(db, "http://127.0.0.1:9/a")["headers"] == {"X-Token": "abc123"}
    # --skip-invalid takes the good row and never the placeholder's
    report = ul.import_sites(path, skip_invalid=True, db=db)
    assert (report.added, [n for n, _ in report.invalid]) == (1, [2])


@pytest.mark.parametrize("case", sorted(PLACEHOLDERS))
def test_add_site_refuses_a_redaction_placeholder_too(db: Database, case: str) -> None:
    column, row = PLACEHOLDERS[case]
    with pytest.raises(SiteError, match=rf"^{column}: .*\*\*\*"):
        ul.add_site(**row, db=db)
    assert site_count(db) == 0


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/a?q=a***b", "http://127.0.0.1:9/***", "http://127.0.0.1:9/a#***"]
)
def test_asterisks_elsewhere_in_a_url_are_not_a_placeholder(db: Database, url: str) -> None:
    ul.add_site(url, db=db)
    assert site_count(db) == 1


def test_the_json_listing_imported_back_is_refused_and_keeps_the_secrets(
    db: Database, tmp_path: Path
) -> None:
    ul.add_site(SECRET_URL, headers={"X-Token": "abc123"}, notify=["json://h/p"], db=db)
    listing = run("sites", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    path = tmp_path / "listing.json"
    path.write_text(listing.stdout)
    out = run("sites", "import", str(path))
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1
    assert "row 1: url: holds ***" in out.stderr
    assert site_count(db) == 1
    site = stored(db, SECRET_URL)
    assert (site["headers"], site["notify"]) == ({"X-Token": "abc123"}, ["json://h/p"])


# ---- 1. export, and its round trip -----------------------------------------------------------

names = st.text(alphabet=st.characters(categories=["L", "N", "Zs"]), min_size=1, max_size=12)
site_specs = st.fixed_dictionaries(
    {"url": st.sampled_from(["http://127.0.0.1:9/", "https://u:p%40ss@example.org/x?token=1"])},
    optional={
        "name": names.map(str.strip).filter(bool),
        "is_active": st.booleans(),
        "method": st.sampled_from(["GET", "HEAD"]),
        "expected_status": st.sampled_from(["200", "200-299,301", "404"]),
        "follow_redirects": st.booleans(),
        "max_redirects": st.integers(0, 50),
        "timeout_ms": st.integers(1, 9000),
        "interval_ms": st.integers(10_000, 86_400_000),
        "tls_verify": st.booleans(),
        "cert_min_days": st.integers(0, 3650),
        "expect_body": st.sampled_from(["ok", 'a,b "c"']),
        "max_response_ms": st.integers(1, 10_000),
        "headers": st.dictionaries(
            st.sampled_from(["X-Token", "Accept", "X-A"]), st.sampled_from(["v", "a b", "[1]"])
        ),
        "down_after": st.integers(1, 1000),
        "up_after": st.integers(1, 1000),
        "notify": st.lists(st.sampled_from(["json://h/p", "json://other:8080/hook"]), unique=True),
    },
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(specs=st.lists(site_specs, min_size=1, max_size=3, unique_by=lambda s: s["url"]))
def test_an_export_with_secrets_imports_back_as_no_change(
    db: Database, tmp_path: Path, specs: list[dict[str, Any]]
) -> None:
    with db.connect() as conn:
        conn.execute("DELETE FROM sites")
    ul.import_sites(write(tmp_path / "given.json", specs), db=db)
    for fmt in ("csv", "json", "yaml"):
        path = tmp_path / f"export.{fmt}"
        path.unlink(missing_ok=True)
        report = ul.export_sites(path, include_secrets=True, db=db)
        assert (report.sites, report.secrets_left_out) == (len(specs), 0)
        again = ul.import_sites(path, db=db)
        assert (again.added, again.updated, again.unchanged) == (0, 0, len(specs)), fmt
        assert ul.export_sites(format=fmt, include_secrets=True, db=db).text == report.text


def test_an_export_without_secrets_hides_them_and_says_so(db: Database, tmp_path: Path) -> None:
    ul.add_site(SECRET_URL, headers={"X-Token": "abc123"}, db=db)
    ul.add_site("http://127.0.0.1:9/plain", db=db)
    path = tmp_path / "sites.csv"
    out = run("sites", "export", str(path))
    assert out.returncode == 0, out.stderr
    assert "secrets left out: 1 site(s)" in out.stderr
    text = path.read_text()
    assert "abc123" not in text
    assert "pw@" not in text
    assert "t0k" not in text
    with pytest.raises(InvalidSiteFileError, match="row 1: url: holds"):
        ul.import_sites(path, db=db)
    assert stored(db, SECRET_URL)["headers"] == {"X-Token": "abc123"}


def test_an_export_file_is_private_and_an_existing_one_is_never_widened(
    db: Database, tmp_path: Path
) -> None:
    ul.add_site(SECRET_URL, db=db)
    new = tmp_path / "new.json"
    ul.export_sites(new, include_secrets=True, db=db)
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    wide = tmp_path / "wide.json"
    wide.write_text("")
    wide.chmod(0o644)
    ul.export_sites(wide, include_secrets=True, db=db)
    assert stat.S_IMODE(wide.stat().st_mode) == 0o600
    narrow = tmp_path / "narrow.json"
    narrow.write_text("")
    narrow.chmod(0o400 | 0o200)
    ul.export_sites(narrow, db=db)
    assert stat.S_IMODE(narrow.stat().st_mode) == 0o600


def test_the_export_command_writes_to_standard_output_in_each_format(db: Database) -> None:
    ul.add_site("http://127.0.0.1:9/plain", name="plain", db=db)
    out = run("sites", "export", "--format", "yaml")
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout)[0]["name"] == "plain"
    assert set(yaml.safe_load(out.stdout)[0]) == set(COLUMNS)
    bad = run("sites", "export", "--format", "xml")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: unknown format 'xml'")


# ---- 5. each column takes its own type -------------------------------------------------------

WRONG_TYPES: list[tuple[str, object]] = [
    *((c, v) for c in INT_COLUMNS for v in (True, False, [1], {"a": 1}, 1.5)),
    *((c, v) for c in ("is_active", "follow_redirects", "tls_verify") for v in ([1], {"a": 1}, 7)),
    *(
        (c, v)
        for c in ("name", "method", "expect_body", "expect_json", "body")
        for v in ([1], {"a": 1})
    ),
    ("expected_status", True),
    ("expected_status", 1.5),
    ("expected_status", {"a": 1}),
    ("headers", [1]),
    ("headers", 5),
    ("notify", 5),
    ("notify", {"a": 1}),
    ("url", True),
]


@pytest.mark.parametrize(("column", "value"), WRONG_TYPES)
@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_a_value_of_the_wrong_type_is_refused_naming_its_column(
    db: Database, tmp_path: Path, fmt: str, column: str, value: object
) -> None:
    row = {"url": "http://127.0.0.1:9/a", column: value}
    path = write(tmp_path / f"sites.{fmt}", [row])
    with pytest.raises(InvalidSiteFileError, match=rf"row 1: {column}\b"):
        ul.import_sites(path, db=db)
    assert site_count(db) == 0


@pytest.mark.parametrize(
    ("given", "kept"),
    [(200, "200"), ([200, 204], "200,204"), (["200-299", 404], "200-299,404"), ("200", "200")],
)
@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_expected_status_may_be_given_as_numbers(
    db: Database, tmp_path: Path, fmt: str, given: object, kept: str
) -> None:
    path = write(
        tmp_path / f"sites.{fmt}", [{"url": "http://127.0.0.1:9/a", "expected_status": given}]
    )
    assert ul.import_sites(path, db=db).added == 1
    assert stored(db, "http://127.0.0.1:9/a")["expected_status"] == kept


def test_add_site_refuses_a_boolean_for_a_number(db: Database) -> None:
    with pytest.raises(SiteError, match="^timeout_ms: give a whole number, not true$"):
        ul.add_site("http://127.0.0.1:9/a", timeout_ms=True, db=db)


# ---- 6. a timeout stays below the interval ---------------------------------------------------


def test_a_timeout_not_below_the_default_interval_is_refused_everywhere(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONITORING_INTERVAL_MS", "60000")
    said = "timeout_ms=200000 must be below the interval (MONITORING_INTERVAL_MS=60000)"
    with pytest.raises(SiteError, match=rf"^{re.escape(said)}$"):
        ul.add_site("http://127.0.0.1:9/a", timeout_ms=200_000, db=db)
    with pytest.raises(SiteError, match="timeout_ms=60000 must be below"):
        ul.add_site("http://127.0.0.1:9/a", timeout_ms=60_000, db=db)
    for fmt in ("csv", "json", "yaml"):
        path = write(tmp_path / f"s.{fmt}", [{"url": "http://127.0.0.1:9/a", "timeout_ms": 200000}])
        with pytest.raises(InvalidSiteFileError, match=rf"row 1: {re.escape(said)}"):
            ul.import_sites(path, db=db)
    out = run("sites", "add", "http://127.0.0.1:9/a", "--timeout-ms", "200000")
    assert out.returncode == 2
    assert said in out.stderr
    assert site_count(db) == 0
    # below it, or with an interval of the site's own above it, is fine
    ul.add_site("http://127.0.0.1:9/a", timeout_ms=59_999, db=db)
    ul.add_site("http://127.0.0.1:9/b", timeout_ms=200_000, interval_ms=300_000, db=db)
    with pytest.raises(SiteError, match=r"interval_ms=200000 must be above timeout_ms=200000"):
        ul.add_site("http://127.0.0.1:9/c", timeout_ms=200_000, interval_ms=200_000, db=db)


def test_an_import_that_drops_the_sites_interval_checks_its_timeout(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONITORING_INTERVAL_MS", "60000")
    ul.add_site("http://127.0.0.1:9/a", timeout_ms=100_000, interval_ms=300_000, db=db)
    path = write(tmp_path / "s.csv", [{"url": "http://127.0.0.1:9/a", "interval_ms": ""}])
    with pytest.raises(InvalidSiteFileError, match="timeout_ms=100000 must be below"):
        ul.import_sites(path, db=db)


# ---- 18. files without sites -----------------------------------------------------------------

EMPTY = {
    "csv": ["", "\n\n", "url,name\n", "url,name\n\n"],
    "json": ["", " \n", "[]", '{"sites": []}'],
    "yaml": ["", "# none\n", "[]\n", "sites: []\n"],
}


@pytest.mark.parametrize(("fmt", "content"), [(f, c) for f, cs in EMPTY.items() for c in cs])
def test_a_file_without_sites_is_one_answer_in_every_format(
    db: Database, tmp_path: Path, fmt: str, content: str
) -> None:
    path = tmp_path / f"sites.{fmt}"
    path.write_text(content)
    with pytest.raises(InvalidSiteFileError, match=rf"^no sites in {re.escape(str(path))}$"):
        ul.import_sites(path, db=db)


def test_the_cli_says_no_sites_with_exit_code_2(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "sites.csv"
    path.write_text("url,name\n")
    out = run("sites", "import", str(path))
    assert (out.returncode, out.stderr) == (2, f"error: no sites in {path}\n")


def test_a_csv_without_a_header_says_so(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "sites.csv"
    path.write_text("http://127.0.0.1:9/a,a\nhttp://127.0.0.1:9/b,b\n")
    with pytest.raises(InvalidSiteFileError, match="line 1 is a row, not a header"):
        ul.import_sites(path, db=db)


def test_a_directory_says_it_is_a_directory(db: Database, tmp_path: Path) -> None:
    with pytest.raises(InvalidSiteFileError, match="is a directory"):
        ul.import_sites(tmp_path, db=db)
    with pytest.raises(InvalidSiteFileError, match="is a directory"):
        ul.export_sites(tmp_path, db=db)
