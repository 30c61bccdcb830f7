"""``uptimelab sites``: add, list, remove, enable, disable, import and export sites."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table
from rich.text import Text

from ..domain.assertions import parse_headers
from ..domain.incidents import redact_notify_url, shown_notify
from ..domain.redaction import redact, redact_headers
from ..errors import ConfigError
from ..storage import site_export, site_import
from ..storage import sites as lib
from ._common import console, err_console, path_text, state

app = typer.Typer(help="The sites to watch.", no_args_is_help=True)

SiteArg = Annotated[str, typer.Argument(help="The site's id or URL.", show_default=False)]


@app.command("add")
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="http:// or https:// URL to watch.")],
    name: Annotated[str | None, typer.Option(help="Display name (default: the host).")] = None,
    expect: Annotated[
        str, typer.Option(help="Expected status codes: 200-399, 200,204, 200-299,301, 404.")
    ] = "200-399",
    method: Annotated[str, typer.Option(help="HTTP method.")] = "GET",
    timeout_ms: Annotated[
        int | None, typer.Option(help="This site's deadline (default PING_TIMEOUT_MS).")
    ] = None,
    follow_redirects: Annotated[
        bool, typer.Option(help="Follow redirects (up to --max-redirects).")
    ] = True,
    max_redirects: Annotated[int, typer.Option(help="Redirects followed at most, 0 to 50.")] = 5,
    interval_ms: Annotated[
        int | None,
        typer.Option(
            help="This site's own interval (default MONITORING_INTERVAL_MS); at least "
            "MIN_SITE_INTERVAL_MS (10 s) and above its timeout."
        ),
    ] = None,
    retry_interval_ms: Annotated[
        int | None,
        typer.Option(help="The interval while the site is down (default: its interval)."),
    ] = None,
    tls_verify: Annotated[
        bool,
        typer.Option(
            help="Verify the server's certificate; --no-tls-verify accepts any (self-signed, "
            "expired), a weaker check that `sites list` and `status` show."
        ),
    ] = True,
    expect_body: Annotated[
        str | None,
        typer.Option(
            help="A regular expression the decoded body (its first 64 KiB) must match, else the "
            "ping is down (assertion)."
        ),
    ] = None,
    expect_json: Annotated[
        str | None,
        typer.Option(
            help="PATH OP VALUE or len(PATH) OP N the JSON body must satisfy: PATH a JSONPath "
            "selecting one value, OP one of == != < <= > >= contains, VALUE a JSON literal; e.g. "
            "'$.status == \"UP\"', 'len($.items) > 0'."
        ),
    ] = None,
    max_response_ms: Annotated[
        int | None,
        typer.Option(help="The slowest response that is still up; slower is down (assertion)."),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option(
            help="A request header 'Name: value' (repeatable). Secret ones (Authorization, "
            "Cookie, names with key, token, secret or password) are shown as ***.",
            show_default=False,
        ),
    ] = None,
    body: Annotated[
        str | None,
        typer.Option(
            help="The request body, for POST, PUT, PATCH, DELETE; give its Content-Type "
            "with --header."
        ),
    ] = None,
    cert_min_days: Annotated[
        int,
        typer.Option(
            help="Warn (status, health degraded, stats, /metrics) when the https certificate "
            "expires within this many days; 0 to 3650."
        ),
    ] = 14,
    down_after: Annotated[
        int,
        typer.Option(
            help="Consecutive down pings of a location that confirm an incident, 1 to 1000."
        ),
    ] = 2,
    up_after: Annotated[
        int,
        typer.Option(help="Consecutive up pings that resolve the incident, 1 to 1000."),
    ] = 1,
    notify: Annotated[
        list[str] | None,
        typer.Option(
            help="An apprise URL told of this site's transitions beside NOTIFY_URLS "
            "(repeatable; json://host/path, tgram://token/chat, ...). Shown redacted.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Register a site."""
    site = lib.add_site(
        url,
        name=name,
        expect=expect,
        method=method,
        timeout_ms=timeout_ms,
        follow_redirects=follow_redirects,
        max_redirects=max_redirects,
        interval_ms=interval_ms,
        retry_interval_ms=retry_interval_ms,
        tls_verify=tls_verify,
        expect_body=expect_body,
        expect_json=expect_json,
        max_response_ms=max_response_ms,
        headers=parse_headers(header or ()),
        body=body,
        cert_min_days=cert_min_days,
        down_after=down_after,
        up_after=up_after,
        notify=notify or None,
        db=state(ctx).db(),
    )
    console.print(f"added {redact(site.url)} ({site.id})", markup=False, soft_wrap=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array of sites.")] = False,
) -> None:
    """List the sites."""
    found = lib.site_rows(db=state(ctx).db())
    if as_json:
        typer.echo(json.dumps([_row(s) for s in found], default=str, indent=1))
        return
    # The tls cell is never folded: a narrow terminal shortens the other columns instead.
    tls = Column("tls", no_wrap=True)
    table = Table(
        "id", "name", "url", "active", "method", "expect", "every", tls, "checks", box=None
    )
    for s in found:
        table.add_row(
            str(s.id),
            Text(s.name or ""),  # a name or URL is shown as typed, never as markup
            Text(redact(s.url)),
            "yes" if s.is_active else "no",
            s.method,
            s.expected_status,
            _every(s.interval_ms, s.retry_interval_ms),
            "" if s.tls_verify else "NOT VERIFIED",
            Text(_checks(s)),
        )
    console.print(table)
    console.print(f"{len(found)} site(s)")


def _checks(site: lib.SiteRow) -> str:
    """A site's assertions and request options, short, secret header values as ``***``."""
    parts = []
    if site.expect_body is not None:
        parts.append(f"body ~ {site.expect_body}")
    if site.expect_json is not None:
        parts.append(f"json {site.expect_json}")
    if site.max_response_ms is not None:
        parts.append(f"<= {site.max_response_ms} ms")
    parts += [f"{k}: {v}" for k, v in redact_headers(site.headers or {}).items()]
    if site.body is not None:
        parts.append(f"body of {len(site.body)} chars")
    if (site.down_after, site.up_after) != (2, 1):
        parts.append(f"down after {site.down_after}, up after {site.up_after}")
    if site.notify:
        parts.append(f"notify {shown_notify(site.notify)}")
    return "; ".join(parts)


def _every(interval_ms: int | None, retry_interval_ms: int | None) -> str:
    """A site's own cadence, short: "" for the default, "30s" or "30s/10s" (when down)."""
    if interval_ms is None and retry_interval_ms is None:
        return ""
    shown = f"{interval_ms / 1000:g}s" if interval_ms else "default"
    return f"{shown}/{retry_interval_ms / 1000:g}s" if retry_interval_ms else shown


@app.command("remove")
def remove(
    ctx: typer.Context,
    site: SiteArg,
    yes: Annotated[bool, typer.Option("--yes", help="Remove it without asking.")] = False,
) -> None:
    """Delete a site with its pings and stats, after a confirmation (or with --yes); `sites
    disable` keeps its history."""
    db = state(ctx).db()
    found = lib.get_site(site, db=db)  # an unknown site is said before anything is asked
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(
                "sites remove deletes the site's pings and stats for good: pass --yes to remove "
                "it without asking (or `sites disable` to keep its history)"
            )
        if not typer.confirm(f"Remove {redact(found.url)} with all its pings and stats?"):
            err_console.print("nothing removed", markup=False)
            raise typer.Exit(1)
    removed = lib.remove_site(found.id, db=db)
    console.print(f"removed {redact(removed.url)}", markup=False, soft_wrap=True)


@app.command("enable")
def enable(ctx: typer.Context, site: SiteArg) -> None:
    """Ping a disabled site again."""
    changed = lib.enable_site(site, db=state(ctx).db())
    console.print(f"enabled {redact(changed.url)}", markup=False, soft_wrap=True)


@app.command("disable")
def disable(ctx: typer.Context, site: SiteArg) -> None:
    """Stop pinging a site, keeping its history."""
    changed = lib.disable_site(site, db=state(ctx).db())
    console.print(f"disabled {redact(changed.url)}", markup=False, soft_wrap=True)


@app.command("import")
def import_(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(parser=path_text, help="CSV, JSON or YAML file; columns as in sites."),
    ],
    format: Annotated[
        str | None, typer.Option(help="csv, json or yaml (default: by extension).")
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option(help="Import the valid rows and report the invalid ones.")
    ] = False,
) -> None:
    """Add or update sites from a file, matched by URL (idempotent)."""
    report = site_import.import_sites(
        path, format=format, skip_invalid=skip_invalid, db=state(ctx).db()
    )
    console.print(
        f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
        f"invalid {len(report.invalid)}",
        markup=False,
    )
    for number, reason in report.invalid:
        console.print(f"  row {number}: {reason}", markup=False, soft_wrap=True)


@app.command("export")
def export(
    ctx: typer.Context,
    path: Annotated[
        Path | None,
        typer.Argument(
            parser=path_text,
            help="The file to write (default: standard output).",
            show_default=False,
        ),
    ] = None,
    format: Annotated[
        str | None, typer.Option(help="csv, json or yaml (default: by extension, else csv).")
    ] = None,
    include_secrets: Annotated[
        bool,
        typer.Option(
            help="Write URL passwords, secret header values and notify URLs as they are (the "
            "file is made private, 0600); without it they are ***, which import refuses."
        ),
    ] = False,
) -> None:
    """Write every site with every column of a site file: `sites import` of it changes nothing."""
    report = site_export.export_sites(
        path, format=format, include_secrets=include_secrets, db=state(ctx).db()
    )
    if path is None:
        typer.echo(report.text, nl=False)
    else:
        console.print(f"exported {report.sites} site(s) to {path}", markup=False)
    if report.secrets_left_out:
        typer.echo(
            f"secrets left out: {report.secrets_left_out} site(s) have them written as ***, "
            "which `sites import` refuses; --include-secrets writes them",
            err=True,
        )


def _row(site: lib.SiteRow) -> dict[str, object]:
    row = {k: _json_value(v) for k, v in dataclasses.asdict(site).items()}
    row["url"] = redact(site.url)
    if site.headers is not None:
        row["headers"] = redact_headers(site.headers)
    if site.notify is not None:
        row["notify"] = [redact_notify_url(u) for u in site.notify]
    return row


def _json_value(value: object) -> object:
    """A value as pydantic's JSON mode writes it: ids as text, times in ISO 8601 (``Z`` for UTC)."""
    if isinstance(value, dt.datetime):
        text = value.isoformat()
        return text[: -len("+00:00")] + "Z" if text.endswith("+00:00") else text
    return str(value) if isinstance(value, uuid.UUID) else value
