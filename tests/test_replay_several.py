"""Several recordings replayed in sequence when the selection names a stream only some of them
hold: each recording gives what it has of the selection (check_selection accepts a name any
recording holds), instead of the reader refusing a name that recording lacks."""

from __future__ import annotations

import json

import pytest

from simlab.feed.replay import ReplaySource
from simlab.store import RecordingWriter

T0_MS = 1_652_459_225_000
RECV0 = 10**18


def _push(channel: str, inst: str, ts: int, seq: int) -> bytes:
    lv = [["100", "1", "0", "1"]], [["101", "1", "0", "1"]]
    return json.dumps({"arg": {"channel": channel, "instId": inst},
                       "data": [{"bids": lv[0], "asks": lv[1], "instId": inst,
                                 "ts": str(ts), "seqId": seq}]}).encode()


@pytest.fixture(scope="module")
def recs(tmp_path_factory):
    d = tmp_path_factory.mktemp("several")
    streams = {"a": [("books5", "BTC-USDT"), ("books5", "ETH-USDT")],
               "b": [("bbo-tbt", "BTC-USDT")]}
    for name, sel in streams.items():
        with RecordingWriter(d / name, {"importer": "test"}) as w:
            for i in range(4):
                for j, (ch, inst) in enumerate(sel):
                    w.add(_push(ch, inst, T0_MS + i, i + 1), RECV0 + (i * 10 + j) * 1_000_000)
    return [d / "a", d / "b"]


@pytest.mark.parametrize("window", [{}, {"start": (T0_MS + 1) * 1_000_000},
                                    {"start": RECV0 + 10_000_000, "time_basis": "recv"}],
                         ids=["all", "exchange-range", "recv-range"])
@pytest.mark.parametrize("select, expect", [
    ({"channels": ["books5"]}, {(0, "books5", "BTC-USDT"), (0, "books5", "ETH-USDT")}),
    ({"insts": ["ETH-USDT"]}, {(0, "books5", "ETH-USDT")}),
    ({"channels": ["bbo-tbt"], "insts": ["BTC-USDT"]}, {(1, "bbo-tbt", "BTC-USDT")}),
], ids=["channel-of-a", "inst-of-a", "channel-of-b"])
def test_a_stream_only_one_recording_holds(recs, window, select, expect):
    evs = [e for e in ReplaySource(recs, **select, **window) if e.kind == "book"]
    assert {(e.rec, e.channel, e.inst) for e in evs} == expect
    assert all(e.valid for e in evs)
