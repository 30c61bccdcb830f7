"""``uptimelab notify``: notifications (a test message)."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import console

app = typer.Typer(help="Notifications (apprise): send a test message.", no_args_is_help=True)


@app.command("test")
def send_test_message(
    urls: Annotated[
        list[str] | None,
        typer.Argument(
            help="apprise URLs to send to (json://host/path, tgram://token/chat, ...); none: "
            "every URL of NOTIFY_URLS (space-separated). Shown redacted.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Send a test message to each URL, or to every configured NOTIFY_URLS; exit 1 with one
    line (the URL redacted) when one does not take it."""
    from ..notify import send_test

    for shown in send_test(urls or ()):
        console.print(f"sent: {shown}", markup=False, highlight=False, soft_wrap=True)
