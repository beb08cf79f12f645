"""The dashboards' charts as PNG bytes, for an ``ipywidgets.Image``.

Every function draws on its own :class:`matplotlib.figure.Figure` with the Agg canvas and
never touches ``pyplot``: no global backend switch, no figure left open, and the same bytes
in a kernel, a test or a thread. Inputs are plain arrays so the charts are testable alone.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from simlab.extras import require

_FEATURE = "the dashboards' charts"
FigureCanvasAgg = require("matplotlib.backends.backend_agg", feature=_FEATURE).FigureCanvasAgg
Figure = require("matplotlib.figure", feature=_FEATURE).Figure
MaxNLocator = require("matplotlib.ticker", feature=_FEATURE).MaxNLocator

#: Figure size in inches (width, height) and resolution of every chart.
SIZE = (5.6, 3.0)
DPI = 80


def _figure() -> Figure:
    # fixed margins: a constrained layout would cost more than the drawing itself
    fig = Figure(figsize=SIZE)
    fig.subplots_adjust(left=0.15, right=0.87, bottom=0.16, top=0.9, hspace=0.12)
    return fig


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.5")
    ax.set_xticks([])
    ax.set_yticks([])


class PriceChart:
    """Best bid, best ask and mid against time (seconds), spread in bps below; one figure
    kept and redrawn with new data (a live dashboard redraws it every half second, and
    building the axes anew would cost more than drawing them).

    >>> c = PriceChart()
    >>> c.render([0, 1, 2], [99, 99.5, 99], [101, 100.5, 101])[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """

    def __init__(self, xlabel: str = "seconds") -> None:
        self.fig = fig = _figure()
        self.ax, self.ax2 = ax, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
        kw = {"drawstyle": "steps-post", "lw": 0.8}
        (self.ask,) = ax.plot([], [], color="tab:red", label="ask", **kw)
        (self.bid,) = ax.plot([], [], color="tab:green", label="bid", **kw)
        (self.mid,) = ax.plot([], [], color="0.3", lw=0.6, label="mid")
        (self.spread,) = ax2.plot([], [], color="tab:blue", **kw)
        ax.set_ylabel("price")
        ax.legend(loc="upper left", fontsize=7, ncol=3)
        ax.ticklabel_format(axis="y", useOffset=False)
        ax2.set_ylabel("spread bps", fontsize=8)
        ax2.set_xlabel(xlabel)
        self.title = ax.set_title("", fontsize=9)
        self.empty = ax.text(0.5, 0.5, "no book yet", ha="center", va="center",
                             transform=ax.transAxes, color="0.5")

    def render(self, t_s: Sequence[float], bid: Sequence[float], ask: Sequence[float],
               title: str = "") -> bytes:
        """The chart for these points, as PNG bytes."""
        t, b, a = (np.asarray(v, dtype=float) for v in (t_s, bid, ask))
        if not (len(t) == len(b) == len(a)):
            raise ValueError(f"t_s, bid and ask must have one length, got {len(t)}, {len(b)}, "
                             f"{len(a)}")
        with np.errstate(invalid="ignore", divide="ignore"):
            mid = (a + b) / 2
            spread = (a - b) / mid * 1e4
        for line, y in ((self.ask, a), (self.bid, b), (self.mid, mid), (self.spread, spread)):
            line.set_data(t, y)
        self.empty.set_visible(len(t) == 0)
        self.title.set_text(title)
        for ax in (self.ax, self.ax2):
            ax.relim()
            ax.autoscale_view()
        return _png(self.fig)


class DepthChart:
    """Cumulative depth of each side (best first) against price; one figure kept and
    redrawn.

    >>> DepthChart().render([99, 98], [1, 2], [101, 102], [3, 1])[:4] == b"\\x89PNG"
    True
    """

    def __init__(self) -> None:
        self.fig = fig = _figure()
        self.ax = ax = fig.subplots()
        kw = {"drawstyle": "steps-post", "lw": 1.0}
        (self.bids,) = ax.plot([], [], color="tab:green", label="bids", **kw)
        (self.asks,) = ax.plot([], [], color="tab:red", label="asks", **kw)
        self.fills: list[Any] = []
        ax.set_xlabel("price")
        ax.set_ylabel("cumulative size")
        ax.ticklabel_format(axis="x", useOffset=False)
        ax.xaxis.set_major_locator(MaxNLocator(4))  # prices are long: few labels, no overlap
        ax.legend(loc="upper center", fontsize=7, ncol=2)
        self.title = ax.set_title("", fontsize=9)
        self.empty = ax.text(0.5, 0.5, "no book yet", ha="center", va="center",
                             transform=ax.transAxes, color="0.5")

    def render(self, bid_px: Sequence[float], bid_sz: Sequence[float],
               ask_px: Sequence[float], ask_sz: Sequence[float], title: str = "") -> bytes:
        """The chart for these levels, as PNG bytes."""
        bp, bs, ap, as_ = (np.asarray(v, dtype=float) for v in (bid_px, bid_sz, ask_px,
                                                                 ask_sz))
        if len(bp) != len(bs) or len(ap) != len(as_):
            raise ValueError("bid_px/bid_sz and ask_px/ask_sz must have matching lengths")
        for f in self.fills:
            f.remove()
        self.fills = []
        for line, px, sz, color in ((self.bids, bp, bs, "tab:green"),
                                    (self.asks, ap, as_, "tab:red")):
            cum = np.cumsum(sz)
            line.set_data(px, cum)
            if len(px):
                self.fills.append(self.ax.fill_between(px, cum, step="post", color=color,
                                                       alpha=0.3, lw=0))
        self.empty.set_visible(len(bp) == 0 and len(ap) == 0)
        self.title.set_text(title)
        self.ax.relim()
        self.ax.autoscale_view()
        return _png(self.fig)


def price_chart(t_s: Sequence[float], bid: Sequence[float], ask: Sequence[float],
                title: str = "") -> bytes:
    """:class:`PriceChart` once.

    >>> price_chart([], [], [])[:4] == b"\\x89PNG"
    True
    """
    return PriceChart().render(t_s, bid, ask, title)


def depth_chart(bid_px: Sequence[float], bid_sz: Sequence[float], ask_px: Sequence[float],
                ask_sz: Sequence[float], title: str = "") -> bytes:
    """:class:`DepthChart` once.

    >>> depth_chart([], [], [], [])[:4] == b"\\x89PNG"
    True
    """
    return DepthChart().render(bid_px, bid_sz, ask_px, ask_sz, title)


def schedule_chart(t: Sequence[float], holdings: Sequence[float],
                   trades: Sequence[float]) -> bytes:
    """Almgren-Chriss holdings ``x_0..x_N`` at ``t_0..t_N`` and the trades ``n_1..n_N``
    (bars, one per step, right axis).

    >>> schedule_chart([0, 1, 2], [2, 1, 0], [1, 1])[:4] == b"\\x89PNG"
    True
    """
    t, x, n = (np.asarray(v, dtype=float) for v in (t, holdings, trades))
    if len(t) != len(x) or len(n) != len(x) - 1:
        raise ValueError(f"need N+1 times and holdings and N trades, got {len(t)}, {len(x)}, "
                         f"{len(n)}")
    fig = _figure()
    ax = fig.subplots()
    ax2 = ax.twinx()
    ax2.bar((t[:-1] + t[1:]) / 2, n, width=np.diff(t) * 0.8, color="tab:orange", alpha=0.4,
            label="trade per step")
    ax.plot(t, x, "o-", ms=2.5, color="tab:blue", label="holdings")
    ax.set_xlabel("time")
    ax.set_ylabel("holdings")
    ax2.set_ylabel("trade per step")
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.set_title("optimal schedule", fontsize=9)
    return _png(fig)


def frontier_chart(sd: Sequence[float], e: Sequence[float], point: tuple[float, float],
                   lam: float | None = None) -> bytes:
    """The efficient frontier, expected cost against its standard deviation, with the
    chosen schedule ``point = (SD, E)`` marked.

    >>> frontier_chart([3, 2, 1], [1, 2, 4], (2, 2), lam=1e-3)[:4] == b"\\x89PNG"
    True
    """
    s, m = np.asarray(sd, dtype=float), np.asarray(e, dtype=float)
    if len(s) != len(m):
        raise ValueError(f"sd and e must have one length, got {len(s)} and {len(m)}")
    fig = _figure()
    ax = fig.subplots()
    ax.plot(s, m, "-", color="tab:blue", lw=1.2, label="efficient frontier")
    label = "chosen" if lam is None else f"chosen (lam={lam:.3g})"
    ax.plot([point[0]], [point[1]], "o", color="tab:red", ms=7, label=label)
    ax.set_xlabel("SD of cost (quote)")
    ax.set_ylabel("expected cost E (quote)")
    ax.legend(fontsize=7)
    ax.set_title("efficient frontier", fontsize=9)
    return _png(fig)
