"""The per-tick cost pipeline: at every book tick, what would this order cost?

:class:`CostPipeline` prices one :class:`~simlab.sim.order.OrderSpec` on one instrument's
book. It runs in two ways that give the same numbers:

- **per event** (:meth:`CostPipeline.on_event`): live, or over any
  :class:`~simlab.feed.source.Source`; each valid book tick is priced as it comes, and the
  time spent in each stage is measured (``decode``: parse the frame and update the book;
  ``walk``: walk the book with the order; ``models``: slippage, fees, impact and maker/taker
  formulas; ``total``);
- **columnar** (:meth:`CostPipeline.run_recording`): the book is rebuilt from the
  recording's ``levels`` table in compiled code and the formulas run on whole arrays, which
  is much faster; the stages are timed per batch and reported per tick on average.

Both evaluate :func:`simlab.sim.costs.tick_costs`, the one formula written for Python floats
and numpy arrays alike, so the result tables are equal to the bit. Latency is kept apart
from the results (:meth:`CostResult.latency`): it differs from run to run, the results do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from time import perf_counter_ns
from typing import Any

import numpy as np
import pandas as pd

from simlab.book.batch import Order
from simlab.feed.events import Event
from simlab.feed.replay import (
    ReplayError,
    check_range,
    check_time_basis,
    in_window,
    open_recordings,
    recv_window,
)
from simlab.feed.source import to_ns
from simlab.feed.tables import book_messages, summarize
from simlab.models.fill_features import FILL_FEATURES, FeatureParams, FillFeatureState
from simlab.models.fill_labels import BookPath, TradePath
from simlab.models.impact import ACParams, cost_coefficients
from simlab.models.maker_taker import MakerTakerModel, QueueShareModel
from simlab.monitor import Monitor

from .costs import COST_COLUMNS, CostConstants, maker_probability, tick_costs
from .fill_dataset import TRADES_CHANNEL, StreamPaths, run_features, trade_path
from .model_use import check_slippage_model, model_guard, slippage_columns, slippage_inputs
from .order import Instrument, OrderSpec
from .rebuild import rebuild_messages

#: Columns of the per-tick result table, in order. ``filled_share``: the part of the order
#: the visible book filled (filled / requested, in the order's unit; 1 when ``complete``).
RESULT_COLUMNS = ("rec", "arrival", "recv_ns", "ts_ms", "best_bid", "best_ask", "bid_size",
                  "ask_size", *COST_COLUMNS, "filled_share")
#: Latency stages of :attr:`CostResult.latency`, in ns per tick.
STAGES = ("decode", "walk", "models", "total")
#: The finer stages the monitor keeps (:attr:`CostPipeline.monitor`): ``decode`` is ``parse``
#: + ``apply``; ``models`` is ``features`` (history features, for a model that reads them)
#: + ``maker_taker`` (the model's prediction, limit orders) + ``costs`` (slippage, fee and
#: impact formulas).
MONITOR_STAGES = ("parse", "apply", "walk", "features", "maker_taker", "costs", "total")
#: The cost columns of a :func:`tick_costs` result, in order, at C speed.
_costs_of = itemgetter(*COST_COLUMNS)
#: Priced ticks between two hand-overs of the latencies to the monitor.
_MONITOR_EVERY = 4096
#: Maker/taker model inputs read straight off the book at the tick.
TOUCH_FEATURES = ("own_best_size", "opp_best_size", "order_size")


def needs_history(model: Any) -> bool:
    """Whether a maker/taker model reads more than the book's touch (then the pipeline
    keeps a :class:`FillFeatureState` and needs the trades).

    >>> needs_history(QueueShareModel())
    False
    """
    return any(f not in TOUCH_FEATURES and f in FILL_FEATURES for f in model.features)


def model_feature_params(model: Any) -> FeatureParams:
    """How a model's history features are computed: its ``info["feature_params"]`` (a
    trained model saves them), else the defaults.

    >>> model_feature_params(QueueShareModel()).lookback_ms
    5000
    """
    fp = (getattr(model, "info", None) or {}).get("feature_params") or {}
    return FeatureParams(**fp)


@dataclass
class CostResult:
    """The per-tick table (:attr:`table`), the latency per tick and stage (:attr:`latency`,
    live/per-event runs) or per batch (:attr:`batch_latency`, columnar runs), and counts."""

    order: OrderSpec
    instrument: Instrument
    impact: ACParams | None
    table: pd.DataFrame
    latency: pd.DataFrame
    counts: dict[str, Any] = field(default_factory=dict)
    batch_latency: dict[str, float] | None = None
    mode: str = "events"
    monitor: Monitor | None = None

    def summary(self, include_incomplete: bool = False) -> dict[str, Any]:
        """Means and percentiles of the costs, maker probability and latency; the costs
        cover the ticks where the book filled the whole order unless ``include_incomplete``
        (see :func:`simlab.sim.summary.fill_summary`)."""
        from .summary import summarize_result

        return summarize_result(self, include_incomplete)

    def sampled(self, every: float) -> pd.DataFrame:
        """One row per ``every`` seconds of receive time: the last tick in each interval
        (intervals without a tick have no row), with ``ticks`` = how many it stands for.

        >>> r.sampled(1.0)[["recv_ns", "net_bps", "ticks"]]           # doctest: +SKIP
        """
        if not (isinstance(every, (int, float)) and every > 0):
            raise ValueError(f"every must be a number of seconds > 0, got {every!r}")
        t = self.table
        if t.empty:
            return t.assign(ticks=pd.Series(dtype="int64"))
        key = (t["recv_ns"] // int(every * 1e9)).to_numpy()
        last = np.flatnonzero(np.r_[key[1:] != key[:-1], True])
        counts = np.diff(np.r_[-1, last])
        return t.iloc[last].assign(ticks=counts).reset_index(drop=True)

    def to_parquet(self, path: str | Path) -> Path:
        """Write the per-tick table (deterministic: equal runs give equal bytes)."""
        path = Path(path)
        self.table.to_parquet(path, index=False, compression="zstd")
        return path


class CostPipeline:
    """Price ``order`` at every valid tick of its instrument's book on ``channel``.

    ``impact``: Almgren-Chriss parameters in the units of :mod:`simlab.models.impact`
    (base units, quote currency, seconds); None prices no impact. ``model``: the
    maker/taker model for limit orders (default :class:`QueueShareModel`, a documented
    heuristic until a trained one is loaded). ``instrument``: contract terms; by default
    from ``metadata`` (a source's or recording's instrument metadata). ``monitor``: a
    :class:`~simlab.monitor.Monitor` that receives the stage latencies
    (:data:`MONITOR_STAGES`), the feed latency and the message counts of every event; True
    (the default) makes one per run without resource sampling, False records none. Its
    cost is a list append per tick and event (see ``python -m benchmarks --only monitor``).

    >>> from simlab.feed.replay import ReplaySource
    >>> p = CostPipeline(OrderSpec("BTC-USDT", "buy", 100.0))      # doctest: +SKIP
    >>> r = p.run(ReplaySource("rec"))                              # doctest: +SKIP
    >>> r.table[["mid", "slippage_bps", "net_bps"]].describe()      # doctest: +SKIP
    """

    def __init__(self, order: OrderSpec, *, channel: str = "books",
                 impact: ACParams | None = None, model: MakerTakerModel | None = None,
                 instrument: Instrument | None = None,
                 metadata: dict[str, dict[str, Any]] | None = None,
                 monitor: Monitor | bool = True, slippage_model: Any = None) -> None:
        if not isinstance(order, OrderSpec):
            raise TypeError(f"order must be an OrderSpec, got {type(order).__name__}")
        self.order = order
        self.channel = channel
        self.instrument = instrument or Instrument.from_metadata(
            order.inst, (metadata or {}).get(order.inst))
        self.impact = impact
        self.model = model or QueueShareModel()
        ct = self.instrument.ct_val
        self.consts = CostConstants(
            buy=order.buy, limit=order.order_type == "limit", ct_val=ct,
            rates=order.fees(self.instrument.inst_type),
            impact_c2=cost_coefficients(impact)[1] if impact is not None else 0.0,
            model=self.model, amount=order.quantity / ct)
        self.walk_order = Order(order.buy, order.quantity / ct, order.unit == "quote")
        # a model that reads history (trade flow, OFI ...) gets it from one FillFeatureState
        # fed with our book and trades, as in training (simlab.sim.fill_dataset)
        feats = tuple(self.model.features)
        unknown = [f for f in feats if f not in TOUCH_FEATURES and f not in FILL_FEATURES]
        if unknown:
            raise ValueError(f"maker/taker model {self.model.name!r} needs features "
                             f"{unknown} that the pipeline cannot compute; it provides "
                             f"{list(TOUCH_FEATURES) + list(FILL_FEATURES)}")
        # a trained slippage model, reported beside the walk (sim/model_use.py), reads the
        # taken side's depth and the volatility: the same feature state as a trained
        # maker/taker model
        self.slippage_model = (None if slippage_model is None else
                               check_slippage_model(slippage_model, order.side))
        self._mt_history = order.order_type == "limit" and needs_history(self.model)
        self.history = self._mt_history or self.slippage_model is not None
        self.feature_params = self._feature_params() if self.history else None
        # trained models warn once when weak, and when fed inputs outside their training
        self._mt_check = (model_guard(self.model, "maker/taker model")
                          if self.consts.limit else None)
        self._slip_check = (None if self.slippage_model is None else
                            model_guard(self.slippage_model, "slippage model"))
        self._only_fill = all(f in FILL_FEATURES for f in feats)
        self.tick_size = self._tick_size() if self.history else math.nan
        if not isinstance(monitor, Monitor | bool):
            raise TypeError(f"monitor must be a simlab.monitor.Monitor or a bool, got "
                            f"{type(monitor).__name__}")
        self._own_monitor = monitor is True
        self.monitor: Monitor | None = monitor if isinstance(monitor, Monitor) else None
        self.reset()

    def _feature_params(self) -> FeatureParams:
        mt = model_feature_params(self.model) if self._mt_history else None
        sl = (model_feature_params(self.slippage_model) if self.slippage_model is not None
              else None)
        if mt is not None and sl is not None and mt != sl:
            raise ValueError(f"the maker/taker model's features were computed with {mt} and "
                             f"the slippage model's with {sl}: train both with the same "
                             "--lookback and --depth-levels")
        return mt or sl

    def _tick_size(self) -> float:
        t = self.instrument.tick_sz
        if t > 0:
            return t
        t = (getattr(self.model, "info", None) or {}).get("tick_size")
        if isinstance(t, int | float) and t > 0:
            return float(t)
        if not self._mt_history:
            return 1.0  # the slippage model reads no feature in ticks
        raise ValueError(f"the maker/taker model needs {self.order.inst}'s tick size: the "
                         "instrument metadata has none and the model does not record one")

    @property
    def channels(self) -> list[str]:
        """The channels this pipeline reads: the book, and the trades for a model that
        uses trade flow."""
        return [self.channel, TRADES_CHANNEL] if self.history else [self.channel]

    def _inputs(self, f: dict[str, Any], own: Any, opp: Any, size: Any) -> dict[str, Any]:
        if self._only_fill:
            return f  # a model ignores the features it does not read
        touch = {"own_best_size": own, "opp_best_size": opp, "order_size": size}
        return {k: (f[k] if k in f else touch[k]) for k in self.model.features}

    def reset(self) -> None:
        """Forget the ticks priced so far."""
        self._rows: list[tuple] = []
        self._slip_rows: list[tuple] = []  # the slippage model's outputs, per priced tick
        self._lat: list[tuple[int, ...]] = []  # MONITOR_STAGES per tick, -1: did not run
        self._mon_at = 0
        if self._own_monitor:
            self.monitor = Monitor(resources=False)
        self._observe = self.monitor.observe if self.monitor is not None else None
        self.counts: dict[str, int] = {"book_ticks": 0, "invalid": 0, "priced": 0,
                                       "other_streams": 0}
        self.state = (FillFeatureState(self.feature_params, tick_size=self.tick_size)
                      if self.history else None)
        self._rec = 0

    # -- per event ----------------------------------------------------------------------------
    def on_event(self, ev: Event) -> dict[str, Any] | None:
        """Price one event if it is a valid tick of our book; returns the row (or None)."""
        row = self._price(ev)
        return None if row is None else dict(zip(RESULT_COLUMNS, row, strict=True))

    def _price(self, ev: Event) -> tuple | None:
        """:meth:`on_event` without the row as a dict (the runs below need only the table)."""
        st = self.state
        if st is not None and ev.rec != self._rec:
            # each recording replays from an empty book, and columnar runs each alone
            st = self.state = FillFeatureState(self.feature_params, tick_size=self.tick_size)
            self._rec = ev.rec
        if ev.kind != "book":
            if self._observe is not None:
                self._observe(ev)
            if st is not None and ev.kind == "trade" and ev.inst == self.order.inst:
                st.on_trade(ev.ts_ms, ev.price, ev.size, ev.side == "buy")
            return None
        if ev.inst != self.order.inst or ev.channel != self.channel:
            if self._observe is not None:
                self._observe(ev)
            self.counts["other_streams"] += 1
            return None
        self.counts["book_ticks"] += 1
        if not ev.valid:
            # priced ticks reach the monitor in batches (flush_monitor), these one by one
            if self._observe is not None:
                self._observe(ev)
            self.counts["invalid"] += 1
            if st is not None:
                st.on_invalid()
            return None
        t0 = perf_counter_ns()
        o = self.walk_order
        bid, bsz, ask, asz, gb, gq, rem = ev.book.touch_walk(o.buy, o.amount, o.quote)
        t1 = perf_counter_ns()
        consts = self.consts
        if st is None:
            tf = t1
            feats = None
        else:
            n = self.feature_params.depth_levels
            if ev.snapshot:
                st.reset_book()  # a resync: no flow history across it
            bd, ad = ev.book.depth("bid", levels=n), ev.book.depth("ask", levels=n)
            st.on_book(ev.ts_ms, bid, bsz, ask, asz, bd, ad)
            # the order's size as training saw it: requested, in book units at our price
            f = st.features(ev.ts_ms, o.buy,
                            o.amount / (bid if o.buy else ask) if o.quote else o.amount)
            own, opp = (bsz, asz) if o.buy else (asz, bsz)
            feats = self._inputs(f, own, opp, gb) if self._mt_history else None
            if self.slippage_model is not None:
                self._slip_rows.append(self._slippage(bid, ask, bsz, asz, gb,
                                                      ad if o.buy else bd,
                                                      f["volatility_bps"]))
            tf = perf_counter_ns()
        if self._mt_check is not None:
            self._mt_check.check(self._checked(feats, bid, ask, bsz, asz))
        if consts.limit:
            p = maker_probability(bsz, asz, gb, consts, feats)
            tm = perf_counter_ns()
        else:
            p, tm = None, tf
        c = tick_costs(bid, ask, bsz, asz, gb, gq, rem, consts, feats, p)
        t2 = perf_counter_ns()
        # complete is within a rounding of the amount: its share is 1, not 1 - 1e-16
        row = (ev.rec, ev.arrival, ev.recv_ns, ev.ts_ms, bid, ask, bsz, asz, *_costs_of(c),
               1.0 if c["complete"] else (gq if o.quote else gb) / o.amount)
        self._rows.append(row)
        self.counts["priced"] += 1
        parse = ev.parse_ns
        self._lat.append((parse, ev.decode_ns - parse, t1 - t0, -1 if st is None else tf - t1,
                          tm - tf if consts.limit else -1, t2 - tm, ev.decode_ns + t2 - t0))
        if self.monitor is not None and len(self._lat) - self._mon_at >= _MONITOR_EVERY:
            self.flush_monitor()
        return row

    def run(self, source: Any) -> CostResult:
        """Price every tick of a synchronous source (e.g. a ReplaySource)."""
        self.reset()
        on = self._price
        for ev in source:
            on(ev)
        return self.result()

    async def arun(self, source: Any) -> CostResult:
        """Price every tick of an asynchronous source (a LiveSource, or a paced replay)."""
        self.reset()
        on = self._price
        async for ev in source:
            on(ev)
        return self.result()

    def flush_monitor(self) -> Monitor | None:
        """Hand the latencies measured since the last call to :attr:`monitor` (done every
        few thousand ticks and by :meth:`result`); returns the monitor, up to date."""
        m = self.monitor
        if m is not None:
            if len(self._lat) > self._mon_at:
                m.add_rows(MONITOR_STAGES, self._lat[self._mon_at:])
                m.observe_rows("book", self.channel, self.order.inst,
                               self._rows[self._mon_at:], 2, 3)
                self._mon_at = len(self._lat)
            m.flush()
        return m

    def latency_table(self) -> pd.DataFrame:
        """The per-tick latencies of :data:`STAGES` (ns): ``decode`` = parse + apply,
        ``models`` = features + maker/taker + cost formulas."""
        a = np.asarray(self._lat, dtype=np.int64).reshape(-1, len(MONITOR_STAGES))
        pos = np.maximum(a, 0)
        cols = {"decode_ns": pos[:, 0] + pos[:, 1], "walk_ns": a[:, 2],
                "models_ns": pos[:, 3] + pos[:, 4] + pos[:, 5], "total_ns": a[:, 6]}
        return pd.DataFrame(cols, columns=[f"{s}_ns" for s in STAGES], dtype="int64")

    def result(self) -> CostResult:
        """The ticks priced so far as a :class:`CostResult`."""
        table = self._with_slippage(_table(self._rows), self._slip_rows)
        return CostResult(self.order, self.instrument, self.impact, table,
                          self.latency_table(), dict(self.counts), mode="events",
                          monitor=self.flush_monitor())

    # -- columnar -----------------------------------------------------------------------------
    def run_recording(self, recordings: Any, *, start: Any = None, end: Any = None,
                      validity: str = "auto", time_basis: str = "exchange") -> CostResult:
        """Price every valid tick of one or several recordings (in sequence, each from an
        empty book), rebuilding the book from the ``levels`` table in compiled code.
        ``start``/``end`` are on the clock ``time_basis``: ``"exchange"`` (the messages'
        ``ts_ms``, the default) or ``"recv"`` (local receive time)."""
        recs = open_recordings(recordings)
        start_ns, end_ns = to_ns(start, "start"), to_ns(end, "end")
        exchange = check_time_basis(time_basis) == "exchange" and (
            start_ns is not None or end_ns is not None)
        if exchange:
            check_range(recs, start_ns, end_ns, "exchange", [self.channel], [self.order.inst])
        if self._own_monitor:
            self.monitor = Monitor(resources=False)
        mon = self.monitor
        parts, stages = [], dict.fromkeys(("read", "walk", "models"), 0)
        counts = {"book_ticks": 0, "invalid": 0, "priced": 0, "streams": []}
        for i, rec in enumerate(recs):
            t0 = perf_counter_ns()
            if exchange:
                # the receive times that hold the range rebuild the book; of those, the
                # ticks stamped in the range are priced
                span = recv_window(rec, start_ns, end_ns, self.channel, self.order.inst)
                if span is None:
                    continue  # nothing of this recording is stamped in the range
                m = book_messages(rec, self.channel, self.order.inst, start=span[0],
                                  end=span[1], validity=validity)
                m.emit &= in_window(m.ts_ms, start_ns, end_ns)
            else:
                m = book_messages(rec, self.channel, self.order.inst, start=start_ns,
                                  end=end_ns, validity=validity)
            t1 = perf_counter_ns()
            if mon is not None:
                sel = m.emit
                mon.observe_arrays("book", self.channel, self.order.inst, m.recv_ns[sel],
                                   m.ts_ms[sel])
            emit = m.emit & m.valid
            b = rebuild_messages(m, orders=[self.walk_order], emit=emit,
                                 depth_n=self.feature_params.depth_levels if self.history else 0)
            t2 = perf_counter_ns()
            w = b.walk[emit, 0]
            bid, ask, bsz, asz = b.bid_px[emit], b.ask_px[emit], b.bid_sz[emit], b.ask_sz[emit]
            inputs = slip = None
            o = self.walk_order
            if self.history:
                size = (o.amount / (bid if o.buy else ask) if o.quote
                        else np.full(len(bid), o.amount))
                f = self._columnar_features(rec, m, b, size, start_ns, end_ns, exchange)
                own, opp = (bsz, asz) if self.order.buy else (asz, bsz)
                inputs = self._inputs(f, own, opp, w[:, 0]) if self._mt_history else None
                if self.slippage_model is not None:
                    slip = self._slippage(bid, ask, bsz, asz, w[:, 0],
                                          b.depth[emit, 1 if o.buy else 0],
                                          f["volatility_bps"])
            if self._mt_check is not None:
                self._mt_check.check(self._checked(inputs, bid, ask, bsz, asz))
            c = tick_costs(bid, ask, bsz, asz, w[:, 0], w[:, 1], w[:, 5], self.consts, inputs)
            t3 = perf_counter_ns()
            n = int(emit.sum())
            cols = {"rec": np.full(n, i, np.int64), "arrival": m.arrival[emit],
                    "recv_ns": m.recv_ns[emit], "ts_ms": m.ts_ms[emit], "best_bid": bid,
                    "best_ask": ask, "bid_size": bsz, "ask_size": asz,
                    **{k: c[k] for k in COST_COLUMNS},
                    "filled_share": np.where(c["complete"], 1.0,
                                             w[:, 1 if self.walk_order.quote else 0]
                                             / self.walk_order.amount)}
            parts.append(pd.DataFrame(cols, columns=list(RESULT_COLUMNS)))
            if slip is not None:
                parts[-1] = self._with_slippage(parts[-1], slip)
            stages["read"] += t1 - t0
            stages["walk"] += t2 - t1
            stages["models"] += t3 - t2
            counts["book_ticks"] += int(m.emit.sum())
            counts["invalid"] += int((m.emit & ~m.valid).sum())
            counts["priced"] += n
            counts["streams"].append(summarize(m))
        if not parts:
            raise ReplayError("nothing to replay")
        table = _table(None, parts[0] if len(parts) == 1 else pd.concat(parts,
                                                                         ignore_index=True))
        n = max(counts["priced"], 1)
        batch = {f"{k}_ns_per_tick": v / n for k, v in stages.items()}
        batch["total_ns_per_tick"] = sum(stages.values()) / n
        batch["ticks_per_s"] = counts["priced"] / (sum(stages.values()) / 1e9) if sum(
            stages.values()) else math.nan
        if mon is not None:
            mon.flush()
        return CostResult(self.order, self.instrument, self.impact, table,
                          pd.DataFrame(columns=[f"{s}_ns" for s in STAGES], dtype="int64"),
                          counts, batch, mode="columnar", monitor=mon)


    @property
    def outside_training(self) -> dict[str, dict[str, Any]]:
        """The inputs found outside a trained model's training range so far, per model
        (``maker_taker_model``, ``slippage_model``) and input: the value, the share of the
        values checked, and the training ``min``/``max``. Empty when all were inside (or no
        trained model is used). Each was also warned about once
        (:class:`~simlab.models.ranges.ModelRangeWarning`).

        >>> CostPipeline(OrderSpec("BTC-USDT", "buy", 100.0)).outside_training
        {}
        """
        return {k: dict(c.outside) for k, c in (("maker_taker_model", self._mt_check),
                                                 ("slippage_model", self._slip_check))
                if c is not None and c.outside}

    def _checked(self, feats: dict[str, Any] | None, bid: Any, ask: Any, bsz: Any,
                 asz: Any) -> dict[str, Any]:
        """What the maker/taker model's range check sees: its inputs, and the order's size
        as training recorded it (requested, in book units at our price)."""
        o = self.walk_order
        size = o.amount / (bid if o.buy else ask) if o.quote else o.amount
        if isinstance(bid, np.ndarray) and not isinstance(size, np.ndarray):
            size = np.full(len(bid), size)  # a batch is checked as a batch, tick by tick
        if feats is None:  # a model of the touch only
            own, opp = (bsz, asz) if o.buy else (asz, bsz)
            return {"own_best_size": own, "opp_best_size": opp, "order_size": size}
        d = dict(feats)
        d["order_size"] = size
        return d

    def _slippage(self, bid: Any, ask: Any, bsz: Any, asz: Any, walk_base: Any,
                  taken_depth: Any, vol: Any) -> Any:
        """The slippage model's outputs at a tick (a tuple of floats) or a batch (a dict of
        arrays, by column), after the range check of its inputs."""
        m = self.slippage_model
        x = slippage_inputs(bid, ask, bsz, asz, walk_base, taken_depth, vol, self.order.buy)
        if self._slip_check is not None:
            notional = (self.order.quantity if self.order.unit == "quote"
                        else self.order.quantity * (bid + ask) * 0.5)
            self._slip_check.check({**x, "notional": notional})
        pred = m.predict(**x)
        if isinstance(bid, np.ndarray):
            return dict(zip(slippage_columns(m), (pred[k] for k in m.outputs), strict=True))
        return tuple(pred[k] for k in m.outputs)

    def _with_slippage(self, table: pd.DataFrame, slip: Any) -> pd.DataFrame:
        """``table`` with the slippage model's columns (unchanged without a model)."""
        m = self.slippage_model
        if m is None:
            return table
        names = slippage_columns(m)
        if not isinstance(slip, dict):
            a = np.asarray(slip, dtype=np.float64).reshape(-1, len(names))
            slip = {k: a[:, i] for i, k in enumerate(names)}
        return table.assign(**{k: np.asarray(v, dtype=np.float64) for k, v in slip.items()})

    def _columnar_features(self, rec: Any, m: Any, b: Any, size: np.ndarray,
                           start_ns: int | None, end_ns: int | None,
                           exchange: bool = False) -> dict[str, np.ndarray]:
        """The history features at every priced tick: the emitted messages and the trades
        of the same time range through one FillFeatureState, in arrival order, exactly
        as :meth:`on_event` sees them."""
        sel = np.flatnonzero(m.emit)
        book = BookPath.from_arrays(arrival=m.arrival[sel], ts_ms=m.ts_ms[sel],
                                    bid=b.bid_px[sel], bid_sz=b.bid_sz[sel], ask=b.ask_px[sel],
                                    ask_sz=b.ask_sz[sel], valid=m.valid[sel],
                                    snapshot=m.snapshot[sel])
        if exchange:
            tp = trade_path(rec, self.order.inst)
            keep = in_window(tp.ts_ms, start_ns, end_ns)
            tp = TradePath.from_arrays(arrival=tp.arrival[keep], ts_ms=tp.ts_ms[keep],
                                       price=tp.price[keep], size=tp.size[keep],
                                       buy=tp.buy[keep])
        else:
            tp = trade_path(rec, self.order.inst, start=start_ns, end=end_ns)
        paths = StreamPaths(book, tp,
                            b.depth[sel, 0], b.depth[sel, 1], m.recv_ns[sel])
        at = np.flatnonzero(m.valid[sel])
        return run_features(paths, at, np.full(len(at), self.order.buy), size,
                            params=self.feature_params, tick_size=self.tick_size)


_DTYPES = {"rec": "int64", "arrival": "int64", "recv_ns": "int64", "ts_ms": "int64",
           "complete": "bool"}


def _table(rows: list[tuple] | None, df: pd.DataFrame | None = None) -> pd.DataFrame:
    if df is None:
        df = pd.DataFrame(rows or [], columns=list(RESULT_COLUMNS))
    for c in RESULT_COLUMNS:
        want = _DTYPES.get(c, "float64")
        if df[c].dtype != want:
            df[c] = df[c].astype(want)
    return df
