"""URLs in their normal form: registration, duplicates, impossible hosts, redirect Locations."""

from __future__ import annotations

import string
from urllib.parse import unquote, urlsplit

import httpx
import idna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import uptimelab as ul
from uptimelab.domain.sites import validate_url
from uptimelab.domain.urls import URLRuleError, is_normal, normalise_url, resolve_location
from uptimelab.errors import InvalidURLError, SiteError
from uptimelab.storage.database import Database

# Path and query text: any printable character but the ones with a meaning in a URL ("%" is
# tested separately, with existing escapes) and backslash (which WHATWG parsers treat as "/").
_TEXT = st.text(
    st.characters(
        codec="utf-8",
        exclude_categories=("Cc", "Cs", "Zl", "Zp"),
        exclude_characters="%?#/\\\x7f",
    ),
    max_size=12,
)
_SEGMENT = _TEXT.filter(lambda s: s not in ("", ".", ".."))
_HOSTS = ["example.org", "EXAMPLE.org", "bücher.de", "例え.テスト", "127.0.0.1", "[::1]"]


def _ascii_request_form(url: str) -> bool:
    return url.isascii() and not any(c in url for c in " \t\r\n\x7f") and url.isprintable()


@given(
    scheme=st.sampled_from(["http", "https", "HTTP", "Https"]),
    host=st.sampled_from(_HOSTS),
    segments=st.lists(_SEGMENT, max_size=4),
    query=st.none() | _TEXT,
)
def test_the_normal_form_is_ascii_idempotent_and_keeps_the_text_as_utf8(
    scheme: str, host: str, segments: list[str], query: str | None
) -> None:
    path = "/" + "/".join(segments)
    url = f"{scheme}://{host}{path}" + ("" if query is None else f"?{query}")
    normal = normalise_url(url)
    assert _ascii_request_form(normal)
    assert normalise_url(normal) == normal
    # Spaces around a URL are not part of it (WHATWG's parser strips them; so does ours).
    if query is None:
        path = path.rstrip(" ") or "/"
    else:
        query = query.rstrip(" ")
    parts = urlsplit(normal)
    assert parts.scheme == scheme.lower()
    assert unquote(parts.path, errors="strict") == path
    if query is not None:
        assert unquote(parts.query, errors="strict") == query
    hostname = parts.hostname or ""
    if ":" not in hostname:  # IPv6 literals are not names
        assert idna.decode(hostname) == idna.decode(host.lower())
    # The httpx engine sends exactly the target the lean engine sends.
    target = parts.path + (f"?{parts.query}" if "?" in normal else "")
    assert httpx.URL(normal).raw_path.decode("ascii") == target


@given(
    segments=st.lists(
        st.text(string.ascii_letters, max_size=3).map(lambda s: s + "%2F%e9%C3%A9"), max_size=3
    )
)
def test_existing_percent_escapes_are_kept_as_they_are(segments: list[str]) -> None:
    url = "http://example.org/" + "/".join(segments)
    assert normalise_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org",
        "https://example.org/",
        "HTTPS://EXAMPLE.ORG/",
        "https://Example.Org:443/",
        "https://example.org/#top",
        " https://example.org/ ",
    ],
)
def test_spellings_of_one_site_share_one_normal_form(url: str) -> None:
    assert normalise_url(url) == "https://example.org/"


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("http://127.0.0.1:8080/€.txt", "http://127.0.0.1:8080/%E2%82%AC.txt"),
        ("http://127.0.0.1:8080/?q=€", "http://127.0.0.1:8080/?q=%E2%82%AC"),
        ("http://127.0.0.1:8080/café.txt", "http://127.0.0.1:8080/caf%C3%A9.txt"),
        ("http://example.org/hello world.txt?a b", "http://example.org/hello%20world.txt?a%20b"),
        ("http://BÜCHER.de/", "http://xn--bcher-kva.de/"),
        ("http://xn--bcher-kva.de:80/a/./b/../c", "http://xn--bcher-kva.de/a/c"),
        ("http://bob:pä%40ss@example.org/", "http://bob:p%C3%A4%40ss@example.org/"),
        ("http://[::1]:80/x", "http://[::1]/x"),
        ("https://example.org:8443", "https://example.org:8443/"),
    ],
)
def test_non_ascii_spaces_hosts_ports_and_userinfo_are_normalised(url: str, normal: str) -> None:
    assert normalise_url(url) == normal


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://300.1.1.1/", "ipv4"),
        ("http://-bad-.com/", "cannot exist"),
        ("http://bad-.com/", "cannot exist"),
        ("http://a..b/", "cannot exist"),
        ("http://1.2.3/", "cannot exist"),
        ("http://" + "a" * 64 + ".org/", "cannot exist"),
        ("http://exa mple.org/", "cannot exist"),
        ("http://example.org:0/", "port"),
        ("http://example.org:65536/", "port"),
        ("http://example.org/\t", "control"),
        ("mailto:bob@example.org", "no scheme"),
        ("ftp://example.org/", "scheme"),
        ("http:///path", "no host"),
    ],
)
def test_hosts_that_cannot_exist_and_other_bad_urls_are_refused(url: str, rule: str) -> None:
    with pytest.raises(URLRuleError, match="(?i)" + rule):
        normalise_url(url)
    with pytest.raises(InvalidURLError, match="(?i)" + rule):
        validate_url(url)


def test_a_url_whose_normal_form_outgrows_the_limit_is_refused() -> None:
    url = "http://example.org/" + "€" * 600  # 619 characters; 5 419 once encoded
    with pytest.raises(InvalidURLError, match="normal form is longer than 2048"):
        validate_url(url)


@pytest.mark.parametrize(
    ("location", "followed"),
    [
        (b"/hello world.txt", "http://h.example/hello%20world.txt"),
        ("/café.txt".encode(), "http://h.example/caf%C3%A9.txt"),
        (b"/caf\xe9.txt", "http://h.example/caf%E9.txt"),  # Latin-1 bytes: kept as the bytes
        (b"/caf%C3%A9.txt", "http://h.example/caf%C3%A9.txt"),
        (b"../up?q=1 2", "http://h.example/up?q=1%202"),
        (b"next", "http://h.example/a/next"),
        (b"//Other.Example:80/x", "http://other.example/x"),
        ("https://bücher.de/€".encode(), "https://xn--bcher-kva.de/%E2%82%AC"),
        (b"  /padded  ", "http://h.example/padded"),
    ],
)
def test_redirect_locations_are_resolved_and_normalised(location: bytes, followed: str) -> None:
    assert resolve_location("http://h.example/a/b", location) == followed


@pytest.mark.parametrize("location", [b"ftp://h.example/", b"http://a..b/", b"/x\ny"])
def test_a_location_that_cannot_be_followed_is_refused(location: bytes) -> None:
    with pytest.raises(URLRuleError):
        resolve_location("http://h.example/a/b", location)


@given(st.binary(max_size=40))
def test_any_location_bytes_either_resolve_to_a_normal_url_or_are_refused(raw: bytes) -> None:
    try:
        followed = resolve_location("http://h.example/a/b", raw)
    except URLRuleError:
        return
    assert _ascii_request_form(followed)
    assert normalise_url(followed) == followed


def test_a_site_registered_in_three_spellings_is_one_site(db: Database) -> None:
    site = ul.add_site("https://example.org", db=db)
    assert site.url == "https://example.org/"
    for spelling in ("https://example.org/", "HTTPS://EXAMPLE.ORG/"):
        with pytest.raises(SiteError, match="already registered"):
            ul.add_site(spelling, db=db)
    assert [s.url for s in ul.list_sites(db=db)] == ["https://example.org/"]
    assert ul.get_site("HTTPS://Example.org:443", db=db).id == site.id


def test_a_site_is_stored_percent_encoded_with_an_idna_host(db: Database) -> None:
    site = ul.add_site("http://Bücher.de/café?q=€", db=db)
    assert site.url == "http://xn--bcher-kva.de/caf%C3%A9?q=%E2%82%AC"
    assert site.name == "xn--bcher-kva.de"


# Mostly the plain shape, to reach is_normal's "yes" often (about one URL in nine), and its edges.
_PLAIN_HOSTS = st.from_regex(r"[a-z0-9_-]{1,5}(\.[a-z0-9_-]{1,5}){0,2}", fullmatch=True)
_ANY_HOSTS = st.text(alphabet="az09-_.Z", min_size=1, max_size=12)
_PLAIN_RESTS = st.text(alphabet="aZ09-_.~/%=&?2Fe", max_size=14)
_ANY_RESTS = st.text(alphabet="aZ09-_.~/%?=&#:@ é2Fe", max_size=14)


@settings(max_examples=200)
@given(
    scheme=st.sampled_from(["http", "https", "HTTP"]),
    host=st.one_of(_PLAIN_HOSTS, _ANY_HOSTS),
    port=st.sampled_from(["", ":80", ":443", ":8080", ":080", ":0", ":65536", ":1"]),
    rest=st.one_of(_PLAIN_RESTS, _ANY_RESTS),
)
def test_a_url_is_normal_says_is_normal_is_its_own_normal_form(
    scheme: str, host: str, port: str, rest: str
) -> None:
    url = f"{scheme}://{host}{port}/{rest}"
    if is_normal(url):  # the fast test may say "ask normalise_url", never a wrong "yes"
        assert normalise_url(url) == url


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("https://example.org/", True),
        ("https://a-b.example.org:8443/x/y.html?q=1&r=%2F", True),
        ("http://example.org:443/.well-known/a~b", True),
        ("https://Example.org/", False),
        ("https://example.org", False),
        ("https://example.org:443/", False),
        ("https://example.org/a/../b", False),
        ("https://example.org/caf%C3%A9#top", False),
        ("https://bob:pw@example.org/", False),
        ("https://10.0.0.1/", False),
    ],
)
def test_is_normal_knows_the_plain_shape(url: str, normal: bool) -> None:
    assert is_normal(url) is normal
