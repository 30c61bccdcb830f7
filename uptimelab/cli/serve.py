"""``uptimelab serve``: the HTTP API, and with ``--collect`` the collector, in one process."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import trio
import typer

from ..config import Settings
from ..errors import ConfigError, UptimelabError, lone_exception
from ..storage.database import connect
from ._common import console, state
from .collect import PlainReporter


def serve(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. One other machines can reach needs UPTIMELAB_API_TOKEN."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8080,
    collect: Annotated[
        bool,
        typer.Option("--collect", help="Also run the collector on its schedule, in this process."),
    ] = False,
) -> None:
    """Serve the HTTP API (GET /site-stats, /metrics, ...) until SIGINT or SIGTERM.

    POST endpoints need Authorization: Bearer $UPTIMELAB_API_TOKEN.
    """
    # Imported here: the server's dependencies are not needed by the other commands.
    from ..api import server

    settings = Settings.load(database_url=state(ctx).database_url)
    try:
        server.check_bind(host, port, settings.api_token)
    except ConfigError as exc:
        raise ConfigError(f"--{exc}") from None  # the library names values; we add the flag
    # Like `collect`, the collector starts without the database and spools; the API alone
    # only reads, so it needs the database (migrated) from the start.
    db = connect(state(ctx).database_url, migrate=not collect)
    reporter = PlainReporter() if collect else None

    run = partial(
        server.serve, settings, db, host=host, port=port, collect=collect, reporter=reporter
    )

    async def main() -> None:
        try:
            async with trio.open_nursery() as nursery:
                urls = await nursery.start(run)
                console.print(f"serving on {', '.join(urls)}", markup=False, soft_wrap=True)
                if settings.api_token is None:
                    console.print(
                        "POST endpoints answer 401: set UPTIMELAB_API_TOKEN to enable them",
                        markup=False,
                        soft_wrap=True,
                    )
        except BaseExceptionGroup as group:
            # One of our errors alone is one line and an exit code (see cli.main).
            lone = lone_exception(group)
            if isinstance(lone, UptimelabError):
                raise lone from None
            raise

    trio.run(main)
