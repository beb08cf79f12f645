"""Peers B (nautilus_trader, hftbacktest): on the real capture their books equal simlab's after
every book message, and they need no network. Run only with the ``bench`` extra installed;
the shared level-event layout is checked against simlab's replay arrays either way."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from support import real

from benchmarks._common import capture_frames
from benchmarks.bench_replay import level_arrays
from benchmarks.peers import hftbacktest_depth, nautilus_book

ROW_KEYS = {"what", "data", "n", "rate", "spread", "note", "unit"}
CYCLES = 2  # the second cycle re-sends each snapshot: the peers must reset, not merge


@pytest.fixture
def frames() -> list[bytes]:
    """The real capture twice over, as the benchmark repeats it (snapshots re-sent)."""
    real("cryptofeed", "OKX.0")
    return capture_frames(real("cryptofeed", "OKX.ws.1.0")) * CYCLES


def test_first_cycle_is_the_capture(frames):
    capture = frames[:len(frames) // CYCLES]
    assert nautilus_book.first_cycle(frames) == capture
    assert nautilus_book.first_cycle(capture) == capture


def test_level_events_are_simlabs_replay_rows(frames):
    ev = hftbacktest_depth.level_events(frames)
    assert hftbacktest_depth.level_rows(ev) == len(ev) == 8264 * CYCLES
    assert [inst for _, inst in ev.dtype.metadata["streams"]] == [
        "BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT"]
    ours, theirs = hftbacktest_depth.to_simlab(ev), level_arrays(frames)
    assert ours.keys() == theirs.keys()
    for k in theirs:
        assert ours[k].dtype == theirs[k].dtype, k
        assert np.array_equal(ours[k], theirs[k], equal_nan=True), k


def test_version_is_none_without_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "nautilus_trader", None)
    monkeypatch.setitem(sys.modules, "hftbacktest", None)
    assert nautilus_book.version() is None
    assert hftbacktest_depth.version() is None


def test_nautilus_instruments_are_injected(frames, offline):
    pytest.importorskip("nautilus_trader")
    inst = nautilus_book.instruments_for(frames)
    kinds = {k: (type(i).__name__, i.price_precision, i.size_precision) for k, i in inst.items()}
    assert kinds == {"BTC-USDT": ("CurrencyPair", 1, 8),
                     "BTC-USD-220527": ("CryptoFuture", 1, 0),
                     "UNI-USD-SWAP": ("CryptoPerpetual", 3, 0)}
    assert inst["UNI-USD-SWAP"].is_inverse
    # the built-in table gives the same instruments when OKX.0 is absent
    builtin = nautilus_book.instruments_for(frames, nautilus_book.BUILTIN_META)
    assert {k: i.id for k, i in builtin.items()} == {k: i.id for k, i in inst.items()}


def test_nautilus_book_equals_simlabs(frames, offline):
    pytest.importorskip("nautilus_trader")
    c = nautilus_book.check(frames)
    assert c["book_msgs"] == 290 * CYCLES
    assert c["same_top"] == c["book_msgs"]
    assert all(c["depth_equal"].values()) and len(c["depth_equal"]) == 3
    assert (c["simlab_checksums_verified"], c["simlab_checksums_failed"]) == (290 * CYCLES, 0)


def test_nautilus_rows(frames, offline):
    pytest.importorskip("nautilus_trader")
    rows = nautilus_book.run(frames, runs=1)
    assert [r["unit"] for r in rows] == ["frames/s", "level rows/s"]
    for r in rows:
        assert set(r) == ROW_KEYS and r["rate"] > 0
        assert "290/290" in r["note"] and "FAILED" not in r["note"]
    assert rows[0]["n"] == len(frames) and rows[1]["n"] == 8264 * CYCLES


def test_hftbacktest_events_clear_each_snapshot(frames):
    hb = pytest.importorskip("hftbacktest")
    ev = hftbacktest_depth.level_events(frames)
    arrays = hftbacktest_depth.to_hftbacktest(ev)
    assert sum(len(a) for a in arrays) == len(ev) + 3 * CYCLES  # one clear per snapshot
    for a in arrays:
        assert np.all(np.diff(a["exch_ts"]) >= 0)
        clears = np.flatnonzero((a["ev"] & 0xFF) == hb.DEPTH_CLEAR_EVENT)
        assert len(clears) == CYCLES and clears[0] == 0
        # side-less: hftbacktest then clears both sides whole
        assert not np.any(a["ev"][clears] & (hb.BUY_EVENT | hb.SELL_EVENT))
    local = hftbacktest_depth.to_hftbacktest(ev, local_only=True)
    assert not np.any(local[0]["ev"] & hb.EXCH_EVENT)


def test_hftbacktest_depths_equal_simlabs(frames, offline):
    pytest.importorskip("hftbacktest")
    c = hftbacktest_depth.check(frames)
    assert c["book_msgs"] == 290 * CYCLES
    assert (c["simlab_checksums_verified"], c["simlab_checksums_failed"]) == (290 * CYCLES, 0)
    for depth in hftbacktest_depth.DEPTHS:
        assert c[depth]["feed_stops"] == c[depth]["same_top"] == c["book_msgs"], depth
        assert all(c[depth]["depth_equal"].values()), depth


def test_hftbacktest_rows(frames, offline):
    pytest.importorskip("hftbacktest")
    rows = hftbacktest_depth.run(frames, runs=1)
    assert len(rows) == 3 * len(hftbacktest_depth.DEPTHS)
    for r in rows:
        assert set(r) == ROW_KEYS and r["rate"] > 0 and r["unit"] == "level rows/s"
        assert r["n"] == 8264 * CYCLES
        assert "290/290" in r["note"] and "FAILED" not in r["note"]
