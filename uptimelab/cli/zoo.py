"""``uptimelab zoo``: serve simulated sites on loopback, for trying the collector out."""

from __future__ import annotations

import dataclasses
import json
import signal
from pathlib import Path
from typing import Annotated

import trio
import typer

from ..testing.zoo import ZooSpec, open_zoo, realistic_spec
from ._common import console, output_file_option, state, writing


def zoo(
    ctx: typer.Context,
    sites: Annotated[int, typer.Option(min=0, max=200_000, help="Realistic sites to serve.")] = 50,
    median_ms: Annotated[float, typer.Option(help="Median latency (log-normal), ms.")] = 150.0,
    sigma: Annotated[float, typer.Option(help="Spread of the log-normal latency.")] = 0.6,
    timeout_share: Annotated[float, typer.Option(help="Share of sites that never answer.")] = 0.02,
    fail_fast_share: Annotated[
        float, typer.Option(help="Share of sites that fail fast (refused, reset, 5xx).")
    ] = 0.03,
    every_failure: Annotated[
        bool, typer.Option(help="Also serve one target of every failure mode.")
    ] = True,
    seed: Annotated[int, typer.Option(help="Seed of the latencies and failures.")] = 0,
    port: Annotated[int, typer.Option(help="HTTP port (0: any free one).")] = 0,
    duration: Annotated[
        float, typer.Option(min=1, max=86_400, help="Seconds after which the zoo stops by itself.")
    ] = 3600,
    register: Annotated[
        bool, typer.Option(help="Add every target as a site (prefix zoo-) in the database.")
    ] = False,
    targets_json: Annotated[
        Path | None, typer.Option(help="Write the targets (name, url, behaviour, ...) here.")
    ] = None,
) -> None:
    """Serve simulated sites on 127.0.0.1 until the duration ends or SIGINT/SIGTERM."""
    if targets_json is not None:
        output_file_option(targets_json, "--targets-json")
    spec = realistic_spec(
        sites,
        median_ms=median_ms,
        sigma=sigma,
        timeout_share=timeout_share,
        fail_fast_share=fail_fast_share,
        seed=seed,
    )
    targets = spec.targets + (ZooSpec.every_failure().targets if every_failure else ())
    spec = dataclasses.replace(spec, targets=targets, port=port, duration_s=duration)

    async def serve() -> None:
        async with open_zoo(spec) as z:
            console.print(
                f"zoo: {len(z.targets)} targets on http://127.0.0.1:{z.http_port}/t/<name> "
                f"(TLS on port {z.tls_port}); stops in {duration:g} s or on Ctrl-C"
            )
            if targets_json is not None:
                listed = [dataclasses.asdict(t) for t in z.targets]
                with writing("--targets-json", targets_json):
                    targets_json.parent.mkdir(parents=True, exist_ok=True)  # as report --out
                    targets_json.write_text(json.dumps(listed, indent=1, default=str))
            if register:
                from ..testing.demo import register_zoo

                register_zoo(z, state(ctx).db(), prefix="zoo-")
                console.print(f"registered {len(z.targets)} sites")
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                with trio.move_on_after(duration):
                    async for _ in signals:
                        break
        console.print(f"zoo stopped after {z.requests} requests")

    trio.run(serve)
