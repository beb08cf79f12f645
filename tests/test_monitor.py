"""simlab.monitor: histogram accuracy, the monitor's bookkeeping, the pipeline's stages and
feed latency against the result table, resource sampling, and ``simlab replay --stats``."""

from __future__ import annotations

import json
import math
import mmap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simlab.cli import main
from simlab.feed.events import BookTick, Notice, TradeTick
from simlab.feed.replay import ReplaySource
from simlab.monitor import LatencyHistogram, Monitor, ResourceSampler, merge
from simlab.sim.order import OrderSpec
from simlab.sim.pipeline import MONITOR_STAGES, CostPipeline

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
ORDER = OrderSpec("BTC-USDT", "buy", 10_000.0, "quote")


def exact(values, q):
    """The true q-th percentile as the histogram defines it: the smallest value with at
    least q % of the values at or below it."""
    v = np.sort(np.asarray(values))
    return v[max(1, math.ceil(q / 100 * len(v))) - 1]


# -- histogram --------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2**40), min_size=1, max_size=400),
       st.sampled_from([0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 100.0]))
def test_percentile_within_the_stated_relative_error(values, q):
    h = LatencyHistogram(sub_bits=5)
    h.add_many(values)
    true = exact(values, q)
    # a bucket above 2**5 is 1/32 of its lower bound wide; the midpoint is within half that
    assert abs(h.percentile(q) - true) <= max(0.5, true / 32), (q, true, h.percentile(q))
    assert h.count == len(values) and h.max == max(values) and h.min == min(values)
    assert h.total == sum(values)


def test_every_value_lies_in_its_bucket():
    h = LatencyHistogram(sub_bits=4, max_bits=30)
    v = np.r_[np.arange(0, 5000), np.random.default_rng(0).integers(0, 2**30 - 1, 10_000)]
    low, high = h.bucket_bounds()
    i = h.index(v)
    assert ((low[i] <= v) & (v < high[i])).all()
    assert (np.diff(low) > 0).all() and (low[1:] == high[:-1]).all()  # contiguous, ordered


def test_lognormal_percentiles_against_numpy():
    v = np.random.default_rng(1).lognormal(10, 1.5, 100_000).astype(np.int64)
    h = LatencyHistogram()
    for chunk in np.array_split(v, 7):
        h.add_many(chunk)
    for q in (50, 90, 99, 99.9):
        assert h.percentile(q) == pytest.approx(exact(v, q), rel=1 / 32)
    assert h.summary()["max"] == v.max() and h.mean == pytest.approx(v.mean())


def test_merge_equals_adding_everything_to_one():
    rng = np.random.default_rng(2)
    a_v, b_v = rng.integers(0, 10**7, 3000), rng.integers(0, 10**5, 500)
    a, b, both = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    a.add_many(a_v)
    b.add_many(b_v)
    both.add_many(np.r_[a_v, b_v])
    a.merge(b)
    assert (a.counts == both.counts).all() and a.summary() == both.summary()
    with pytest.raises(ValueError, match="different shapes"):
        a.merge(LatencyHistogram(sub_bits=3))


def test_negative_values_are_counted_and_clock_skew_visible():
    h = LatencyHistogram()
    h.add_many([-3_000_000, 5_000_000, 6_000_000])
    s = h.summary(1e6)
    assert s["negative"] == 1 and s["min"] == -3.0 and s["max"] == 6.0


def test_dict_round_trip_and_bad_dicts():
    h = LatencyHistogram()
    h.add_many([1, 900, 70_000, 70_000])
    d = json.loads(json.dumps(h.to_dict()))
    assert LatencyHistogram.from_dict(d).summary() == h.summary()
    d["count"] = 5
    with pytest.raises(ValueError, match="count says 5"):
        LatencyHistogram.from_dict(d)
    with pytest.raises(ValueError, match="not a LatencyHistogram dict"):
        LatencyHistogram.from_dict({"sub_bits": 5})


@pytest.mark.parametrize("bad", [["a"], [1.5, float("nan")]])
def test_bad_values_are_refused(bad):
    with pytest.raises(ValueError, match="integers"):
        LatencyHistogram().add_many(bad)


def test_empty_histogram_reports_nan():
    s = LatencyHistogram().summary()
    assert s["count"] == 0 and math.isnan(s["p50"]) and math.isnan(s["max"])


# -- monitor ----------------------------------------------------------------------------------
def test_add_rows_skips_stages_that_did_not_run():
    m = Monitor(resources=False)
    m.add_rows(("a", "b"), [(10, -1), (20, 30), (40, -1)])
    assert m.stages["a"].count == 3 and m.stages["b"].count == 1
    with pytest.raises(ValueError, match="2 values each"):
        m.add_rows(("a", "b"), [(1, 2, 3)])


def test_observe_counts_streams_feed_latency_and_notices():
    m = Monitor(resources=False, flush_every=3)  # several flushes on the way
    t0 = 1_700_000_000_000_000_000
    for i in range(10):
        m.observe(BookTick(i, t0 + i * 100_000_000 + 7_000_000, t0 // 10**6 + i * 100,
                           "books", "X", None, True, False))
    for i in range(4):
        m.observe(TradeTick(10 + i, t0 + 2_000_000 + i * 10**9, t0 // 10**6 + i * 1000,
                            "trades", "Y", str(i), "buy", 1.0, 1.0))
    m.observe(Notice("gap", 14, t0))
    s = m.summary()
    assert s["streams"]["books:X"]["messages"] == 10
    assert s["streams"]["books:X"]["rate_per_s"] == pytest.approx(10 / 0.9)
    assert s["streams"]["trades:Y"]["kind"] == "trade"
    assert s["feed_latency"]["X"]["p50_ms"] == pytest.approx(7.0, rel=1 / 64)
    assert s["feed_latency"]["Y"]["max_ms"] == 2.0
    assert s["notices"] == {"gap": 1} and s["events"] == 15
    series = m.rate_series()
    assert series["books"].sum() == 10 and series["trades"].sum() == 4
    json.dumps(s)  # JSON-able


def test_from_summary_and_merge_keep_the_numbers():
    a, b = Monitor(resources=False), Monitor(resources=False)
    a.add_many("walk", [1_000, 2_000])
    b.add_many("walk", [3_000])
    b.observe_message("book", "books", "X", 10**18, 10**12 - 5)
    m = merge([a, b])
    assert m.stages["walk"].count == 3 and m.summary()["streams"]["books:X"]["messages"] == 1
    back = Monitor.from_summary(json.loads(json.dumps(m.summary())))
    assert back.latency_frame().equals(m.latency_frame())
    assert back.feed["X"].max == 5_000_000
    with pytest.raises(ValueError, match=r"Monitor\.summary"):
        Monitor.from_summary({"stages": {}})


def test_frames_and_text():
    m = Monitor(resources=False)
    m.add_many("parse", [2_000] * 5)
    m.observe_message("book", "books", "X", 2 * 10**9, 1_000)
    f = m.frame()
    assert set(f["group"]) == {"stage", "feed_latency", "stream"}
    row = f[f["name"] == "parse"].iloc[0]
    assert row["count"] == 5 and row["p50"] == 2.0 and row["unit"] == "us"
    text = m.format("T")
    assert text.startswith("T\nstage latency (us)") and "books:X" in text


def test_resource_sampler_sees_a_busy_thread_and_memory():
    s = ResourceSampler(interval=0.05)
    c0 = time.process_time()
    with s:
        t0 = time.thread_time()
        end = time.perf_counter() + 0.4
        junk = []
        while time.perf_counter() < end:
            if len(junk) < 40:
                # 1 MB of fresh pages, written: RSS grows (a bytearray could reuse memory
                # the allocator already holds, in a long test session)
                m = mmap.mmap(-1, 1 << 20)
                m.write(b"x" * (1 << 20))
                junk.append(m)
            sum(range(10_000))
        busy = time.thread_time() - t0
    used = time.process_time() - c0
    for m in junk:
        m.close()
    r = s.summary()
    assert r["samples"] >= 3 and not s.running  # start, stop, and at least one in between
    # the sampled span holds the busy loop and lies within [c0, now]: its CPU seconds are
    # at least this thread's and at most the process's (0.02 s: the clocks' granularity)
    assert busy - 0.02 <= r["cpu_s"] <= used + 0.02
    assert r["cpu_pct_mean"] == pytest.approx(100 * r["cpu_s"] / r["span_s"])
    assert r["rss_mb_peak"] >= r["rss_mb_first"] + 30 and r["threads_max"] >= 2
    df = s.frame()
    assert list(df.columns[:3]) == ["time", "t", "cpu_pct"] and len(df) == r["samples"]
    with pytest.raises(ValueError, match="interval"):
        ResourceSampler(interval=0)


def test_monitor_resources_frame_needs_sampling():
    with pytest.raises(ValueError, match="samples no resources"):
        Monitor(resources=False).resources_frame()


# -- the pipeline's monitor -------------------------------------------------------------------
@pytest.fixture(scope="module")
def events_run():
    mon = Monitor(interval=0.05)
    p = CostPipeline(ORDER, monitor=mon,
                     metadata=ReplaySource(SAMPLE, insts=["BTC-USDT"]).instruments)
    with mon:
        res = p.run(ReplaySource(SAMPLE, insts=["BTC-USDT"], channels=["books", "trades"]))
    return res, mon


def test_pipeline_monitor_agrees_with_the_per_tick_latency(events_run):
    res, mon = events_run
    assert res.monitor is mon
    n = len(res.table)
    s = mon.summary()["stages"]
    assert {k for k, v in s.items() if v["count"]} == {"parse", "apply", "walk", "costs",
                                                        "total"}  # a market order
    assert all(s[k]["count"] == n for k in ("parse", "apply", "walk", "costs", "total"))
    for stage, col in (("total", "total_ns"), ("walk", "walk_ns")):
        v = res.latency[col].to_numpy()
        for q, key in ((50, "p50_us"), (99, "p99_us")):
            assert s[stage][key] * 1e3 == pytest.approx(exact(v, q), rel=1 / 32, abs=1)
        # exact but for the ns -> us -> ns float round trip (258273 / 1e3 * 1e3 != 258273)
        assert s[stage]["max_us"] * 1e3 == pytest.approx(v.max(), rel=1e-12, abs=0)
    # decode = parse + apply
    assert (mon.stages["parse"].total + mon.stages["apply"].total
            == res.latency["decode_ns"].sum())


def test_pipeline_monitor_feed_latency_and_counts(events_run):
    res, mon = events_run
    t = res.table
    lat = (t["recv_ns"] - t["ts_ms"] * 1_000_000).to_numpy()
    f = mon.summary()["feed_latency"]["BTC-USDT"]
    trades = mon.summary()["streams"]["trades:BTC-USDT"]["messages"]
    assert f["count"] == len(t) + trades
    assert f["max_ms"] * 1e6 >= lat.max()
    # the sample recording is written 5 ms after the exchange time (data/make_sample.py)
    assert f["p50_ms"] == pytest.approx(5.0, rel=1 / 32)
    books = mon.summary()["streams"]["books:BTC-USDT"]
    assert books["messages"] == res.counts["book_ticks"]
    r = mon.summary()["resources"]
    assert r["samples"] >= 2 and r["rss_mb_peak"] > 0


def test_limit_order_with_a_model_times_the_model():
    p = CostPipeline(OrderSpec("BTC-USDT", "buy", 0.01, "base", order_type="limit"))
    res = p.run(ReplaySource(SAMPLE, insts=["BTC-USDT"], channels=["books"]))
    s = res.monitor.summary()["stages"]
    assert s["maker_taker"]["count"] == len(res.table) > 0
    assert "features" not in s or s["features"]["count"] == 0  # the default reads the touch
    lat = res.latency
    assert (lat["models_ns"] >= 0).all()
    assert res.monitor.stages["maker_taker"].total + res.monitor.stages["costs"].total \
        == lat["models_ns"].sum()
    assert MONITOR_STAGES[-1] == "total"


def test_monitor_off_and_columnar():
    src = ReplaySource(SAMPLE, insts=["BTC-USDT"], channels=["books"])
    assert CostPipeline(ORDER, monitor=False).run(src).monitor is None
    with pytest.raises(TypeError, match="monitor must be"):
        CostPipeline(ORDER, monitor="yes")
    res = CostPipeline(ORDER).run_recording(SAMPLE)
    s = res.monitor.summary()
    assert s["streams"]["books:BTC-USDT"]["messages"] == res.counts["book_ticks"]
    assert s["feed_latency"]["BTC-USDT"]["p50_ms"] == pytest.approx(5.0, rel=1 / 32)


def test_replay_cli_stats(capsys):
    rc = main(["replay", str(SAMPLE), "--inst", "BTC-USDT", "--side", "buy", "--notional",
               "10000", "--mode", "events", "--no-impact", "--stats"])
    out = capsys.readouterr().out
    assert rc == 0
    perf = out[out.index("performance (events replay)"):]
    for stage in ("parse", "apply", "walk", "costs", "total"):
        assert f"\n{stage} " in perf
    assert "feed latency (ms)" in perf and "books:BTC-USDT" in perf and "RSS" in perf
    rc = main(["replay", str(SAMPLE), "--inst", "BTC-USDT", "--side", "buy", "--notional",
               "10000", "--no-impact", "--stats", "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["monitor"]["streams"]["books:BTC-USDT"]["messages"] > 0
