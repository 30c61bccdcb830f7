"""Secrets stay secret: URL userinfo in every spelling, database passwords in every libpq form,
secret headers; and the places that show them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import quote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from uptimelab.config import Settings
from uptimelab.domain.redaction import mask_url, redact, redact_headers, scrub
from uptimelab.errors import StoreError
from uptimelab.ops.health import status
from uptimelab.storage.database import Database

SECRET = "s3cr3t-Pw"


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        ("http://user:pass@example.org/x", "http://***@example.org/x"),
        ("http://user@example.org/", "http://***@example.org/"),
        ("https://u:p@ss@example.org:8443/a?b=c", "https://***@example.org:8443/a?b=c"),
        ("http://u:pa/ss@example.org/", "http://***@example.org/"),
        ("http://u:pa?ss@example.org/", "http://***@example.org/"),
        ("http://u:pa#ss@example.org/", "http://***@example.org/"),
        ("http://u:p%40ss%2F%3F%23@example.org/", "http://***@example.org/"),
        ("error: 'http://u:x@y@h/' is invalid", "error: 'http://***@h/' is invalid"),
        ("http://example.org/@someone", "http://example.org/@someone"),
        ("http://example.org/?email=a@b.c", "http://example.org/?email=a@b.c"),
        ("http://[::1]:8080/a@b", "http://[::1]:8080/a@b"),
        ("http://example.org:8080/a@b", "http://example.org:8080/a@b"),
        ("http://h/x?token=abc&page=2", "http://h/x?token=***&page=2"),
        ("http://h/?api_key=abc#top", "http://h/?api_key=***#top"),
        ("http://h/?X-Amz-Signature=abc&apikey=k", "http://h/?X-Amz-Signature=***&apikey=***"),
        ("http://h/?keyword=cats&authority=x", "http://h/?keyword=cats&authority=x"),
    ],
)
def test_redact_hides_the_whole_userinfo_in_every_spelling(shown: str, expected: str) -> None:
    assert redact(shown) == expected


_PASSWORD = st.text(
    alphabet=st.sampled_from("abcXYZ019@?/#:%!$&'()*+,;=-._~"), min_size=1, max_size=20
)


@given(password=_PASSWORD)
def test_no_part_of_a_typed_password_survives_redaction(password: str) -> None:
    # A password that starts with digits then "/" reads as a port then a path (as it does for
    # browsers): that spelling is a host and port, not userinfo.
    head = password.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    assume(not (head.isdigit() and head != password) and "@" not in password[-1:])
    assume(len(password) >= 4)
    for url in (
        f"http://user:{password}@example.org/path",
        f"http://user:{quote(password, safe='')}@example.org/path",
    ):
        shown = redact(f"cannot add {url!r}: boom")
        secret = url.split("//", 1)[1].rsplit("@", 1)[0]
        assert secret not in shown, shown
        assert "example.org/path" in shown


@pytest.mark.parametrize(
    ("url", "password"),
    [
        (f"postgresql://app:{SECRET}@db.example:5432/uptime", SECRET),
        (f"postgresql://app:{quote('p@ss/' + SECRET, safe='')}@db.example/x", f"p@ss/{SECRET}"),
        (f"postgresql://app@db.example/uptime?password={SECRET}&sslmode=require", SECRET),
        (f"postgresql:///uptime?host=/run/pg&password={SECRET}", SECRET),
        (f"host=db.example user=app password={SECRET} dbname=uptime", SECRET),
        (f"host=db.example password='{SECRET} with space' dbname=uptime", f"{SECRET} with space"),
    ],
)
def test_a_database_password_is_masked_in_every_form(url: str, password: str) -> None:
    masked = mask_url(url)
    assert SECRET not in masked
    assert "***" in masked
    assert "db.example" in masked or "/run/pg" in masked
    # Also where a library quotes the password on its own.
    assert SECRET not in scrub(f"libpq said: bad {password!r} near {url}", url)


def test_secret_headers_are_masked_whatever_their_case() -> None:
    shown = redact_headers(
        {
            "Authorization": "Bearer x",
            "cookie": "a=b",
            "X-Api-KEY": "k",
            "X-Auth-Token": "t",
            "x-client-secret": "s",
            "X-Password-Hint": "p",
            "Accept": "application/json",
        }
    )
    assert shown.pop("Accept") == "application/json"
    assert set(shown.values()) == {"***"}


# -- the places a database URL is shown --------------------------------------------------------

UNREACHABLE = f"postgresql://app:{SECRET}@127.0.0.1:1/uptime?password={SECRET}"


def _cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UPTIMELAB_DATABASE_URL": url, "DB_TIMEOUT_MS": "500"}
    return subprocess.run(
        [sys.executable, "-m", "uptimelab", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "url",
    [UNREACHABLE, f"host=127.0.0.1 port=1 user=app password={SECRET} dbname=uptime"],
)
@pytest.mark.parametrize("command", [("db", "url"), ("status", "--json"), ("sites", "list")])
def test_no_command_shows_the_database_password(command: tuple[str, ...], url: str) -> None:
    out = _cli(*command, url=url)
    assert SECRET not in out.stdout + out.stderr
    assert "Traceback" not in out.stderr


def test_an_unreachable_database_error_masks_the_password() -> None:
    with pytest.raises(StoreError) as info, Database(url=UNREACHABLE).connect(timeout_ms=500):
        pass
    assert SECRET not in str(info.value)


def test_status_masks_the_database_url_even_when_unreachable(tmp_path: object) -> None:
    report = status(Settings.load(database_url=UNREACHABLE, db_timeout_ms=500))
    text = json.dumps(report.model_dump(mode="json"))
    assert SECRET not in text


def test_reprs_a_notebook_shows_hide_passwords() -> None:
    import datetime as dt
    import uuid

    from uptimelab.domain.sites import ActiveSite
    from uptimelab.storage.models import Site
    from uptimelab.storage.sites import SiteRow

    now = dt.datetime.now(dt.UTC)
    url = f"http://bob:{SECRET}@example.org/x"
    shown = [
        repr(Database(url=f"postgresql://app:{SECRET}@db.example/uptime")),
        repr(Site(url=url, created_at=now, updated_at=now)),
        repr(ActiveSite(id=uuid.uuid4(), url=url, headers={"X-Api-Key": SECRET})),
    ]
    row = SiteRow(**dict.fromkeys(SiteRow.__slots__) | {"url": url})
    shown.append(repr(row))
    for text in shown:
        assert SECRET not in text
        assert "***" in text
