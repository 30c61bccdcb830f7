"""A database password holding a reserved character, unencoded: no part of it is ever shown,
and the error says to percent-encode it."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uptimelab.domain.redaction import mask_url, redact, reserved_in_password, scrub
from uptimelab.errors import ConfigError
from uptimelab.storage.database import check_database_url

# Letters that appear nowhere else in the URLs or the messages: any of them shown is a leak.
SECRET_LETTERS = "QXZ"
RESERVED = "@/?#"


@pytest.mark.parametrize("reserved", list(RESERVED))
@pytest.mark.parametrize("where", ["start", "middle", "end", "twice"])
def test_a_reserved_character_in_a_database_password_is_one_error_hiding_the_password(
    reserved: str, where: str
) -> None:
    password = {
        "start": f"{reserved}QQXX",
        "middle": f"QQ{reserved}XX",
        "end": f"QQXX{reserved}",
        "twice": f"QQ{reserved}XX{reserved}ZZ",
    }[where]
    url = f"postgresql://root:{password}@127.0.0.1:5432/x"
    assert reserved_in_password(url) == password[[c in RESERVED for c in password].index(True)]
    with pytest.raises(ConfigError) as caught:
        check_database_url(url)
    message = str(caught.value)
    assert not any(c in message for c in SECRET_LETTERS), message
    assert "must be percent-encoded" in message
    assert "%40" in message
    assert "root:***@127.0.0.1:5432/x" in message
    # percent-encoded, the same password is a good URL
    check_database_url(f"postgresql://root:{quote(password, safe='')}@127.0.0.1:5432/x")


@given(password=st.text(alphabet=SECRET_LETTERS + RESERVED + ":", min_size=1, max_size=12))
def test_no_letter_of_a_database_password_is_shown_whatever_it_holds(password: str) -> None:
    url = f"postgresql://root:{password}@127.0.0.1:5432/x"
    try:
        check_database_url(url)
    except ConfigError as exc:
        shown = str(exc)
    else:
        shown = mask_url(url) + scrub(f"cannot connect to {url}", url)
    assert not any(c in shown for c in SECRET_LETTERS), shown


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@h:5432/db?options=a@b",
        "postgresql://host:5432/db?user=a@b",
        "postgresql://host/db?user=a@b",
        "postgresql://[::1]:5432/db?sslmode=require&application_name=a@b",
        "postgresql://root:a:b@h/x",
    ],
)
def test_an_at_sign_after_the_host_is_no_reserved_character_of_a_password(url: str) -> None:
    assert reserved_in_password(url) is None
    check_database_url(url)


def test_the_cli_says_so_with_exit_code_2_for_every_command() -> None:
    env = os.environ | {"UPTIMELAB_DATABASE_URL": "postgresql://root:hunter@2TopSecret@127.0.0.1/x"}
    for command in (["sites", "list"], ["status"], ["db", "url"]):
        out = subprocess.run(
            [sys.executable, "-m", "uptimelab", *command],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert out.returncode == 2, (command, out.stderr)
        assert "Secret" not in out.stderr
        assert "hunter" not in out.stderr
        assert "percent-encoded ('@' as %40" in out.stderr
        assert len(out.stderr.splitlines()) == 1


def test_a_site_url_whose_password_holds_colons_is_redacted_whole() -> None:
    assert redact("http://user:0:0?@example.org/path") == "http://***@example.org/path"
