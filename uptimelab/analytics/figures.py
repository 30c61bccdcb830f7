"""What every chart shares: figure size, colours, site labels, and time axes as matplotlib date
numbers (computed here, so that every time on an axis is a plain float in UTC).

Every text a chart takes from data (site names, URLs, locations, categories, scenario names) goes
through :func:`literal` (:func:`site_label` does it), so that matplotlib shows it as typed: a site
named ``$x^2$`` is not typeset as mathtext, and one named ``$\\oops$`` does not stop the chart.

Figures are made without pyplot: no backend is chosen and nothing is kept in a global registry.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any, Final

import matplotlib.dates as mdates
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

WIDTH: Final = 10.0
CATEGORY_COLOURS: Final = {
    "dns": "#8c564b",
    "refused": "#ff7f0e",
    "timeout": "#d62728",
    "tls": "#9467bd",
    "network": "#1f77b4",
    "protocol": "#e377c2",
    "http_status": "#bcbd22",
    "too_many_redirects": "#17becf",
}
UP: Final = "#2ca02c"
DOWN: Final = "#d62728"
GAP: Final = "#bbbbbb"
LEGEND_OUTSIDE: Final[dict[str, Any]] = {"loc": "upper left", "bbox_to_anchor": (1.0, 1.0)}

Names = Mapping[str, str] | None


def new_figure(height: float) -> tuple[Figure, Axes]:
    """A figure of the common width and ``height`` inches (2.5 at least), with one axes."""
    fig = Figure(figsize=(WIDTH, max(2.5, height)), layout="constrained")
    return fig, fig.subplots()


def empty_figure(fig: Figure, ax: Axes, text: str) -> Figure:
    """``fig`` with ``ax`` blank but for ``text``: what a chart shows when it has no data."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    return fig


def colormap(name: str) -> Any:
    """The matplotlib colormap called ``name``."""
    import matplotlib

    return matplotlib.colormaps[name]


def legend_patch(colour: str) -> Any:
    """A legend handle: a patch of ``colour``."""
    from matplotlib.patches import Patch

    return Patch(color=colour)


def date_axis(ax: Axes) -> None:
    """Date ticks on an x axis whose values are :func:`date_nums` (days since 1970, UTC)."""
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.set_xlabel("UTC")


_DAY_US: Final = 86_400_000_000


def date_nums(values: Any) -> npt.NDArray[np.float64]:
    """Times as matplotlib date numbers (days since 1970-01-01 UTC, its default epoch); NaT as
    NaN. Computed here so that every time on an axis is a plain float."""
    times = _naive_index(pd.DatetimeIndex(values)).as_unit("us")
    days = times.asi8 / _DAY_US
    return np.where(times.isna(), np.nan, days)


def date_num(value: Any) -> float:
    """One time as a matplotlib date number (see :func:`date_nums`)."""
    return float(date_nums([value])[0])


def in_days(delta: pd.Timedelta) -> float:
    """``delta`` in days, the unit of a date axis."""
    return float(delta / pd.Timedelta(days=1))


def literal(text: object) -> str:
    """``str(text)`` with every ``$`` escaped as ``\\$``: matplotlib then shows the text as typed.

    matplotlib reads text with an even number of unescaped ``$`` as mathtext (where ``_``, ``^``
    and ``\\`` mean something, and a bad formula raises when the figure is drawn); with every
    ``$`` escaped there is none, and ``\\$`` is its documented spelling of a plain ``$``. Text
    without ``$`` is shown as typed already, so the rest needs no escaping. (The ``parse_math``
    Text property would do too, but has to be set on every Text a chart makes, tick labels
    included; this works wherever a string goes.) A control character (a tab, a CR) has no
    glyph, and matplotlib would warn: each is shown as a space.
    """
    shown = "".join(" " if unicodedata.category(c) == "Cc" else c for c in str(text))
    return shown.replace("$", r"\$")


def site_label(site: object, names: Names) -> str:
    """The label of ``site`` (an id): its name in ``names``, else the id; as :func:`literal`."""
    return literal((names or {}).get(str(site), str(site)))


def naive_utc(value: Any) -> pd.Timestamp:
    """A UTC wall-clock Timestamp without a zone (matplotlib's dates are naive here)."""
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _naive_index(index: pd.Index) -> pd.DatetimeIndex:
    times = pd.DatetimeIndex(index)
    return times.tz_convert("UTC").tz_localize(None) if times.tz is not None else times
