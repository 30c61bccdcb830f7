"""The chart of where a ping's time goes, per site (see :mod:`uptimelab.analytics.figures`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..domain.pings import PHASES
from .figures import LEGEND_OUTSIDE, colormap, empty_figure, literal, new_figure

_LABELS = {
    "dns": "DNS",
    "connect": "connect",
    "tls": "TLS",
    "ttfb": "server (to first byte)",
    "transfer": "transfer",
}


def phase_breakdown_chart(breakdown: pd.DataFrame, *, n: int = 15) -> Figure:
    """Stacked bars of each phase's median (``stats.phase_breakdown``) for the ``n`` sites with
    the largest total: which sites are slow because of DNS, TLS or the server."""
    top = breakdown.head(n).iloc[::-1]
    fig, ax = new_figure(1.0 + 0.3 * len(top))
    if top.empty:
        return empty_figure(fig, ax, "no pings with phase timings")
    colours = colormap("tab10")
    left = np.zeros(len(top))
    for k, phase in enumerate(PHASES):
        values = top[phase].fillna(0.0).to_numpy(dtype=float)
        ax.barh(range(len(top)), values, left=left, color=colours(k), label=_LABELS[phase])
        left += values
    ax.set_yticks(range(len(top)), [literal(name) for name in top["site"]])
    ax.set_xlabel("median ms per phase (up pings)")
    ax.set_title("Where the time of a ping goes, per site")
    ax.legend(**LEGEND_OUTSIDE)
    return fig
