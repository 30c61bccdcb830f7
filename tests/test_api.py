"""The HTTP API against a real database and the zoo: endpoints, error codes, the token, metrics,
the OpenAPI document (with schemathesis), and ``uptimelab serve --collect`` as a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trio
from fastapi import FastAPI
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from prometheus_client.parser import text_string_to_metric_families

import uptimelab as ul
from uptimelab.api.app import create_app
from uptimelab.api.auth import MAX_BODY_BYTES
from uptimelab.api.monitoring import LOCAL_PATHS
from uptimelab.api.server import check_bind, is_loopback, serve
from uptimelab.collector import Collector
from uptimelab.config import Settings
from uptimelab.errors import ConfigError
from uptimelab.ops.health import health, status
from uptimelab.storage.database import Database
from uptimelab.testing.zoo import Zoo, ZooSpec

from .conftest import in_trio_thread, zoo_in_thread

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POSTS = ("/monitoring/trigger", "/monitoring/test", f"/site-stats/{uuid.uuid4()}/refresh")


def load_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "monitoring_interval_ms": 60_000,
        "ping_timeout_ms": 1000,
        "monitoring_location": "Lab",
        "monitoring_region_code": "LB",
        "api_token": TOKEN,
    }
    return Settings.load(**(base | overrides))


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, and a client that calls it in-process."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
        ) as client,
    ):
        yield client


def register(db: Database, zoo: Zoo, *names: str) -> dict[str, uuid.UUID]:
    return {name: ul.add_site(zoo.url(name), name=name, db=db).id for name in names}


def count(db: Database, sql: str) -> int:
    with db.connect() as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(next(iter(row.values())))


def assert_error(response: httpx.Response, code: int, text: str = "") -> None:
    assert response.status_code == code, response.text
    body = response.json()
    assert body["status"] == code
    assert text in body["message"]
    assert "Traceback" not in response.text


# -- monitoring ---------------------------------------------------------------------------------


async def test_status_and_health_answer_what_the_cli_prints(db: Database, zoo: Zoo) -> None:
    register(db, zoo, "ok")
    config = load_settings()
    async with running(create_app(config, db)) as client:
        answer = await client.get("/monitoring/status")
        assert answer.status_code == 200
        expected = status(config).model_dump(mode="json")
        for name in LOCAL_PATHS:  # the server's disk layout stays with the CLI
            del expected["config"][name]
        assert answer.json() == expected

        # No cycle has finished yet: unhealthy, 503, the same checks as `uptimelab health`.
        unhealthy = await client.get("/monitoring/health")
        assert unhealthy.status_code == 503
        assert unhealthy.json()["status"] == "unhealthy"
        expected = health(config).as_dict()
        assert [(c["name"], c["status"]) for c in unhealthy.json()["checks"]] == [
            (c["name"], c["status"]) for c in expected["checks"]
        ]

        await Collector(db, config).cycle()
        healthy = await client.get("/monitoring/health")
        assert healthy.status_code == 200
        assert healthy.json()["status"] == "healthy"


async def test_a_trigger_answers_202_with_the_cycle_id_and_409_while_it_runs(
    db: Database, zoo: Zoo
) -> None:
    register(db, zoo, "ok", "hang")  # hang holds the cycle for the 1 s ping timeout
    config = load_settings()
    collector = Collector(db, config)
    async with running(create_app(config, db, collector=collector)) as client:
        started = await client.post("/monitoring/trigger", headers=AUTH)
        assert started.status_code == 202, started.text
        cycle_id = uuid.UUID(started.json()["cycle_id"])
        assert collector.current_cycle_id == cycle_id

        assert_error(await client.post("/monitoring/trigger", headers=AUTH), 409, "already")
        assert_error(await client.post("/monitoring/test", headers=AUTH), 409, "already")

        # Once the cycle (and its writer) is done, the lock is free again.
        for _ in range(200):
            again = await client.post("/monitoring/trigger", headers=AUTH)
            if again.status_code != 409:
                break
            await trio.sleep(0.05)
        assert again.status_code == 202
        assert again.json()["cycle_id"] != str(cycle_id)
    # The app's shutdown stopped the second cycle; it stored what it probed.
    with db.connect() as conn:
        cycles = conn.execute(
            "SELECT id, sites_checked, error FROM monitoring_cycles ORDER BY started_at"
        ).fetchall()
    assert len(cycles) == 2
    assert cycles[0] == {"id": cycle_id, "sites_checked": 2, "error": None}
    assert cycles[1]["error"].startswith("stopped after")  # the hang target was in flight
    assert count(db, "SELECT count(*) FROM pings") == 2 + cycles[1]["sites_checked"]


async def test_post_endpoints_need_the_token(db: Database) -> None:
    config = load_settings()
    wrong = [
        {},
        {"Authorization": "Bearer wrong-token-0123456789abcdef"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ]
    async with running(create_app(config, db)) as client:
        for path in POSTS:
            for headers in wrong:
                answer = await client.post(path, headers=headers)
                assert_error(answer, 401)
                assert answer.headers["www-authenticate"].startswith("Bearer")
    # With no token configured, no header opens them.
    async with running(create_app(load_settings(api_token=""), db)) as client:
        for path in POSTS:
            assert_error(await client.post(path, headers=AUTH), 401, "UPTIMELAB_API_TOKEN")
    assert count(db, "SELECT count(*) FROM monitoring_cycles") == 0


async def test_a_dry_run_returns_each_result_and_stores_nothing(db: Database, zoo: Zoo) -> None:
    ids = register(db, zoo, "ok", "status", "refused")
    ul.disable_site(ids["refused"], db=db)
    config = load_settings()
    async with running(create_app(config, db)) as client:
        every = await client.post("/monitoring/test", headers=AUTH)
        assert every.status_code == 200, every.text
        body = every.json()
        assert (body["sites_checked"], body["up"], body["down"]) == (2, 1, 1)
        assert body["by_category"] == {"http_status": 1}
        by_name = {r["name"]: r for r in body["results"]}
        assert by_name["ok"]["status"] == "up"
        assert by_name["status"]["status_code"] == 500
        assert by_name["status"]["error_category"] == "http_status"

        # Named sites, by URL or id, inactive ones too; a duplicate is probed once.
        chosen = await client.post(
            "/monitoring/test",
            headers=AUTH,
            json={"sites": [zoo.url("refused"), str(ids["refused"]), str(ids["ok"])]},
        )
        assert chosen.status_code == 200, chosen.text
        results = {r["name"]: r["error_category"] for r in chosen.json()["results"]}
        assert results == {"refused": "refused", "ok": None}

        unknown = await client.post(
            "/monitoring/test", headers=AUTH, json={"sites": ["http://nowhere.invalid/"]}
        )
        assert_error(unknown, 404, "nowhere.invalid")
        for bad in (b"{", b"[]", b"null", b'{"site": []}', b'{"sites": []}', b'{"sites": [1]}'):
            answer = await client.post(
                "/monitoring/test",
                headers={**AUTH, "Content-Type": "application/json"},
                content=bad,
            )
            assert_error(answer, 422)
        deep = b"[" * 50_000 + b"]" * 50_000
        assert_error(await client.post("/monitoring/test", headers=AUTH, content=deep), 413)
        assert_error(
            await client.post("/monitoring/test", headers=AUTH, content=deep[:60_000]), 422
        )
    assert count(db, "SELECT count(*) FROM pings") == 0
    assert count(db, "SELECT count(*) FROM monitoring_cycles") == 0


# -- stats --------------------------------------------------------------------------------------


async def test_site_stats_list_show_and_refresh(db: Database, zoo: Zoo) -> None:
    ids = register(db, zoo, "ok", "status", "redirect")
    quiet = ul.add_site("http://127.0.0.1:1/never-pinged", db=db)
    ul.disable_site(quiet.id, db=db)
    config = load_settings()
    await Collector(db, config).cycle()
    async with running(create_app(config, db)) as client:
        every = await client.get("/site-stats")
        assert every.status_code == 200
        rows = every.json()
        # Worst 24 h uptime first, as `uptimelab stats`; the never-pinged site has no row.
        assert [r["name"] for r in rows][0] == "status"
        assert {r["site_id"] for r in rows} == {str(i) for i in ids.values()}
        assert rows[0]["url"] == zoo.url("status")
        assert rows[0]["current_status"] == "down"
        assert rows[0]["pings_1h"] == 1

        best_first = (await client.get("/site-stats", params={"sort": "-uptime_24h"})).json()
        assert best_first[-1]["name"] == "status"
        down = (await client.get("/site-stats", params={"status": "down"})).json()
        assert [r["name"] for r in down] == ["status"]

        for query in (
            "sort=nope",
            "sort=uptime_24h;DROP TABLE sites",
            "status=sideways",
            "status=up'%20OR%20'1'='1",
            "status=",
            "sort=uptime_1h&sort=uptime_7d",
        ):
            assert_error(await client.get(f"/site-stats?{query}"), 422)

        one = await client.get(f"/site-stats/{ids['ok']}")
        assert one.status_code == 200
        assert one.json() == next(r for r in rows if r["name"] == "ok")
        assert_error(await client.get(f"/site-stats/{uuid.uuid4()}"), 404, "no site")
        assert_error(await client.get(f"/site-stats/{quiet.id}"), 404, "not been pinged")
        assert_error(await client.get("/site-stats/not-a-uuid"), 422, "UUID")
        assert_error(await client.get("/site-stats/1%27%20OR%201=1"), 422)

        refreshed = await client.post(f"/site-stats/{ids['ok']}/refresh", headers=AUTH)
        assert refreshed.status_code == 200
        assert refreshed.json()["site_id"] == str(ids["ok"])
        assert refreshed.json()["updated_at"] > one.json()["updated_at"]
        missing = await client.post(f"/site-stats/{uuid.uuid4()}/refresh", headers=AUTH)
        assert_error(missing, 404)
        assert_error(await client.post("/site-stats/x/refresh", headers=AUTH), 422)
    assert count(db, "SELECT count(*) FROM sites") == 4


# -- metrics ------------------------------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], metric: str, **labels: str
) -> float:
    matches = [v for (n, ls), v in metrics.items() if n == metric and set(labels.items()) <= ls]
    assert len(matches) == 1, (metric, labels, matches)
    return matches[0]


async def test_metrics_per_site_per_cycle_breaker_and_spool(db: Database, zoo: Zoo) -> None:
    ids = register(db, zoo, "ok", "status", "refused")
    config = load_settings()
    collector = Collector(db, config)
    app = create_app(config, db, collector=collector)
    create_app(config, db)  # a second app has its own registry
    async with running(app) as client:
        await collector.cycle()
        answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    metrics = samples(answer.text)
    ok, status_site = str(ids["ok"]), str(ids["status"])
    assert value(metrics, "probe_success", site_id=ok, name="ok", url=zoo.url("ok")) == 1
    assert value(metrics, "probe_success", site_id=status_site) == 0
    assert 0 < value(metrics, "probe_duration_seconds", site_id=ok) < 1
    assert value(metrics, "uptimelab_uptime_ratio", site_id=ok, window="1h") == 1
    assert value(metrics, "uptimelab_uptime_ratio", site_id=status_site, window="7d") == 0
    assert value(metrics, "uptimelab_cycle_duration_seconds_count") == 1
    assert value(metrics, "uptimelab_pings_total", status="up", category="none") == 1
    assert value(metrics, "uptimelab_pings_total", category="http_status") == 1
    assert value(metrics, "uptimelab_pings_total", category="refused") == 1
    assert value(metrics, "uptimelab_pings_total", category="timeout") == 0
    assert value(metrics, "uptimelab_breaker_state", state="closed") == 1
    assert value(metrics, "uptimelab_breaker_state", state="open") == 0
    assert value(metrics, "uptimelab_spool_segments") == 0
    assert value(metrics, "uptimelab_spool_full") == 0


# -- errors, hosts, binding -------------------------------------------------------------------


async def test_errors_are_json_and_an_unreachable_database_is_503(db: Database) -> None:
    config = load_settings()
    async with running(create_app(config, db)) as client:
        assert_error(await client.get("/nowhere"), 404)
        wrong_method = await client.delete("/site-stats")
        assert_error(wrong_method, 405)
        assert set(wrong_method.headers["allow"].split(", ")) == {"GET", "HEAD"}
    away = Database(url="postgresql://nobody@127.0.0.1:1/none")
    offline = load_settings(
        database_url=away.url, db_timeout_ms=500, db_retry_attempts=1, db_retry_delay_ms=0
    )
    async with running(create_app(offline, away)) as client:
        assert_error(await client.get("/site-stats"), 503, "cannot connect")
        assert_error(await client.get(f"/site-stats/{uuid.uuid4()}"), 503)
        assert_error(await client.post("/monitoring/test", headers=AUTH), 503)
        # No site list known from before: the cycle cannot start.
        assert_error(await client.post("/monitoring/trigger", headers=AUTH), 503)
        assert (await client.get("/monitoring/status")).json()["database"]["reachable"] is False
        assert (await client.get("/monitoring/health")).status_code == 503
        # Metrics still answer: the gauges kept here say why there are no per-site families.
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        assert value(samples(metrics.text), "uptimelab_database_up") == 0
        assert "probe_success{" not in metrics.text


async def test_a_loopback_app_answers_only_loopback_host_names(db: Database) -> None:
    app = create_app(load_settings(), db, allowed_hosts={"127.0.0.1", "localhost", "::1"})
    async with running(app) as client:
        for host in ("127.0.0.1:8080", "localhost", "[::1]:80"):
            answer = await client.get("/openapi.json", headers={"Host": host})
            assert answer.status_code == 200, host
        for host in ("attacker.example", "attacker.example:8080", "[::1", ""):
            assert_error(await client.get("/openapi.json", headers={"Host": host}), 400)


async def test_a_body_over_the_cap_is_refused_even_without_a_content_length(db: Database) -> None:
    async def blanks() -> AsyncIterator[bytes]:
        # Blank: were it read whole, it would be no body at all, and a dry run of every site.
        for _ in range(MAX_BODY_BYTES // 1024 + 1):
            yield b" " * 1024

    async with running(create_app(load_settings(), db)) as client:
        answer = await client.post("/monitoring/test", headers=AUTH, content=blanks())
    assert "content-length" not in answer.request.headers
    assert_error(answer, 413, str(MAX_BODY_BYTES))


async def test_a_huge_content_length_is_refused_before_the_body_is_sent(db: Database) -> None:
    async with serving(load_settings(), db) as url:
        where = urlsplit(url)
        assert where.hostname is not None
        assert where.port is not None
        request = (
            "POST /monitoring/test HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000000000\r\n\r\n"
        )
        answer = b""
        with trio.fail_after(60):  # a hang guard: the server would wait for the body forever
            async with await trio.open_tcp_stream(where.hostname, where.port) as stream:
                await stream.send_all(request.encode())
                while b"\r\n\r\n" not in answer:
                    chunk = await stream.receive_some()
                    assert chunk, answer
                    answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer


async def test_head_answers_like_get_without_a_body(db: Database) -> None:
    async with running(create_app(load_settings(), db)) as client:
        got = await client.get("/openapi.json")
        head = await client.head("/openapi.json")
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-length"] == str(len(got.content))
        refused = await client.head("/monitoring/trigger")
        assert (refused.status_code, refused.headers["allow"]) == (405, "POST")


async def test_the_docs_are_served_from_packaged_assets_behind_the_host_guard(
    db: Database,
) -> None:
    app = create_app(load_settings(), db, allowed_hosts={"127.0.0.1"})
    async with running(app) as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert not re.search(r"https?:|//[a-z]", page.text), "an absolute URL in the page"
        assets = re.findall(r"""(?:src|href)="([^"]+)"|url: '([^']+)'""", page.text)
        urls = {a or b for a, b in assets}
        assert {"/docs/assets/swagger-ui-bundle.js", "/openapi.json"} <= urls
        for url in urls:
            assert url.startswith("/"), url
            answer = await client.get(url)
            assert answer.status_code == 200, url
            assert answer.content, url
        outside = await client.get("/docs", headers={"Host": "attacker.example"})
        assert_error(outside, 400)
        assets_outside = await client.get(
            "/docs/assets/swagger-ui.css", headers={"Host": "attacker.example"}
        )
        assert_error(assets_outside, 400)


def test_binding_beyond_loopback_needs_a_token() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert is_loopback(host)
        check_bind(host, 8080, None)
    for host in ("0.0.0.0", "::", "192.0.2.1", "example.org"):
        assert not is_loopback(host)
        with pytest.raises(ConfigError, match="UPTIMELAB_API_TOKEN"):
            check_bind(host, 8080, None)
        check_bind(host, 8080, TOKEN)
    with pytest.raises(ConfigError, match="port"):
        check_bind("127.0.0.1", 70000, None)
    assert load_settings(api_token=" ").api_token is None
    token = load_settings().api_token
    assert token is not None
    assert token.get_secret_value() == TOKEN
    with pytest.raises(ConfigError, match="at least 16") as refused:
        load_settings(api_token="short-token")
    assert "short-token" not in str(refused.value)


def test_the_token_is_read_from_the_environment_and_never_shown(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPTIMELAB_API_TOKEN", TOKEN)
    config = Settings.load(database_url=db.url)
    token = config.api_token
    assert token is not None
    assert token.get_secret_value() == TOKEN
    assert TOKEN not in repr(config)
    assert TOKEN not in status(config).model_dump_json()
    assert "api_token" not in status(config).config


def test_serve_refuses_a_public_address_without_a_token(db: Database) -> None:
    env = {k: v for k, v in os.environ.items() if k != "UPTIMELAB_API_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "uptimelab", "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --host='0.0.0.0': set UPTIMELAB_API_TOKEN to listen on an address other "
        "machines can reach (the POST endpoints need it)"
    ]


# -- the OpenAPI document -----------------------------------------------------------------------


async def test_the_openapi_document_lists_exactly_the_routes(db: Database) -> None:
    app = create_app(load_settings(), db)
    async with running(app) as client:
        document = (await client.get("/openapi.json")).json()
    documented = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    served = {
        (route.path, method)
        for route in app.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert documented == served


async def test_every_error_answer_is_documented_as_the_one_error_shape(db: Database) -> None:
    async with running(create_app(load_settings(), db)) as client:
        document = (await client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in json.dumps(document)
    error = {"$ref": "#/components/schemas/Error"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for code, response in operation["responses"].items():
                if code.startswith(("4", "5")) and not path.startswith("/monitoring/health"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == error, (method, path, code)
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


@contextlib.asynccontextmanager
async def serving(config: Settings, db: Database) -> AsyncIterator[str]:
    """``serve()`` on a free loopback port until the block ends; yields its URL."""
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(partial(serve, config, db, port=0, stop=stop))
        try:
            yield urls[0]
        finally:
            stop.set()


def test_schemathesis_finds_no_server_error_and_no_schema_violation(db: Database) -> None:
    import schemathesis
    from schemathesis.generation.modes import GenerationMode

    with zoo_in_thread(ZooSpec.every_failure(duration_s=60)) as zoo:
        register(db, zoo, "ok", "status")
        config = load_settings(ping_timeout_ms=500)
        # A stored cycle first: health answers 200, and the sites have stats.
        ul.collect_once(db=db, ping_timeout_ms=500)
        with in_trio_thread(serving(config, db)) as url:
            schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
            document = httpx.get(f"{url}/openapi.json").json()
            tested = []
            for result in schema.get_all_operations():
                operation = result.ok()
                item = document["paths"][operation.path][operation.method.lower()]
                modes = [GenerationMode.POSITIVE]
                if "parameters" in item or "requestBody" in item:  # else nothing to break
                    modes.append(GenerationMode.NEGATIVE)
                for mode in modes:

                    @settings(
                        max_examples=12,
                        derandomize=True,
                        database=None,
                        deadline=None,
                        suppress_health_check=list(HealthCheck),
                    )
                    @given(case=operation.as_strategy(generation_mode=mode))
                    def check(case: Any) -> None:
                        case.call_and_validate(headers=AUTH, timeout=10)

                    check()
                tested.append(operation.label)
    # schemathesis leaves out the schema's own location, /openapi.json.
    assert sorted(tested) == sorted(
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if path != "/openapi.json"
    )


# -- uptimelab serve --collect ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_collect_runs_cycles_serves_stats_and_stops_cleanly_on_sigterm(
    db: Database, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = os.environ | {"MONITORING_INTERVAL_MS": "60000", "PING_TIMEOUT_MS": "2000"}
    env["UPTIMELAB_API_TOKEN"] = TOKEN
    with zoo_in_thread(ZooSpec.uniform(3, duration_s=60)) as zoo:
        ids = {str(ul.add_site(t.url, db=db).id) for t in zoo.targets}
        proc = subprocess.Popen(
            [sys.executable, "-m", "uptimelab", "serve", "--port", str(port), "--collect"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            stats: list[dict[str, Any]] = []
            deadline = time.monotonic() + 30
            while {r["site_id"] for r in stats} != ids:
                assert time.monotonic() < deadline, "no cycle was stored in 30 s"
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.1)
                with contextlib.suppress(httpx.TransportError):
                    stats = httpx.get(f"{base}/site-stats", timeout=5).json()
            metrics = samples(httpx.get(f"{base}/metrics", timeout=5).text)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"serving on {base}" in out
    assert "cycle 1: probing 3 site(s)" in out
    assert all(r["current_status"] == "up" for r in stats)
    for site in ids:
        assert value(metrics, "probe_success", site_id=site) == 1
    # Pings are counted as they are taken; the round closes (and is timed) when serving stops.
    assert value(metrics, "uptimelab_pings_total", status="up") == 3
    assert value(metrics, "uptimelab_breaker_state", state="closed") == 1
    assert "Traceback" not in err
    assert count(db, "SELECT count(*) FROM monitoring_cycles") == 1
