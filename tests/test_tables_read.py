"""The columnar reader's shortcuts (simlab.feed.tables): per-batch gathering and receive
times from the raw table give exactly what a plain read of the levels table gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from simlab.feed import tables
from simlab.store import Recording

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def plain(rec: Recording, channel: str, inst: str) -> dict[str, np.ndarray]:
    """The per-message columns by the obvious method: the whole table, one gather."""
    t = rec.stream_table("levels", channel=channel, inst=inst,
                         columns=["recv_ns", "ts_ms", "snapshot", "prev_seq_id", "side"])
    arr = t["arrival"].to_numpy()
    first = np.flatnonzero(np.r_[True, arr[1:] != arr[:-1]])
    at = pa.array(first)
    side = np.array([{"bid": 0, "ask": 1}.get(v, 2) for v in t["side"].to_pylist()], np.uint8)
    return {"first": first, "arrival": arr[first], "side": side,
            **{c: t[c].take(at).to_numpy(zero_copy_only=False)
               for c in ("recv_ns", "ts_ms", "prev_seq_id", "snapshot")}}


@pytest.mark.parametrize("which", ["sample", "capture"])
def test_book_messages_equal_a_plain_read(which, capture_recording):
    path, inst = (SAMPLE, "BTC-USDT") if which == "sample" else (capture_recording, "BTC-USDT")
    rec = Recording(path)
    ref = plain(rec, "books", inst)
    m = tables.book_messages(rec, "books", inst)
    assert np.array_equal(m.arrival, ref["arrival"])
    assert np.array_equal(m.recv_ns, ref["recv_ns"]) and np.array_equal(m.ts_ms, ref["ts_ms"])
    assert np.array_equal(m.msg_start[:-1], ref["first"])
    assert np.array_equal(m.side, ref["side"])
    snap = ref["snapshot"].astype(bool) | (ref["prev_seq_id"] == -1)
    assert np.array_equal(m.snapshot, snap)


def test_receive_times_fall_back_to_the_levels_table():
    rec = Recording(SAMPLE)
    m = tables.book_messages(rec, "books", "BTC-USDT")
    got = tables._receive_times(rec, "books", "BTC-USDT", m.arrival)
    assert np.array_equal(got, m.recv_ns)
    # arrivals the raw table does not hold (as after an import without raw frames): the
    # levels table answers, for the arrivals it has
    levels = rec.stream_table("levels", channel="books", inst="BTC-USDT",
                              columns=["recv_ns"])
    first = np.flatnonzero(np.r_[True, np.diff(levels["arrival"].to_numpy()) != 0])
    fake = m.arrival + 10**12
    assert np.array_equal(tables._receive_times(rec, "books", "BTC-USDT", fake),
                          levels["recv_ns"].to_numpy()[first])
