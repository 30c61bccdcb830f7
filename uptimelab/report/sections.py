"""The sections of the HTML report, in order: fleet, uptime, latency, outages, incidents, SLA,
collector. Each is a function of the period's data and the SLA target that returns a
:class:`Section` (texts, tables and figures); the markup comes from the ``templates/`` files."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import html
import io
import string
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Final

import pandas as pd
from matplotlib.figure import Figure

from ..analytics import collector_plots, phase_plots, site_plots
from ..analytics.certificates import certificate_expiry
from ..analytics.collector_health import collector_gaps, cycle_interval, overran, round_lateness
from ..analytics.latency import latency_shifts, phase_breakdown
from ..analytics.outages import incident_summary, outages
from ..analytics.tables import site_summary, sla_table, with_target
from ..text import span
from .html_table import HtmlTable, html_table
from .period import PeriodData


@functools.cache
def template(name: str) -> string.Template:
    """``templates/<name>.html``, read from the installed package."""
    text = resources.files(__package__).joinpath("templates", f"{name}.html").read_text("utf-8")
    return string.Template(text)


@dataclass
class Section:
    """One section of the report: a title, short texts, tables and figures, in order."""

    id: str
    title: str
    parts: list[str]

    def text(self, words: str) -> None:
        self.parts.append(template("text").substitute(text=html.escape(words)))

    def table(self, table: HtmlTable) -> None:
        self.parts.append(template("table").substitute(table=table.html))

    def figure(self, fig: Figure, caption: str) -> None:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
        self.parts.append(template("figure").substitute(caption=html.escape(caption), png=encoded))

    def html(self) -> str:
        return template("section").substitute(
            id=html.escape(self.id), title=html.escape(self.title), parts="".join(self.parts)
        )


def _fleet_section(data: PeriodData, target: float) -> Section:
    s = Section("fleet", "Fleet summary", [])
    if data.missing_days:
        s.text(_missing_note(data))
    fleet = data.fleet
    down = fleet.loc[fleet["current_status"] == "down", "site"].tolist()
    s.text(
        f"{len(fleet)} sites with pings; {len(fleet) - len(down)} up and {len(down)} down at "
        f"their latest ping" + (f" ({', '.join(map(str, down))})." if down else ".")
    )
    s.table(html_table(fleet.drop(columns=["site_id"]), percent=_UPTIMES, target=target))
    certificates = certificate_expiry(data.pings, names=data.names, now=data.end)
    expiring = certificates.loc[certificates["expiring"]]
    s.text(
        f"Certificates: {len(certificates)} site(s) served one in the period; {len(expiring)} "
        f"expire(s) within {certificates['min_days'].max() if len(certificates) else 14} days of "
        "the end of the period (a warning, not downtime)."
    )
    if not certificates.empty:
        s.table(html_table(certificates.head(10), caption="Certificates, soonest expiry first"))
    if not fleet.empty:
        s.figure(
            site_plots.worst_sites(fleet, column="uptime_7d", target=target),
            "The sites with the lowest uptime over the last 7 days, against the target.",
        )
    return s


def _uptime_section(data: PeriodData, target: float) -> Section:
    s = Section("uptime", "Uptime and latency per site", [])
    if data.pings.empty:
        s.text("No pings in the period.")
        return s
    summary = site_summary(data.pings, data.names)
    s.text("Over the whole period: uptime, outages, MTTR, MTBF and response-time percentiles.")
    s.table(html_table(summary, percent=["uptime_pct"], target=target))
    s.figure(
        site_plots.uptime_heatmap(data.pings, names=data.names, freq=_heat_freq(data)),
        "Uptime per site and period; grey where a site has no pings (the collector was not "
        "running), which is not downtime.",
    )
    s.figure(
        site_plots.response_time_distributions(data.pings, names=data.names),
        "Each site's response times: box from the first to the third quartile, whiskers from "
        "the 5th to the 95th percentile.",
    )
    return s


def _latency_section(data: PeriodData, target: float) -> Section:
    s = Section("latency", "Response times", [])
    if data.pings.empty:
        s.text("No pings in the period.")
        return s
    s.figure(
        site_plots.response_time_percentiles(data.pings, freq=_heat_freq(data)),
        "p50, p95 and p99 of all up pings per period (log scale).",
    )
    breakdown = phase_breakdown(data.pings, names=data.names)
    if not breakdown.empty:
        s.text(
            "Where the time goes: the median of each phase of the up pings (DNS, connect, TLS, "
            "the server's time to the first byte, transfer), the slowest sites first; "
            "'slowest' names the phase that takes the most."
        )
        s.table(html_table(breakdown.head(10), caption="Median ms per phase"))
        s.figure(
            phase_plots.phase_breakdown_chart(breakdown),
            "Median milliseconds per phase, stacked: a long first bar is a slow resolver, a long "
            "TLS bar a slow handshake, a long server bar a slow application.",
        )
    shifts = latency_shifts(data.pings, names=data.names)
    regressed = shifts.loc[shifts["regressed"].astype(bool)]
    s.text(
        "Regressions: for every hour, a site's mean hourly-median response time over the 24 "
        "hours after it is divided by that over the 24 hours before; a site whose largest ratio "
        f"reaches 1.5 has regressed, at the hour of that ratio. {len(regressed)} site(s) did."
    )
    s.table(html_table(shifts.head(10).drop(columns=["window"])))
    for site_id, row in regressed.head(3).iterrows():
        row.name = site_id
        s.figure(
            site_plots.latency_shift(data.pings, row, names=data.names),
            f"{row['site']}: hourly median response time with the change point.",
        )
    return s


def _outages_section(data: PeriodData, target: float) -> Section:
    s = Section("outages", "Outages", [])
    found = outages(data.pings)
    if found.empty:
        s.text("No outages in the period.")
        return s
    found.insert(1, "site", [data.names.get(str(x), str(x)) for x in found["site_id"]])
    ongoing = int(found["ended_at"].isna().sum())
    s.text(
        f"{len(found)} outage(s) (runs of consecutive down pings), {ongoing} still going on. "
        "The longest:"
    )
    longest = found.assign(duration=found["duration"].fillna(data.end - found["started_at"]))
    longest = longest.sort_values("duration", ascending=False).drop(columns=["site_id"])
    s.table(html_table(longest, max_rows=15))
    s.figure(
        site_plots.outage_timeline(
            found, names=data.names, start=_first(data), end=data.end, min_pings=2
        ),  # fmt: skip
        "Outages of two or more down pings per site, coloured by the first error; short ones "
        "are drawn wider than they lasted so that they show.",
    )
    s.figure(
        site_plots.error_categories(data.pings, freq="6h" if _days(data) <= 7 else "1D"),
        "Down pings per error category over time.",
    )
    return s


def _incidents_section(data: PeriodData, target: float) -> Section:
    s = Section("incidents", "Incidents", [])
    found = data.incidents
    if found.empty:
        s.text(
            "No incidents in the period: no site was down for its down_after pings in a row "
            "(2 unless set per site)."
        )
        return s
    own = found["location"].isna() | ~found["site_id"].isin(
        found.loc[found["location"].isna(), "site_id"]
    )
    mine = found.loc[own]
    open_now = int(mine["resolved_at"].isna().sum())
    s.text(
        f"{len(mine)} incident(s) of the sites' own state, {open_now} still open. An incident "
        "starts at its first down ping, is confirmed after the site's down_after down pings in "
        "a row and resolved at the first of its up_after up pings; with two or more locations "
        "the quorum verdict decides (each location's own incidents are kept too: "
        f"{int((~own).sum())} of them)."
    )
    summary = incident_summary(mine, data.end)
    summary.insert(0, "site", [data.names.get(str(x), str(x)) for x in summary.index])
    s.table(html_table(summary.sort_values("downtime", ascending=False).reset_index(drop=True)))
    latest = mine.iloc[::-1].drop(columns=["id", "message"])
    latest.insert(1, "site", [data.names.get(str(x), str(x)) for x in latest["site_id"]])
    s.table(html_table(latest.drop(columns=["site_id"]), max_rows=15))
    shaped = mine.rename(
        columns={
            "resolved_at": "ended_at",
            "down_pings": "pings_down",
            "category": "first_error_category",
        }
    )
    s.figure(
        site_plots.outage_timeline(shaped, names=data.names, start=_first(data), end=data.end),
        "Incidents per site, coloured by the first error; open ones run to the end.",
    )
    return s


def _sla_section(data: PeriodData, target: float) -> Section:
    s = Section("sla", f"SLA: {target} % uptime per month", [])
    from_db = data.months is not None and not data.months.empty
    if data.pings.empty and not from_db:
        s.text("No pings in the period.")
        return s
    if data.missing_days:
        s.text(_missing_note(data))
    if from_db:
        assert data.months is not None
        sla = with_target(data.months, target)
        s.text(
            "Each calendar month the period touches, whole, as `uptimelab stats --month` shows "
            "it: the hourly rollups count where raw pings are pruned."
        )
    else:
        sla = sla_table(data.pings, target=target, names=data.names)
    s.text(
        f"Each month's error budget is {100 - target:.3g} % of the whole month; its downtime "
        "is what was observed: (100 - uptime) % of the time from the site's first ping in the "
        "month (observed_from) through the month's end or now (through), the uptime counted "
        "over the pings (time the collector was not running is neither up nor down). A month "
        "under way meets the target so far while its budget is not spent. "
        f"{int((~sla['met']).sum())} site-month(s) spent their whole budget."
    )
    s.table(html_table(sla.drop(columns=["site_id"])))
    s.figure(
        site_plots.error_budget(sla),
        "Error budget used in the latest month; red beyond the whole budget.",
    )
    return s


def _collector_section(data: PeriodData, target: float) -> Section:
    s = Section("collector", "Collector health", [])
    cycles = data.cycles
    if len(cycles) < 2:
        s.text("Fewer than two stored cycles in the period.")
        return s
    every = cycle_interval(cycles)
    gaps = collector_gaps(cycles, interval=every, now=data.end)
    # Only a `collect --once` cycle can overrun; a round lasts one interval by design and says
    # how it kept up by its lateness (as `uptimelab status` does).
    overruns = int(overran(cycles, every).sum())
    lateness = round_lateness(cycles)
    late = (
        f"{int(lateness['rounds'].sum()):,} round(s) of a running collector, the latest ping of "
        f"a round at worst {lateness['late_max_s'].max():.1f} s late; "
        if not lateness.empty
        else ""
    )
    s.text(
        f"{len(cycles):,} cycles every {span(every)}; {late}{overruns} collect --once cycle(s) "
        f"overran the interval; {len(gaps)} gap(s) where the collector was not running."
    )
    s.figure(
        collector_plots.cycle_durations(cycles, interval=every),
        "Each collect --once cycle's duration against the interval (an overrun skips the next "
        "start), and how late each round of a running collector was.",
    )
    s.figure(
        collector_plots.collector_timeline(cycles, gaps, interval=every),
        "Sites down per cycle, with the collector's own gaps shaded apart.",
    )
    if not gaps.empty:
        s.table(html_table(gaps))
    return s


SECTIONS: Final[tuple[Callable[[PeriodData, float], Section], ...]] = (
    _fleet_section,
    _uptime_section,
    _latency_section,
    _outages_section,
    _incidents_section,
    _sla_section,
    _collector_section,
)
_UPTIMES: Final = ("uptime_1h", "uptime_24h", "uptime_7d")


def _missing_note(data: PeriodData) -> str:
    """Which days of the period have no raw pings here, as runs of days."""
    runs: list[list[dt.date]] = []
    for day in data.missing_days:
        if runs and day - runs[-1][-1] == dt.timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    shown = ", ".join(f"{r[0]}" if len(r) == 1 else f"{r[0]} to {r[-1]}" for r in runs)
    return (
        f"Missing from raw pings: {len(data.missing_days)} pruned day(s) ({shown}) are not in "
        "this report's pings (ARCHIVE_DIR unset, or dropped unarchived): uptime, latency and "
        "outages here count without them; the SLA table reads the rollups for them."
    )


def _first(data: PeriodData) -> pd.Timestamp:
    """The first ping's time: the period's plots start there, not at an empty ``since``."""
    return data.start if data.pings.empty else pd.Timestamp(data.pings["checked_at"].min())


def _days(data: PeriodData) -> float:
    return float((data.end - _first(data)) / pd.Timedelta(days=1))


def _heat_freq(data: PeriodData) -> str:
    return "1h" if _days(data) <= 14 else "6h"
