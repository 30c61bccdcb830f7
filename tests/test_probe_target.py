"""The probe's URL taking-apart: the plain path (a regular expression, made for every probe)
gives what the general path (urlsplit, the rule) gives, for every URL, or leaves it to it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uptimelab.probe.http1 import ResponseError
from uptimelab.probe.transport import LeanClient, Target

hosts = st.one_of(
    st.sampled_from(
        [
            "127.0.0.1",
            "localhost",
            "example.com",
            "xn--bcher-kva.example",
            "[::1]",
            "[2001:db8::1]",
            "EXAMPLE.com",
            "a-b.c",
            "h",
            "[::FFFF:1.2.3.4]",
            "ex_ample.com",
        ]
    ),
    st.text("abcxyz019.-", min_size=1, max_size=12),
)
ports = st.one_of(
    st.just(""),
    st.integers(0, 70_000).map(lambda p: f":{p}"),
    st.sampled_from([":", ":80", ":443", ":0080", ":08080", ":65535", ":65536", ":x"]),
)
paths = st.one_of(
    st.just(""),
    st.text("/abcAZ09-._~%!$&'()*+,;=:@\u20ac\x01\x7f\u00e9", max_size=20).map(lambda p: "/" + p),
)
queries = st.one_of(st.just(""), st.text("abc=&/?%:@ ", max_size=12).map(lambda q: "?" + q))
tails = st.sampled_from(["", "", "#frag", "#", " ", "\t"])
userinfo = st.sampled_from(["", "", "user@", "user:pw@", "u%40x:p@"])
schemes = st.sampled_from(["http", "https", "HTTP", "ftp", "http", "https"])


def outcome(parse: object, url: str) -> object:
    try:
        return parse(url)  # type: ignore[operator]
    except ResponseError as exc:
        return ("error", exc.category)


@given(schemes, userinfo, hosts, ports, paths, queries, tails)
def test_the_plain_path_agrees_with_urlsplit(
    scheme: str, user: str, host: str, port: str, path: str, query: str, tail: str
) -> None:
    url = f"{scheme}://{user}{host}{port}{path}{query}{tail}"
    assert outcome(Target.parse, url) == outcome(Target.parse_general, url)


@pytest.mark.parametrize(
    ("url", "host", "port", "host_header", "target", "tls"),
    [
        (
            "http://127.0.0.1:40001/t/x?a=1",
            "127.0.0.1",
            40001,
            "127.0.0.1:40001",
            "/t/x?a=1",
            False,
        ),
        ("https://[::1]:8443/", "::1", 8443, "[::1]:8443", "/", True),
        ("https://example.com", "example.com", 443, "example.com", "/", True),
        ("http://example.com:80/?", "example.com", 80, "example.com", "/", False),
    ],
)
def test_a_plain_url_is_taken_apart(
    url: str, host: str, port: int, host_header: str, target: str, tls: bool
) -> None:
    parsed = Target.parse(url)
    assert (parsed.host, parsed.port, parsed.host_header, parsed.target, parsed.tls) == (
        host,
        port,
        host_header,
        target,
        tls,
    )
    assert parsed.authorization is None


def test_the_client_keeps_no_url_it_has_seen() -> None:
    # A cache of every URL grew with every site a collector ever held (370 bytes a site).
    import ssl

    client = LeanClient(ssl_context=ssl.create_default_context(), user_agent="t", body_cap=1)
    for k in range(100):
        client.target(f"http://127.0.0.1/{k}")
    assert not any(isinstance(v, dict) and v for v in vars(client).values())
