"""Benchmark: CPU per ping of a collector cycle against a bare trio + httpx loop.

A zoo of N sites (log-normal latency, median 20 ms, no failures) is served by another process.
In one run, alternating, for `--repeat` rounds: a full uptimelab cycle (sites read from a scratch
database, pings probed, written and stats refreshed) with the lean engine and with the httpx
engine, and a bare trio + httpx loop fetching the same URLs with the same concurrency (fresh
connection per request, body read). CPU is this process's time (all threads). The fixed cost of
a cycle (a cycle over 1 site, same setup) is subtracted before dividing by N.

    .venv/bin/python benchmarks/probe_cpu.py [--sites 5000] [--concurrency 100] [--repeat 5]

``--https``: the cost of a full TLS handshake. Two zoos in another process, one over HTTPS (TLS
1.3, X25519, ECDSA P-256 leaf) and one plain; ``--sites`` pings (default here 1 000) with
``--concurrency`` workers, each ping a fresh connection and a full handshake (the HTTPS zoo
counts resumed sessions: the run fails if there is one). Alternating per round: the lean engine
over HTTPS, the lean engine with the TLS of versions before 0.2 (trio's SSLStream over
MemoryBIOs) as a comparison, the httpx engine, a bare trio + httpx loop over HTTPS (the
reference), the lean engine and the bare loop over plain HTTP, and the floor: OpenSSL's own
work for a client's full handshake (a client and a server over MemoryBIOs in this process, the
client's calls timed), what no Python client can go under. CPU is this process's time over the
pings only (a Prober and its TLS context are made before). ``--profile`` adds one
cProfile run of the lean engine over HTTPS and prints its top functions.

    .venv/bin/python benchmarks/probe_cpu.py --https [--sites 1000] [--repeat 7] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import datetime as dt
import multiprocessing
import os
import pstats
import ssl
import statistics
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

import certifi
import httpx
import trio
import trustme

from uptimelab.collector import Collector
from uptimelab.config import Settings
from uptimelab.probe import Prober
from uptimelab.probe.phases import PhaseClock
from uptimelab.probe.transport import LeanClient
from uptimelab.storage.database import connect
from uptimelab.storage.models import Site
from uptimelab.testing.bench import bare_httpx_loop, scratch_database
from uptimelab.testing.perf import register_targets, zoo_process
from uptimelab.testing.zoo import open_zoo, realistic_spec


def cpu_of(fn: object) -> float:
    start = time.process_time()
    trio.run(fn)  # type: ignore[arg-type]
    return time.process_time() - start


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--https", action="store_true", help="the HTTPS case (see above)")
    parser.add_argument("--profile", action="store_true", help="with --https: a cProfile run")
    args = parser.parse_args()
    if args.https:
        https_case(args.sites or 1000, args.concurrency, args.repeat, args.profile)
        return
    args.sites = args.sites or 5000
    server = connect(os.environ.get("UPTIMELAB_DATABASE_URL"), migrate=False)
    per_ping: dict[str, list[float]] = {"lean": [], "httpx": [], "bare": []}
    with (
        zoo_process(
            args.sites, seed=1, lifetime_s=3600, median_ms=20, timeout_share=0, fail_fast_share=0
        ) as targets,
        scratch_database(server) as db,
        scratch_database(server) as tiny_db,
        tempfile.TemporaryDirectory() as data,
    ):
        register_targets(db, targets)
        register_targets(tiny_db, targets[:1])
        urls = [t["url"] for t in targets]

        def collector(database: object, engine: str) -> Collector:
            settings = Settings.load(
                database_url=database.url,  # type: ignore[attr-defined]
                data_dir=Path(data),
                max_concurrent_pings=args.concurrency,
                probe_engine=engine,
            )
            return Collector(database, settings)  # type: ignore[arg-type]

        for _ in range(args.repeat):
            for engine in ("lean", "httpx"):
                fixed = cpu_of(collector(tiny_db, engine).cycle)
                total = cpu_of(collector(db, engine).cycle)
                per_ping[engine].append(1000 * (total - fixed) / (args.sites - 1))
            per_ping["bare"].append(
                1000 * cpu_of(lambda: bare_httpx_loop(urls, args.concurrency)) / args.sites
            )
    print(f"{args.sites} sites, concurrency {args.concurrency}, {args.repeat} rounds")
    for name, values in per_ping.items():
        print(f"CPU ms per ping, {name + ':':7} {spread(values)}")
    for engine in ("lean", "httpx"):
        ratios = [a / b for a, b in zip(per_ping[engine], per_ping["bare"], strict=True)]
        print(f"uptimelab ({engine}) / bare httpx loop: {spread(ratios)}")


class _SSLStreamClient(LeanClient):
    """The lean client with the TLS it had before (trio's SSLStream pumping MemoryBIOs)."""

    async def start_tls(
        self, stream: trio.abc.Stream, host: str, clock: PhaseClock
    ) -> trio.abc.Stream:
        tls = trio.SSLStream(stream, self.ssl_context, server_hostname=host, https_compatible=True)
        await tls.do_handshake()
        clock.lap("tls")
        clock.saw_certificate(tls)
        return tls


def _serve_zoos(sites: int, conn: Connection) -> None:
    """The zoo process: an HTTPS zoo and a plain one; sends their URLs and the CA (PEM), then
    waits for a word from the parent and answers with the HTTPS zoo's TLS counters."""

    async def serve() -> None:
        spec = realistic_spec(sites, median_ms=20, timeout_share=0, fail_fast_share=0, seed=1)
        async with (
            open_zoo(dataclasses.replace(spec, tls=True, duration_s=3600)) as tls_zoo,
            open_zoo(dataclasses.replace(spec, duration_s=3600)) as plain_zoo,
        ):
            pem = tls_zoo.ca.cert_pem.bytes()
            conn.send(([t.url for t in tls_zoo.targets], [t.url for t in plain_zoo.targets], pem))
            while await trio.to_thread.run_sync(conn.recv) != "stop":
                conn.send((tls_zoo.tls_handshakes, tls_zoo.tls_resumed))
            conn.send((tls_zoo.tls_handshakes, tls_zoo.tls_resumed))

    trio.run(serve)


async def _ping_all(prober: Prober, sites: list[Site], concurrency: int) -> int:
    """Ping every site once, ``concurrency`` at a time; the number of pings up."""
    queue = iter(sites)
    up = 0

    async def worker() -> None:
        nonlocal up
        for site in queue:
            ping = await prober.ping(site)
            up += ping is not None and ping.status == "up"

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return up


FLOOR_HANDSHAKES = 300


def _handshake_floor(client_context: ssl.SSLContext) -> float:
    """OpenSSL's own work for a client's full handshake, without sockets, event loop or HTTP:
    a client and a server (TLS 1.3, X25519, ECDSA P-256 leaf, as the zoo) over MemoryBIOs in
    this process, only the client's calls timed (CPU ms per handshake, reading the session
    tickets included)."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.minimum_version = ssl.TLSVersion.TLSv1_3
    server_context.set_ecdh_curve("X25519")
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca.configure_trust(client_context)
    spent = 0.0
    for _ in range(FLOOR_HANDSHAKES):
        to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
        client = client_context.wrap_bio(to_client, to_server, server_hostname="127.0.0.1")
        server = server_context.wrap_bio(to_server, to_client, server_side=True)
        done = False
        while not done:
            mark = time.process_time()
            try:
                client.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                pass
            spent += time.process_time() - mark
            with contextlib.suppress(ssl.SSLWantReadError):
                server.do_handshake()
        with contextlib.suppress(ssl.SSLWantReadError):
            server.read(1)  # the client's Finished: the server sends its tickets
        mark = time.process_time()
        with contextlib.suppress(ssl.SSLWantReadError):
            client.read(1)
        spent += time.process_time() - mark
        assert not client.session_reused
    return 1000 * spent / FLOOR_HANDSHAKES


async def _bare_loop(urls: list[str], concurrency: int, verify: ssl.SSLContext) -> None:
    """testing.bench.bare_httpx_loop with a TLS context of ours (one that trusts the zoo)."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=10, verify=verify) as client:
        queue = iter(urls)

        async def worker() -> None:
            for url in queue:
                response = await client.get(url)
                response.read()

        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)


def _sites(urls: list[str]) -> list[Site]:
    now = dt.datetime.now(dt.UTC)
    return [Site(url=url, created_at=now, updated_at=now) for url in urls]


def https_case(n: int, concurrency: int, repeat: int, profile: bool) -> None:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    zoo = ctx.Process(target=_serve_zoos, args=(n, child), daemon=True)
    zoo.start()
    tls_urls, plain_urls, pem = parent.recv()
    with tempfile.NamedTemporaryFile(suffix=".pem") as ca_file:
        ca_file.write(pem)
        ca_file.flush()
        tls_sites, plain_sites = _sites(tls_urls), _sites(plain_urls)

        def prober(engine: str = "lean", client: type[LeanClient] | None = None) -> Prober:
            made = Prober(
                location="bench",
                region_code="XX",
                timeout_ms=10_000,
                engine=engine,
                ca_bundle=ca_file.name,
            )
            if client is not None:
                made._lean = client(
                    ssl_context=made._lean.ssl_context,
                    user_agent=made._lean.user_agent,
                    body_cap=made._lean.body_cap,
                )
            return made

        def engine_run(made: Prober, sites: list[Site]) -> float:
            async def run() -> float:
                async with made:
                    start = time.process_time()
                    up = await _ping_all(made, sites, concurrency)
                    spent = time.process_time() - start
                if up != len(sites):
                    raise SystemExit(f"only {up} of {len(sites)} pings up")
                return spent

            return 1000 * trio.run(run) / len(sites)

        def bare_run(urls: list[str]) -> float:
            context = ssl.create_default_context(cafile=certifi.where())
            context.load_verify_locations(cafile=ca_file.name)

            async def run() -> float:
                start = time.process_time()
                await _bare_loop(urls, concurrency, context)
                return time.process_time() - start

            return 1000 * trio.run(run) / len(urls)

        cases: dict[str, Callable[[], float]] = {
            "https lean": lambda: engine_run(prober(), tls_sites),
            "https lean, SSLStream": lambda: engine_run(prober(client=_SSLStreamClient), tls_sites),
            "https httpx engine": lambda: engine_run(prober("httpx"), tls_sites),
            "https bare httpx": lambda: bare_run(tls_urls),
            "http lean": lambda: engine_run(prober(), plain_sites),
            "http bare httpx": lambda: bare_run(plain_urls),
            "handshake floor (OpenSSL)": lambda: _handshake_floor(
                ssl.create_default_context(cafile=certifi.where())
            ),
        }
        per_ping: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(repeat):
            for name, case in cases.items():
                per_ping[name].append(case())
        if profile:
            profiler = cProfile.Profile(time.process_time)  # CPU, not wall time (a busy machine)
            profiler.runcall(engine_run, prober(), tls_sites)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        parent.send("stop")
        handshakes, resumed = parent.recv()
        zoo.join(10)
    print(f"{n} pings a case, concurrency {concurrency}, {repeat} rounds; load {_load()}")
    print(f"HTTPS zoo: {handshakes} full TLS handshakes, {resumed} resumed")
    for name, values in per_ping.items():
        print(f"CPU ms per ping, {name + ':':23} {spread(values)}")
    for name, reference in (
        ("https lean", "https bare httpx"),
        ("https lean", "https lean, SSLStream"),
        ("http lean", "http bare httpx"),
    ):
        ratios = [a / b for a, b in zip(per_ping[name], per_ping[reference], strict=True)]
        print(f"{name} / {reference}: {spread(ratios)}")
    if resumed:
        raise SystemExit("a TLS session was resumed: the HTTPS figures are not full handshakes")


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
