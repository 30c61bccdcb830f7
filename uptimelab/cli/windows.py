"""``uptimelab stats --window`` and ``--month``: every site's stats over one window ending now, of
any length, or over one calendar month with its SLA budget (:mod:`uptimelab.cli.stats` takes the
options and hands them here)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from ..storage.models import Site
from ..storage.windows import WindowStats, record_uptime_settings, window_stats_rows
from ._common import (
    Format,
    console,
    duration_option,
    flag_errors,
    pct,
    print_records,
    site_label,
    sites_by_id,
    state,
)

WindowOption = Annotated[
    str | None,
    typer.Option(
        help="One window ending now, any length (90d, 365d; at least 1h), from the "
        "rollups kept for ever and raw pings at its edges."
    ),
]
MonthOption = Annotated[
    str | None,
    typer.Option(help="One calendar month (UTC), YYYY-MM, with its SLA budget (--target)."),
]
TargetOption = Annotated[
    float, typer.Option(help="The SLA's uptime target in percent, for --month.")
]


def window_or_month(
    ctx: typer.Context,
    window: str | None,
    month: str | None,
    policy: str | None,
    exclude_maintenance: bool | None,
    target: float,
    format: Format,
    sort: str,
) -> None:
    """Print every site's stats over ``window`` (a duration) or else ``month`` (YYYY-MM).
    Raises ConfigError naming the option at fault."""
    db = state(ctx).db()
    record_uptime_settings(db=db)
    if month is not None:
        from ..analytics.tables import month_table

        with flag_errors("--month", "--policy", "--target"):
            table = month_table(
                db,
                month,
                target=target,
                policy=policy,
                exclude_maintenance=exclude_maintenance,
            )
        records = [{str(k): v for k, v in r.items()} for r in table.to_dict("records")]
        for r in records:
            for key in ("counted_from", "observed_from", "through"):
                r[key] = r[key].isoformat()
        _print_window(records, format, f"{month} (UTC), target {target}%")
        return
    assert window is not None
    with flag_errors("--window", "--policy"):
        width = duration_option(window, "--window")
        rows = window_stats_rows(
            width, policy=policy, exclude_maintenance=exclude_maintenance, db=db
        )
    sites = sites_by_id(ctx)
    records = [_window_record(r, sites) for r in rows]
    key = sort.lstrip("-")
    key = key if records and key in records[0] else "uptime"
    records.sort(key=lambda r: (r[key], r["site"] or ""), reverse=sort.startswith("-"))
    _print_window(records, format, f"the last {window}")


def _window_record(row: WindowStats, sites: dict[Any, Site]) -> dict[str, Any]:
    site = sites.get(row.site_id)
    return {
        "site": site_label(site, row.site_id),
        **row.model_dump(mode="json"),
    }


def _print_window(records: list[dict[str, Any]], format: Format, title: str) -> None:
    if format is not Format.table:
        print_records(records, format)
        return
    if not records:  # no data is no error: say so instead of printing an empty table
        console.print(f"no pings in {title}", markup=False)
        return
    monthly = "budget_left_min" in records[0]
    # A month's records name their uptime as the SLA tables do (uptime_pct); a window's, uptime.
    uptime = "uptime_pct" if monthly else "uptime"
    shown = f"{title}: uptime %, mean ms of up pings, coverage %"
    # The end of what was observed is one instant for every site (the month's end, or now): said
    # once in the title, so that the table fits an 80-column terminal with the sites' names.
    throughs = {_minute(r["through"]) for r in records} if monthly else set()
    through_column = len(throughs) > 1
    if monthly:
        shown += "; downtime observed from each site's first ping in the month through"
        if not through_column:
            shown += f" {throughs.pop()} UTC"
    table = Table(box=None, title=shown)
    table.add_column("site", no_wrap=True, max_width=18, overflow="ellipsis")
    headers = ["uptime", "ms", "pings", "coverage"]
    if monthly:
        headers += ["down min", "left min"] + (["through"] if through_column else [])
    for header in headers:
        table.add_column(header, justify="right", no_wrap=True)
    for r in records:
        cells = [
            pct(r[uptime], r["pings"]),
            str(r["avg_response_time"]),
            str(r["pings"]),
            f"{r['coverage']:.1f}",
        ]
        if monthly:
            cells += [
                f"{r['downtime_min']:.1f}",
                f"{r['budget_left_min']:.1f}",
            ] + ([_minute(r["through"])] if through_column else [])
        table.add_row(r["site"], *cells, style="red" if monthly and not r["met"] else None)
    console.print(table)
    cut = [r for r in records if r["from_rollups"]]
    if cut:
        since = min(str(r["counted_from"]) for r in cut)
        console.print(
            f"from rollups: the raw pings at the window's start are pruned; {len(cut)} site(s) "
            f"counted from {since} (whole UTC hours)",
            markup=False,
        )


def _minute(value: object) -> str:
    """An instant of a record (a datetime, or its ISO text) to the minute, as a table shows it."""
    return str(value)[:16].replace("T", " ")
