"""A picture of the synthetic market: mid price, spread and mean depth profile of one run.

``python -m simlab.emulator.plot --seed 0 --minutes 10 --out market.png``
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display
import matplotlib.pyplot as plt
import numpy as np

from .cst import CSTParams
from .instruments import DEFAULT_INSTRUMENTS
from .market import CSTMarket, summary


def plot_market(seed: int = 0, minutes: float = 10, inst_id: str = "BTC-USDT",
                out: str | Path = "market.png", params: CSTParams | None = None,
                levels: int = 30) -> Path:
    """Run ``inst_id`` alone for ``minutes`` and write a three-panel PNG; returns its path.

    Panels: mid price over time; spread (ticks) over time; mean size by distance from the
    opposite best quote (CST's ``i``), bids and asks, with the model's far-field mean
    ``lambda(i)/theta(i) * E[order size]`` for reference.

    >>> import tempfile, os
    >>> p = plot_market(seed=1, minutes=0.2, out=os.path.join(tempfile.mkdtemp(), "m.png"))
    >>> p.stat().st_size > 10_000
    True
    """
    if minutes <= 0:
        raise ValueError(f"minutes must be > 0, got {minutes}")
    if inst_id not in DEFAULT_INSTRUMENTS:
        raise ValueError(f"inst_id must be one of {sorted(DEFAULT_INSTRUMENTS)}, got {inst_id!r}")
    params = params or CSTParams()
    market = CSTMarket(seed=seed, instruments=[inst_id], params=params)
    s = summary(market, inst_id, minutes=minutes, levels=levels, series=True)
    spec = DEFAULT_INSTRUMENTS[inst_id]
    unit = "contracts" if spec.instrument.inst_type != "SPOT" else spec.instrument.base_ccy

    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(10, 11), constrained_layout=True)
    fig.suptitle(f"{inst_id}: Cont-Stoikov-Talreja market, seed {seed}, {minutes:g} min "
                 f"({s['event_rate']:.0f} events/s, {s['trade_rate']:.1f} trades/s)")
    t = s["t_s"] / 60.0
    ax1.plot(t, s["mid"], lw=0.8, color="tab:blue")
    ax1.set(xlabel="minutes", ylabel=f"mid ({spec.instrument.quote_ccy or 'USDT'})",
            title="mid price")
    ax1.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax2.plot(t, s["spread_ticks"], lw=0.5, color="tab:gray", label="every 100 ms")
    n = max(1, 5000 // 100)  # 5-second means, to see the level through the spikes
    if len(t) >= n:
        means = np.convolve(np.nan_to_num(s["spread_ticks"], nan=0.0), np.ones(n) / n, "valid")
        ax2.plot(t[n - 1:], means, lw=1.2, color="black", label="5 s mean")
    ax2.legend(loc="upper right")
    sp = s["spread"]
    ax2.set(xlabel="minutes", ylabel="ticks",
            title=f"spread (mean {sp['mean']:.2f}, median {sp['median']:g}, "
                  f"p99 {sp['p99']:g} ticks)")
    i = np.arange(1, levels + 1)
    w = 0.4
    ax3.bar(i - w / 2, s["depth_bid"], width=w, color="tab:green", label="bids")
    ax3.bar(i + w / 2, s["depth_ask"], width=w, color="tab:red", label="asks")
    mean_units = sum(n * p for n, p in enumerate(params.limit_sizes, 1)) / sum(params.limit_sizes)
    far = [params.limit_rate(k) / params.cancel_rate(k) * mean_units * float(spec.size_unit)
           for k in i]
    ax3.plot(i, far, "k--", lw=1, label="λ(i)/θ(i) × mean order size (no market orders)")
    ax3.set(xlabel="distance i from the opposite best quote (ticks)",
            ylabel=f"mean size ({unit})", title="mean depth profile")
    ax3.legend()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m simlab.emulator.plot [--seed N] [--minutes M] [--inst ID] [--out PNG]``.

    >>> import tempfile, os
    >>> main(["--minutes", "0.1", "--out", os.path.join(tempfile.mkdtemp(), "m.png")])
    ... # doctest: +ELLIPSIS
    /...m.png
    0
    """
    ap = argparse.ArgumentParser(prog="python -m simlab.emulator.plot",
                                 description="Plot a seeded run of the synthetic CST market.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--inst", default="BTC-USDT", choices=sorted(DEFAULT_INSTRUMENTS))
    ap.add_argument("--out", default="market.png")
    a = ap.parse_args(argv)
    try:
        path = plot_market(seed=a.seed, minutes=a.minutes, inst_id=a.inst, out=a.out)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
