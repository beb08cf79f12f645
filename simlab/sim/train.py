"""Learn from recordings: the maker/taker logistic model and the slippage regression.

- :func:`train_maker_taker`: label moments of the recording(s)
  (:func:`~simlab.sim.fill_dataset.fill_dataset`), split them in time order (the earliest
  part trains, the latest tests: no look-ahead), fit
  :class:`~simlab.models.logistic.LogisticFillModel` and score it out of sample against the
  base-rate model (the training fill rate) with log-loss, Brier score, ROC AUC and a
  reliability curve.
- :func:`train_slippage`: walk the book with several order sizes at sampled moments
  (:func:`slippage_dataset`), fit :class:`~simlab.models.slippage_regression.SlippageRegression`
  (a linear mean and linear quantiles) and report the quantiles' coverage out of sample.

Both return a :class:`TrainResult`; the model carries everything needed to use it again
(features, how they are computed, the training data's range, the metrics) and is saved
as JSON by :func:`simlab.models.persist.save_model`. Same recordings and settings, same
model file.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simlab.book.batch import Order
from simlab.feed.replay import (
    CLOCKS,
    ReplayError,
    check_time_basis,
    fmt_time,
    open_recordings,
)
from simlab.feed.source import fmt_ns, to_ns
from simlab.models.fill_features import FILL_FEATURES, FeatureParams
from simlab.models.logistic import LogisticFillModel, fit_time_split
from simlab.models.metrics import classification_metrics, pinball_loss, reliability_curve
from simlab.models.ranges import value_ranges
from simlab.models.slippage_regression import SlippageRegression

from .fill_dataset import _bar, fill_dataset, infer_tick, run_features, sample_moments, stream_paths
from .order import Instrument
from .rebuild import rebuild_messages

log = logging.getLogger(__name__)

#: Inputs of the slippage regression (see :func:`slippage_dataset`).
SLIPPAGE_FEATURES = ("size_rel_depth", "spread_bps", "volatility_bps", "imbalance")
DEFAULT_QUANTILES = (0.5, 0.9, 0.99)


@dataclass
class TrainResult:
    """A trained model with its data and out-of-sample evaluation.

    ``metrics``: the headline numbers (a flat dict); ``table``: the same as a small
    DataFrame for printing (model against baseline); ``curve``: the reliability curve
    (maker/taker) or the coverage per quantile (slippage); ``dataset``: every row used
    (with ``split`` = train/test). ``weak``: the model did not beat its baseline out of
    sample (``weak_reason`` gives both scores); ``simlab train`` then refuses to save it
    unless ``--allow-weak``, and the saved model carries ``info["weak"] = True``.
    """

    kind: str
    model: Any
    metrics: dict[str, Any]
    table: pd.DataFrame
    curve: pd.DataFrame
    dataset: pd.DataFrame = field(repr=False)

    @property
    def weak(self) -> bool:
        """Whether the model failed to beat its baseline on the test split."""
        return bool(self.model.info.get("weak"))

    @property
    def weak_reason(self) -> str | None:
        """Which score did not beat the baseline, with both numbers (None: not weak)."""
        return self.model.info.get("weak_reason") if self.weak else None

    def save(self, path: str | Path) -> Path:
        """Save the model as JSON (:func:`simlab.models.persist.save_model`)."""
        from simlab.models.persist import save_model

        return save_model(self.model, path)

    def plot(self, ax: Any = None) -> Any:
        """Reliability curve (maker/taker) or coverage per quantile (slippage)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(4.5, 4))
        c = self.curve
        if self.kind == "maker_taker":
            ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect")
            ax.plot(c["mean_pred"], c["frac_pos"], "o-", label="model (test)")
            ax.axhline(self.metrics["test_rate"], color="C1", lw=1,
                       label=f"test fill rate {self.metrics['test_rate']:.2f}")
            ax.set(xlabel="predicted fill probability", ylabel="observed fill rate",
                   title="Reliability, out of sample")
        else:
            ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="nominal")
            ax.plot(c["quantile"], c["coverage"], "o-", label="coverage (test)")
            ax.set(xlabel="quantile", ylabel="share of test slippage below it",
                   title="Quantile coverage, out of sample")
        ax.legend(loc="upper left", fontsize=8)
        return ax


def _span(df: pd.DataFrame) -> dict[str, Any]:
    t = df["ts_ms"]
    return {"first_ts_ms": int(t.min()), "last_ts_ms": int(t.max()),
            "first": fmt_time(int(t.min()) * 1_000_000, "exchange"),
            "last": fmt_time(int(t.max()) * 1_000_000, "exchange")}


def in_time_range(df: pd.DataFrame, start: Any = None, end: Any = None,
                  time_basis: str = "exchange") -> pd.DataFrame:
    """The rows of a training dataset sampled in ``[start, end]`` on the clock
    ``time_basis`` (``"exchange"``: their ``ts_ms``; ``"recv"``: their ``recv_ns``);
    ReplayError naming the range and the clock when none is. A label may look past ``end``
    (the fill horizon): only the sampled moments are selected.

    >>> d = pd.DataFrame({"ts_ms": [1000, 2000, 3000], "recv_ns": [4 * 10**9, 5 * 10**9,
    ...                                                       6 * 10**9]})
    >>> in_time_range(d, start=2 * 10**9)["ts_ms"].tolist()
    [2000, 3000]
    >>> in_time_range(d, end=5 * 10**9, time_basis="recv")["ts_ms"].tolist()
    [1000, 2000]
    """
    check_time_basis(time_basis)
    lo, hi = to_ns(start, "start"), to_ns(end, "end")
    if lo is None and hi is None:
        return df
    if lo is not None and hi is not None and hi < lo:
        raise ReplayError(f"end ({fmt_time(hi, time_basis)}) is before start "
                          f"({fmt_time(lo, time_basis)})")
    t = (df["ts_ms"].to_numpy(np.int64) * 1_000_000 if time_basis == "exchange"
         else df["recv_ns"].to_numpy(np.int64))
    keep = np.ones(len(df), bool)
    if lo is not None:
        keep &= t >= lo
    if hi is not None:
        keep &= t <= hi
    if not keep.any():
        span = (f"{fmt_ns(int(t.min()))} .. {fmt_ns(int(t.max()))}" if len(t) else "nothing")
        raise ReplayError(f"no moment sampled in {fmt_ns(lo)} .. {fmt_ns(hi)} "
                          f"({CLOCKS[time_basis]}): the samples span {span}")
    out = df[keep]
    out.attrs = dict(df.attrs)
    return out


def _range_info(start: Any, end: Any, time_basis: str) -> dict[str, Any]:
    lo, hi = to_ns(start, "start"), to_ns(end, "end")
    return {"time_basis": time_basis,
            "start": None if lo is None else fmt_time(lo, time_basis),
            "end": None if hi is None else fmt_time(hi, time_basis)}


def _rec_names(recs: list[Any]) -> list[str]:
    # names, not absolute paths: the same recording gives the same model file anywhere
    return [Path(r.path).name for r in recs]


def train_maker_taker(recordings: Any, inst: str, *, quantity: float | None = None,
                      notional: float | None = None, horizon_s: float = 5.0,
                      every_s: float = 1.0, side: str = "both", queue: str = "conservative",
                      power: float = 1.0, features: tuple[str, ...] = FILL_FEATURES,
                      params: FeatureParams | None = None, test_fraction: float = 0.3,
                      C: float = 1.0, channel: str = "books", ct_val: float | None = None,
                      progress: bool = False, start: Any = None, end: Any = None,
                      time_basis: str = "exchange") -> TrainResult:
    """Label, split in time order, fit and evaluate the logistic maker/taker model, on the
    moments sampled in ``[start, end]`` (clock ``time_basis``, see :func:`in_time_range`).

    The order: ``quantity`` (base) or ``notional`` (quote) posted at the best price,
    ``side`` buy, sell or both. ``horizon_s``: the fill horizon ``H``; ``every_s``: the
    sampling step; ``queue``: ``conservative`` or ``probabilistic`` (``power``); ``features``:
    any of :data:`~simlab.models.fill_features.FILL_FEATURES`.

    >>> r = train_maker_taker("rec", "BTC-USDT", quantity=0.01)     # doctest: +SKIP
    >>> r.table                                                      # doctest: +SKIP
    >>> r.save("model.json")                                         # doctest: +SKIP
    """
    unknown = [f for f in features if f not in FILL_FEATURES]
    if unknown or not features:
        raise ValueError(f"features must be a non-empty subset of {list(FILL_FEATURES)}, "
                         f"got unknown {unknown}" if unknown else "features must not be empty")
    params = params or FeatureParams()
    recs = open_recordings(recordings)
    df = fill_dataset(recs, inst, quantity=quantity, notional=notional, horizon_s=horizon_s,
                      every_s=every_s, side=side, queue=queue, power=power, params=params,
                      channel=channel, ct_val=ct_val, progress=progress)
    df = in_time_range(df, start, end, time_basis)
    reasons = dict(df.attrs.get("reasons", {}))
    labelled = df[df["label"] >= 0]
    finite = np.isfinite(labelled[list(features)].to_numpy()).all(axis=1)
    use = labelled[finite]
    if len(use) < 20:
        raise ReplayError(f"only {len(use)} labelled moments with all features defined "
                          f"({len(df)} sampled; {reasons}): record longer, sample more often "
                          "(--every) or shorten the horizon")
    y = use["label"].to_numpy(np.int64)
    split = fit_time_split(use[list(features)], y, use["ts_ms"].to_numpy(),
                           test_fraction=test_fraction)
    train_rows = use[use["ts_ms"] < split.split_time]
    # what the model has seen, so that using it elsewhere can be flagged (models/ranges.py)
    ranges = value_ranges({**{f: train_rows[f] for f in features},
                           "order_size": train_rows["order_size"]})
    tick = df.attrs["tick_size"]
    info = {
        "target": "passive fill of a limit order at the best price within the horizon",
        "inst": inst, "channel": channel, "side": side, "horizon_s": float(horizon_s),
        "every_s": float(every_s), "queue": queue, "power": float(power),
        "order": {"quantity": quantity, "notional": notional},
        "feature_params": params.as_dict(), "tick_size": tick,
        "training": {"recordings": _rec_names(recs), **_span(train_rows),
                     "rows": len(train_rows), "ranges": ranges,
                     "time_range": _range_info(start, end, time_basis)},
        "labels": {"sampled": len(df), "labelled": len(labelled),
                   "missing_features": int((~finite).sum()), "reasons": reasons},
    }
    model = LogisticFillModel.fit(split.X_train, split.y_train, features=features, C=C,
                                  info=info)
    p = model.predict_frame(split.X_test)
    base = float(split.y_train.mean())
    m = classification_metrics(split.y_test, p, base_rate=base)
    curve = reliability_curve(split.y_test, p, bins=10)
    test_rows = use[use["ts_ms"] >= split.split_time]
    metrics = {"train_rows": len(split.y_train), "test_rows": len(split.y_test),
               "train_rate": base, "test_rate": m["rate"],
               "split": fmt_time(int(split.split_time) * 1_000_000, "exchange"),
               **{k: m[k] for k in ("log_loss", "base_log_loss", "log_loss_skill", "brier",
                                    "base_brier", "brier_skill", "auc")},
               "test": _span(test_rows)}
    weak = _weak_classifier(m)
    metrics.update({k: weak[k] for k in ("weak", "weak_reason") if k in weak})
    model = replace(model, info={**model.info, "metrics": metrics, **weak})
    table = pd.DataFrame({"model": [m["log_loss"], m["brier"], m["auc"]],
                          "base rate": [m["base_log_loss"], m["base_brier"], 0.5],
                          "skill": [m["log_loss_skill"], m["brier_skill"], math.nan]},
                         index=pd.Index(["log-loss", "Brier", "ROC AUC"], name="test set"))
    out = df.assign(split=np.where(df["ts_ms"] >= split.split_time, "test", "train"))
    return TrainResult("maker_taker", model, metrics, table, curve, out)


def _weak_classifier(m: dict[str, Any]) -> dict[str, Any]:
    """The weak flag of a maker/taker model: it must beat the base-rate predictor (the
    training fill rate) on BOTH log-loss and Brier score on the test split."""
    fails = [f"{name} {m[k]:.6g} vs base rate {m[f'base_{k}']:.6g}"
             for name, k in (("log-loss", "log_loss"), ("Brier score", "brier"))
             if not m[k] < m[f"base_{k}"]]
    if not fails:
        return {"weak": False}
    return {"weak": True,
            "weak_reason": "out of sample it does not beat the base-rate predictor (the "
                           f"training fill rate {m['base_rate']:.4g}): " + "; ".join(fails),
            "baseline": {"log_loss": m["log_loss"], "base_log_loss": m["base_log_loss"],
                         "brier": m["brier"], "base_brier": m["base_brier"]}}


# -- slippage ---------------------------------------------------------------------------------
def slippage_dataset(recordings: Any, inst: str, *, side: str = "buy",
                     notionals: tuple[float, ...] | None = None, every_s: float = 1.0,
                     params: FeatureParams | None = None, channel: str = "books",
                     ct_val: float | None = None, progress: bool = False) -> pd.DataFrame:
    """Walk-the-book slippage of market orders of several sizes at sampled moments.

    ``notionals``: order sizes in quote currency; by default 0.1, 0.25, 0.5, 1 and 2 times
    the median quote value of the taken side's top ``depth_levels`` levels (so the sizes
    span the book whatever the instrument). One row per moment and size: ``ts_ms``,
    ``notional``, the features (:data:`SLIPPAGE_FEATURES`: size over the taken side's
    depth, spread and volatility in bps, touch imbalance ``(taken - other) / (taken +
    other)``) and ``slippage_bps`` (average fill price against the mid; positive = cost).
    Orders the visible book cannot fill are left out (their slippage is unknown).

    >>> d = slippage_dataset("rec", "BTC-USDT", notionals=(1e3, 1e4))   # doctest: +SKIP
    """
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    if not (isinstance(every_s, int | float) and every_s > 0):
        raise ValueError(f"every_s must be a number of seconds > 0, got {every_s!r}")
    params = params or FeatureParams()
    buy = side == "buy"
    recs = open_recordings(recordings)
    parts = []
    bar = _bar(progress, len(recs), f"walking {inst}")
    for r, rec in enumerate(recs):
        bar.update(1)
        meta = rec.manifest.get("instruments", {}).get(inst)
        ins = Instrument.from_metadata(inst, meta, ct_val=ct_val)
        paths = stream_paths(rec, inst, channel=channel, depth_levels=params.depth_levels)
        bk = paths.book
        at = sample_moments(bk, max(1, round(every_s * 1000)))
        mid = (bk.bid[at] + bk.ask[at]) * 0.5
        taken_depth = (paths.ask_depth if buy else paths.bid_depth)[at]
        if notionals is None:
            med = float(np.nanmedian(taken_depth * mid * ins.ct_val))
            if not med > 0:
                raise ReplayError(f"{rec.path}: no depth to size orders by; pass notionals")
            notionals = tuple(float(f"{med * f:.3g}") for f in (0.1, 0.25, 0.5, 1.0, 2.0))
        bad = [n for n in notionals if not (isinstance(n, int | float) and n > 0)]
        if bad or not notionals:
            raise ValueError(f"notionals must be numbers > 0, got {list(notionals)}")
        # the walk is in book units: quote notional / ct_val
        emit = np.zeros(len(bk), bool)
        emit[at] = True
        m_orders = [Order(buy, n / ins.ct_val, True) for n in notionals]
        b = rebuild_messages(paths.messages, orders=m_orders, emit=emit)
        tick = ins.tick_sz if ins.tick_sz > 0 else infer_tick(bk.price)
        f = run_features(paths, at, np.full(len(at), buy), np.ones(len(at)), params=params,
                         tick_size=tick)
        taken_best = (bk.ask_sz if buy else bk.bid_sz)[at]
        other_best = (bk.bid_sz if buy else bk.ask_sz)[at]
        for k, n in enumerate(notionals):
            w = b.walk[at, k]
            fb, fq, rem = w[:, 0], w[:, 1], w[:, 5]
            avg = fq / fb
            slip = ((avg - mid) if buy else (mid - avg)) / mid * 1e4
            ok = (rem <= fb * 1e-12) & np.isfinite(slip)
            parts.append(pd.DataFrame({
                "rec": r, "ts_ms": bk.ts_ms[at], "recv_ns": paths.recv_ns[at],
                "notional": float(n),
                "size_rel_depth": fb / taken_depth,
                "spread_bps": (bk.ask[at] - bk.bid[at]) / mid * 1e4,
                "volatility_bps": f["volatility_bps"],
                "imbalance": (taken_best - other_best) / (taken_best + other_best),
                "slippage_bps": slip})[ok])
    bar.close()
    if not parts:
        raise ReplayError("nothing to replay")
    return pd.concat(parts).sort_values(["rec", "ts_ms", "notional"],
                                        kind="stable").reset_index(drop=True)


def train_slippage(recordings: Any, inst: str, *, side: str = "buy",
                   notionals: tuple[float, ...] | None = None, every_s: float = 1.0,
                   quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
                   features: tuple[str, ...] = SLIPPAGE_FEATURES,
                   params: FeatureParams | None = None, test_fraction: float = 0.3,
                   max_rows: int = 50_000, channel: str = "books",
                   ct_val: float | None = None, progress: bool = False, start: Any = None,
                   end: Any = None, time_basis: str = "exchange") -> TrainResult:
    """Fit the slippage regression (linear mean and quantiles) and report coverage out of
    sample: the share of later (test) slippages at or below each predicted quantile. Only
    the moments sampled in ``[start, end]`` (clock ``time_basis``, see
    :func:`in_time_range`) are used.

    >>> r = train_slippage("rec", "BTC-USDT", side="buy")           # doctest: +SKIP
    >>> r.curve                                                     # doctest: +SKIP
    """
    unknown = [f for f in features if f not in SLIPPAGE_FEATURES]
    if unknown or not features:
        raise ValueError(f"features must be a non-empty subset of {list(SLIPPAGE_FEATURES)}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    params = params or FeatureParams()
    recs = open_recordings(recordings)
    df = slippage_dataset(recs, inst, side=side, notionals=notionals, every_s=every_s,
                          params=params, channel=channel, ct_val=ct_val, progress=progress)
    df = in_time_range(df, start, end, time_basis)
    df = df[np.isfinite(df[list(features)].to_numpy()).all(axis=1)]
    if len(df) < 50:
        raise ReplayError(f"only {len(df)} usable slippage samples: record longer or sample "
                          "more often (--every)")
    order = df["rec"].to_numpy() * 10**13 + df["ts_ms"].to_numpy()
    cut = np.quantile(order, 1.0 - test_fraction, method="lower")
    test = order > cut
    if test.all() or not test.any():
        raise ReplayError("the time split left an empty part: record longer")
    train, held = df[~test], df[test]
    info = {"target": "walk-the-book slippage of a market order, bps of the mid",
            "inst": inst, "channel": channel, "side": side, "every_s": float(every_s),
            "notionals": sorted({float(n) for n in df["notional"]}),
            "feature_params": params.as_dict(),
            "training": {"recordings": _rec_names(recs), **_span(train),
                         "rows": len(train), "time_range": _range_info(start, end, time_basis),
                         "ranges": value_ranges({**{f: train[f] for f in features},
                                                 "notional": train["notional"]})}}
    model = SlippageRegression.fit(train[list(features)], train["slippage_bps"].to_numpy(),
                                   features=features, quantiles=quantiles, max_rows=max_rows,
                                   info=info)
    cov = model.coverage(held[list(features)], held["slippage_bps"].to_numpy())
    pred = model.predict_frame(held[list(features)])
    err = held["slippage_bps"].to_numpy() - pred["mean"].to_numpy()
    metrics = {"train_rows": len(train), "test_rows": len(held),
               "mean_abs_error_bps": float(np.mean(np.abs(err))),
               "mean_bias_bps": float(np.mean(err)),
               "r2": float(1 - np.sum(err ** 2) / np.sum(
                   (held["slippage_bps"] - held["slippage_bps"].mean()) ** 2)),
               "coverage": {f"q{round(q * 100):g}": float(c) for q, c in
                            zip(cov["quantile"], cov["coverage"], strict=True)},
               "test": _span(held)}
    scores = _slippage_scores(model, train["slippage_bps"].to_numpy(),
                              held["slippage_bps"].to_numpy(), pred)
    metrics.update(scores)
    weak = _weak_regression(scores)
    metrics.update({k: weak[k] for k in ("weak", "weak_reason") if k in weak})
    model = replace(model, info={**model.info, "metrics": metrics, **weak})
    table = cov.set_index("quantile")
    out = df.assign(split=np.where(test, "test", "train"))
    return TrainResult("slippage", model, metrics, table, cov, out)


def _slippage_scores(model: SlippageRegression, y_train: np.ndarray, y_test: np.ndarray,
                     pred: pd.DataFrame) -> dict[str, Any]:
    """Test-split scores of the slippage model against the constant baselines fitted on the
    training rows: the training mean (squared error) and each training quantile (pinball
    loss)."""
    base_mean = float(np.mean(y_train))
    out: dict[str, Any] = {
        "mse": float(np.mean((y_test - pred["mean"].to_numpy()) ** 2)),
        "base_mse": float(np.mean((y_test - base_mean) ** 2)), "pinball": {},
        "base_pinball": {}}
    for q, key in zip(model.quantiles, model.outputs[1:], strict=True):
        out["pinball"][key] = pinball_loss(y_test, pred[key].to_numpy(), q)
        out["base_pinball"][key] = pinball_loss(
            y_test, np.full(len(y_test), float(np.quantile(y_train, q))), q)
    return out


def _weak_regression(s: dict[str, Any]) -> dict[str, Any]:
    """The weak flag of a slippage model: the mean must beat the training mean (squared
    error) and every quantile the training quantile (pinball loss), on the test split."""
    fails = [] if s["mse"] < s["base_mse"] else [
        f"mean: squared error {s['mse']:.6g} vs training mean {s['base_mse']:.6g}"]
    fails += [f"{k}: pinball loss {v:.6g} vs training quantile {s['base_pinball'][k]:.6g}"
              for k, v in s["pinball"].items() if not v < s["base_pinball"][k]]
    if not fails:
        return {"weak": False}
    return {"weak": True,
            "weak_reason": "out of sample it does not beat the constant baseline: "
                           + "; ".join(fails),
            "baseline": {k: s[k] for k in ("mse", "base_mse", "pinball", "base_pinball")}}


def format_result(res: TrainResult) -> str:
    """The metrics table a person reads after training (what ``simlab train`` prints).

    >>> print(format_result(r))                                      # doctest: +SKIP
    """
    m, info = res.metrics, res.model.info
    tr, te = info["training"], m["test"]
    lines = [f"trained on {tr['rows']} rows ({tr['first']} .. {tr['last']}), tested on "
             f"{m['test_rows']} later rows ({te['first']} .. {te['last']})"]
    if res.kind == "maker_taker":
        lab = info["labels"]
        lines.append(f"labels: {lab['sampled']} sampled, {lab['labelled']} labelled; "
                     + ", ".join(f"{k} {v}" for k, v in lab["reasons"].items()))
        lines.append(f"fill rate within {info['horizon_s']:g} s: train {m['train_rate']:.3f}, "
                     f"test {m['test_rate']:.3f} (queue: {info['queue']})")
        lines.append(res.table.to_string(float_format=lambda x: f"{x:.4f}"))
        lines.append("coefficients (standardised features):")
        for f, c in sorted(zip(res.model.features, res.model.coef, strict=True),
                           key=lambda fc: -abs(fc[1])):
            lines.append(f"  {f:<16} {c:+.4f}")
    else:
        lines.append(f"mean model: MAE {m['mean_abs_error_bps']:.4f} bps, bias "
                     f"{m['mean_bias_bps']:+.4f} bps, R^2 {m['r2']:.3f}")
        lines.append(f"  squared error {m['mse']:.4f} vs {m['base_mse']:.4f} predicting the "
                     "training mean")
        lines.append("quantile coverage on the test rows (share of slippage at or below):")
        lines.append(res.table.to_string(float_format=lambda x: f"{x:.4f}"))
        lines.append("pinball loss vs the training quantile: " + ", ".join(
            f"{k} {v:.4f} vs {m['base_pinball'][k]:.4f}" for k, v in m["pinball"].items()))
    if res.weak:
        lines.append(f"WEAK MODEL: {res.weak_reason}")
    return "\n".join(lines)


__all__ = ["DEFAULT_QUANTILES", "SLIPPAGE_FEATURES", "TrainResult", "format_result",
           "slippage_dataset", "train_maker_taker", "train_slippage"]
