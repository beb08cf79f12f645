"""simlab.sweep.compare on hand-made result tables: pivot, rank, heatmap, lines, compare and
plot_compare give the hand-computed numbers and name unknown columns."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from simlab.sweep.compare import (
    SweepResultsError,
    compare,
    heatmap,
    incomplete,
    lines,
    params,
    pivot,
    plot_compare,
    rank,
    varying,
)


def results(**over) -> pd.DataFrame:
    """A 2 x 3 grid (side x notional) on one recording, plus one failed cell.

    net_bps_mean = notional / 1000 (+ 1 for sells); p10 = mean - 1, p50 = mean - 0.25,
    p90 = mean + 2.
    """
    rows = []
    for side in ("buy", "sell"):
        for notional in (1_000.0, 5_000.0, 20_000.0):
            m = notional / 1000 + (side == "sell")
            rows.append(dict(cell=f"{side}-{notional:g}", status="ok", error=None,
                             simlab_version="0.8.0", recording="data/sample", inst="BTC-USDT",
                             p_side=side, p_notional=notional, p_fee_tier="VIP1",
                             ticks=6001, net_bps_mean=m, net_bps_p10=m - 1,
                             net_bps_p50=m - 0.25, net_bps_p90=m + 2,
                             slippage_bps_mean=m / 2, slippage_bps_p50=m / 2,
                             slippage_bps_p90=m, maker_prob_mean=0.5, seconds=0.1))
    rows.append(dict(cell="buy-1e+06", status="error", error="ValueError: book too thin",
                     simlab_version="0.8.0", recording="data/sample", inst="BTC-USDT",
                     p_side="buy", p_notional=1e6, p_fee_tier="VIP1", ticks=None,
                     net_bps_mean=None, seconds=0.01))
    df = pd.DataFrame(rows)
    for k, v in over.items():
        df[k] = v
    return df


# -- params / pivot ------------------------------------------------------------------------


def test_params_and_varying():
    r = results()
    assert params(r) == ["recording", "inst", "p_side", "p_notional", "p_fee_tier"]
    # p_notional=1e6 only in the failed cell: still varies among ok cells (3 values)
    assert varying(r) == ["p_side", "p_notional"]


def test_pivot_values_and_error_rows_left_out():
    p = pivot(results(), index="p_notional", columns="side")
    assert list(p.index) == [1000.0, 5000.0, 20000.0]  # 1e6 failed: no row
    assert list(p.columns) == ["buy", "sell"]
    np.testing.assert_array_equal(p.to_numpy(), [[1, 2], [5, 6], [20, 21]])
    p90 = pivot(results(), index="side", columns="notional", values="net_bps_p90")
    assert p90.equals(pivot(results(), index="side", columns="notional", value="net_bps_p90"))
    assert p90.loc["sell", 5000.0] == 8.0


def test_pivot_combines_cells_that_fall_together():
    two = pd.concat([results(), results(recording="rec2", net_bps_mean=np.arange(7.0))])
    # by side over all notionals and both recordings; recording 2's values are 0..5
    p = pivot(two, index="side", columns="recording")
    assert p.loc["buy", "data/sample"] == pytest.approx((1 + 5 + 20) / 3)
    assert p.loc["sell", "rec2"] == pytest.approx((3 + 4 + 5) / 3)
    assert pivot(two, "side", "recording", agg="max").loc["buy", "rec2"] == 2.0
    multi = pivot(two, index=["recording", "side"], columns="notional")
    assert multi.loc[("rec2", "sell"), 20000.0] == 5.0


def test_unknown_columns_are_named():
    with pytest.raises(SweepResultsError, match=r"unknown column 'sigma' for index: results "
                                                r"has parameters \['recording', 'inst'"):
        pivot(results(), index="sigma", columns="side")
    with pytest.raises(SweepResultsError, match=r"unknown column 'net_bps_p95' for values: "
                                                r"results has metrics \['ticks', 'net_bps_mean'"):
        pivot(results(), "side", "notional", values="net_bps_p95")
    with pytest.raises(TypeError, match="results must be a pandas DataFrame"):
        pivot([{"a": 1}], "a", "b")


# -- rank -----------------------------------------------------------------------------------


def test_rank_best_first_with_varying_params():
    r = rank(results())
    assert list(r.index) == [1, 2, 3, 4, 5, 6]
    assert list(r["cell"]) == ["buy-1000", "sell-1000", "buy-5000", "sell-5000",
                               "buy-20000", "sell-20000"]
    assert list(r.columns[:4]) == ["cell", "p_side", "p_notional", "net_bps_mean"]
    assert "p_fee_tier" not in r.columns and "recording" not in r.columns  # constant
    assert "seconds" not in r.columns
    worst = rank(results(), ascending=False, top=2)
    assert list(worst["cell"]) == ["sell-20000", "buy-20000"]
    by90 = rank(results(), by="net_bps_p90", top=1)
    assert by90.columns[3] == "net_bps_p90" and by90.iloc[0]["net_bps_p90"] == 3.0


def test_rank_ties_by_cell_and_missing_last():
    r = results(net_bps_mean=[2.0, 1.0, np.nan, 1.0, 3.0, 2.0, np.nan])
    assert list(rank(r)["cell"]) == ["buy-5000", "sell-1000", "buy-1000", "sell-20000",
                                     "sell-5000", "buy-20000"]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(SweepResultsError, match="top must be an integer >= 1"):
            rank(r, top=bad)
    with pytest.raises(SweepResultsError, match="unknown column 'cost' for by"):
        rank(r, by="cost")


def test_rank_leaves_out_cells_the_book_could_not_fill_and_says_which():
    # the 20,000 cells: the book filled buy's order at 40 % of the ticks, sell's at none
    # (the sweep then has no cost for it: NaN), the rest at every tick
    r = results(complete_share=[1.0, 1.0, 0.4, 1.0, 1.0, 0.0, None],
                net_bps_mean=[1.0, 5.0, 11.03, 2.0, 6.0, np.nan, None])
    assert list(incomplete(r)["cell"]) == ["buy-20000", "sell-20000"]
    with pytest.warns(UserWarning, match=r"left out 2 cell\(s\) where the book could not "
                      r"fill the order at every tick .*: buy-20000, sell-20000"):
        ranked = rank(r)
    assert list(ranked["cell"]) == ["buy-1000", "sell-1000", "buy-5000", "sell-5000"]
    assert ranked.attrs["left_out"] == ["buy-20000", "sell-20000"]
    assert (ranked["complete_share"] == 1.0).all()
    every = rank(r, include_incomplete=True)
    assert list(every["cell"]) == ["buy-1000", "sell-1000", "buy-5000", "sell-5000",
                                   "buy-20000", "sell-20000"]
    assert every.attrs["left_out"] == [] and every["complete_share"].iloc[4] == 0.4
    # a table without complete_share (an old sweep) ranks as before
    assert list(rank(results())["cell"])[:2] == ["buy-1000", "sell-1000"]


def test_heatmap_marks_incomplete_cells():
    r = results(complete_share=[1.0, 1.0, 0.4, 1.0, 1.0, 0.0, None],
                net_bps_mean=[1.0, 5.0, 11.03, 2.0, 6.0, np.nan, None])
    ax = heatmap(r, x="notional", y="side", fmt="{:.1f}")
    texts = {t.get_position(): t.get_text() for t in ax.texts}
    assert texts[(2, 0)] == "11.0*\nfilled 40%" and texts[(2, 1)] == "no fill"
    assert texts[(0, 0)] == "1.0"
    assert ax.get_title().startswith("* 2 cell(s): the book could not fill the order")


# -- heatmap / lines ------------------------------------------------------------------------


def test_heatmap_annotations(tmp_path):
    r = results()
    r.loc[r["cell"] == "sell-5000", "net_bps_mean"] = np.nan  # a hole: left blank
    ax = Figure().add_subplot()
    assert heatmap(r, x="notional", y="side", ax=ax, fmt="{:.1f}") is ax
    texts = {(t.get_position(), t.get_text()) for t in ax.texts}
    # x across (notional index 0..2), y up (buy 0, sell 1)
    assert texts == {((0, 0), "1.0"), ((1, 0), "5.0"), ((2, 0), "20.0"), ((0, 1), "2.0"),
                     ((2, 1), "21.0")}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1000", "5000", "20000"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["buy", "sell"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("p_notional", "p_side")
    ax.figure.savefig(tmp_path / "h.png")
    assert (tmp_path / "h.png").stat().st_size > 1000
    with pytest.raises(SweepResultsError, match="unknown column 'size' for columns"):
        heatmap(r, x="size", y="side")


def test_lines_mean_and_band():
    ax = lines(results(), x="notional", hue="side")
    got = {ln.get_label(): (list(ln.get_xdata()), list(ln.get_ydata()))
           for ln in ax.get_lines()}
    assert got == {"p_side=buy": ([1000.0, 5000.0, 20000.0], [1.0, 5.0, 20.0]),
                   "p_side=sell": ([1000.0, 5000.0, 20000.0], [2.0, 6.0, 21.0])}
    # the buy band runs from p10 = mean - 1 to p90 = mean + 2 at each notional
    verts = ax.collections[0].get_paths()[0].vertices
    for x, m in ((1000.0, 1.0), (5000.0, 5.0), (20000.0, 20.0)):
        ys = verts[verts[:, 0] == x, 1]
        assert (ys.min(), ys.max()) == (m - 1, m + 2)
    med = lines(results(), x="notional", hue="side", center="p50", band=None)
    assert list(med.get_lines()[1].get_ydata()) == [1.75, 5.75, 20.75]
    assert not med.collections


def test_lines_categorical_x_and_errors():
    one = results()[lambda d: d["p_notional"] == 5000.0]
    ax = lines(one, x="side")
    assert list(ax.get_lines()[0].get_ydata()) == [5.0, 6.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["buy", "sell"]
    with pytest.raises(SweepResultsError, match=r"2 ok cells share their p_notional.*"
                                                r"varying too: p_side.*pass hue="):
        lines(results()[lambda d: d["p_notional"] == 1000.0], x="notional")
    with pytest.raises(SweepResultsError, match="unknown column 'slippage_bps_p10' for band"):
        lines(results(), x="notional", value="slippage_bps", hue="side")
    ok = lines(results(), x="notional", value="slippage_bps", hue="side", band=("p50", "p90"))
    assert list(ok.get_lines()[0].get_ydata()) == [0.5, 2.5, 10.0]


# -- compare --------------------------------------------------------------------------------


def test_compare_diff_ratio_and_one_sided_cells():
    a = results(p_model="maker-v1.json")
    b = results(p_model="maker-v2.json", net_bps_mean=[0.5, 5.0, 16.0, 2.0, 3.0, 21.0, 9.0])
    b = b[b["cell"] != "sell-1000"]
    b = pd.concat([b, results(p_model="maker-v2.json").iloc[[2]].assign(p_notional=50_000.0,
                                                                         net_bps_mean=40.0)])
    c = compare(a, b)
    # p_model is constant in each and differs: it is what is compared, not a key
    assert c.attrs["on"] == ["recording", "inst", "p_side", "p_notional", "p_fee_tier"]
    assert c.attrs["ignored"] == ["p_model"]
    c = c.set_index(["p_side", "p_notional"])
    assert c.loc[("buy", 1000.0), ["a", "b", "diff", "ratio"]].tolist() == [1.0, 0.5, -0.5, 0.5]
    assert c.loc[("buy", 20000.0), "ratio"] == pytest.approx(16 / 20)
    assert c.loc[("sell", 1000.0), "present"] == "a" and math.isnan(c.loc[("sell", 1000.0),
                                                                          "b"])
    assert c.loc[("buy", 50000.0), "present"] == "b" and c.loc[("buy", 50000.0), "b"] == 40
    # the failed cell is in both, with no values
    failed = c.loc[("buy", 1e6)]
    assert failed["present"] == "both" and math.isnan(failed["a"]) and math.isnan(failed["b"])
    assert len(c) == 8


def test_compare_on_labels_and_errors():
    a, b = results(), results(net_bps_mean=0.0)
    c = compare(a, b, on=["side", "notional"], value="net_bps_mean", labels=("before", "after"))
    assert list(c.columns) == ["p_side", "p_notional", "before", "after", "diff", "ratio",
                               "present"]
    row = c[(c["p_side"] == "sell") & (c["p_notional"] == 5000.0)].iloc[0]
    assert (row["before"], row["after"], row["diff"]) == (6.0, 0.0, -6.0)
    zero = compare(b, a, on=["side", "notional"])
    assert np.isinf(zero["ratio"].iloc[0])  # x / 0
    with pytest.raises(SweepResultsError, match=r"a: 7 cells share their p_side; add the "
                                                r"columns .* \(p_notional\)"):
        compare(a, b, on="side")
    with pytest.raises(SweepResultsError, match="unknown column 'sigma' for on: b has"):
        compare(a.assign(p_sigma=1.0), b, on=["notional", "sigma"])
    with pytest.raises(SweepResultsError, match="share no parameter column"):
        compare(a[["cell", "net_bps_mean"]], b[["cell", "net_bps_mean"]])
    with pytest.raises(SweepResultsError, match="labels must be two different names"):
        compare(a, b, labels=("x", "x"))


def test_plot_compare(tmp_path):
    a = results()
    c = compare(a, a.assign(net_bps_mean=a["net_bps_mean"] * 2).iloc[1:])
    ax = plot_compare(c)
    pts = ax.collections[0].get_offsets()
    # both sweeps have 5 ok cells in common (buy-1000 is only in a; the failed cell has none)
    assert sorted(map(tuple, np.asarray(pts))) == [(2, 4), (5, 10), (6, 12), (20, 40),
                                                   (21, 42)]
    bars = plot_compare(c, "bar")
    assert sorted(p.get_height() for p in bars.patches) == [2, 5, 6, 20, 21]
    assert bars.get_xlabel() == "p_side, p_notional"  # the keys that vary
    bars.figure.savefig(tmp_path / "c.png")
    with pytest.raises(SweepResultsError, match="kind must be 'scatter' or 'bar'"):
        plot_compare(c, "pie")
    with pytest.raises(SweepResultsError, match="no cell has a value in both"):
        plot_compare(c[c["present"] != "both"])
    with pytest.raises(SweepResultsError, match="comparison lacks"):
        plot_compare(a)
