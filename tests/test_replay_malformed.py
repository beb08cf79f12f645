"""A book push the recording keeps as malformed (its levels are bad) invalidates that book in
replay exactly as in ``simlab verify`` and live, whether or not the replay is filtered.

The frame is stored in the raw dataset's malformed partition (``_malformed``/``_none``),
not under its stream, so a replay that reads only the selected streams' partitions never
sees it. On a channel with a sequence chain the next push shows a gap; on ``books5``,
``bbo-tbt`` or a ``books`` feed without seqIds (and without checksums, as live since June
2026) nothing does, and the book stayed valid: a silent wrong answer.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from simlab.feed import tables
from simlab.feed.replay import ReplaySource
from simlab.models.fill_features import FILL_FEATURES
from simlab.models.impact import ACParams
from simlab.models.logistic import LogisticFillModel
from simlab.sim import CostPipeline, OrderSpec
from simlab.store import Recording, RecordingWriter, verify

T0_MS = 1_652_459_225_000
RECV0 = 10**18
BTC, ETH = "BTC-USDT", "ETH-USDT"


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _lv(px: str, sz: str = "1") -> list[str]:
    return [px, sz, "0", "1"]


def books5(inst: str, ts: int, seq: int, bid: str, ask: str) -> bytes:
    """A ``books5`` push: the full top of book, no action, no chain."""
    return _dumps({"arg": {"channel": "books5", "instId": inst},
                   "data": [{"asks": [_lv(ask)], "bids": [_lv(bid)], "instId": inst,
                             "ts": str(ts), "seqId": seq}]})


def books(inst: str, ts: int, action: str, bids: list, asks: list) -> bytes:
    """A ``books`` push without seqIds and with checksum 0 (none sent)."""
    return _dumps({"arg": {"channel": "books", "instId": inst}, "action": action,
                   "data": [{"asks": asks, "bids": bids, "ts": str(ts), "checksum": 0}]})


def bad(frame: bytes, px: str) -> bytes:
    """The frame with the price ``px`` of its first bid made non-numeric."""
    out = frame.replace(f'"bids":[["{px}"'.encode(), b'"bids":[["one"')
    assert out != frame
    return out


# arrival -> frame; the malformed ones are marked with what they name
FRAMES = [
    books5(BTC, T0_MS + 1, 1, "100", "101"),                                  # 0
    books(BTC, T0_MS + 2, "snapshot", [_lv("100")], [_lv("101")]),            # 1
    books5(ETH, T0_MS + 3, 1, "10", "11"),                                    # 2
    bad(books5(BTC, T0_MS + 4, 2, "100", "101"), "100"),                      # 3 bad, BTC
    bad(books(BTC, T0_MS + 5, "update", [_lv("99")], []), "99"),              # 4 bad, BTC
    bad(books5(ETH, T0_MS + 6, 2, "10", "11"), "10"),                         # 5 bad, ETH
    books(BTC, T0_MS + 7, "update", [_lv("98")], []),                         # 6
    b"not json at all",                                                       # 7 bad, no stream
    books5(BTC, T0_MS + 8, 3, "100.5", "101"),                                # 8
    books5(ETH, T0_MS + 9, 3, "10", "11"),                                    # 9
    books(BTC, T0_MS + 10, "snapshot", [_lv("100")], [_lv("102")]),           # 10
    books(BTC, T0_MS + 11, "update", [_lv("99")], []),                        # 11
    _dumps({"arg": {"channel": "trades", "instId": BTC},                      # 12
            "data": [{"instId": BTC, "tradeId": "1", "px": "100", "sz": "0.1",
                      "side": "buy", "ts": str(T0_MS + 12)}]}),
]
#: (channel, inst) -> [(arrival, valid)] of its book ticks, as live and verify see them.
EXPECTED = {("books5", BTC): [(0, True), (3, False), (8, True)],
            ("books", BTC): [(1, True), (4, False), (6, False), (10, True), (11, True)],
            ("books5", ETH): [(2, True), (5, False), (9, True)]}


@pytest.fixture(scope="module")
def rec(tmp_path_factory) -> Recording:
    out = tmp_path_factory.mktemp("malformed") / "rec"
    with RecordingWriter(out, {"importer": "test"}) as w:
        for i, f in enumerate(FRAMES):
            w.add(f, RECV0 + i * 1_000_000)
    r = Recording(out)
    assert {(f["channel"], f["inst"]) for f in r.files("raw", channel="_malformed")} == {
        ("_malformed", "_none")}
    return r


def ticks(events: list, channel: str, inst: str) -> list[tuple[int, bool]]:
    return [(e.arrival, e.valid) for e in events
            if e.kind == "book" and (e.channel, e.inst) == (channel, inst)]


def test_the_recording_stores_the_bad_pushes_as_malformed_and_verify_rejects_them(rec):
    stored = [f.arrival for f in rec.iter_raw(channel="_malformed")]
    assert stored == [3, 4, 5, 7]
    rep = verify(rec.path)
    for (ch, inst) in EXPECTED:
        assert rep.channels[ch]["instruments"][inst]["rejected"] == 1
    assert sorted((e["channel"], e["inst"], e["arrival"]) for e in rep.events
                  if e["kind"] == "rejected") == [("books", BTC, 4), ("books5", BTC, 3),
                                                   ("books5", ETH, 5)]


def test_an_unfiltered_replay_sees_them(rec):
    events = list(ReplaySource(rec))
    for (ch, inst), want in EXPECTED.items():
        assert ticks(events, ch, inst) == want


@pytest.mark.parametrize("channel", ["books5", "books"])
@pytest.mark.parametrize("select", ["both", "channels", "insts"])
def test_a_filtered_replay_marks_the_book_invalid_as_verify_does(rec, channel, select):
    kw = {"both": {"insts": [BTC], "channels": [channel]}, "channels": {"channels": [channel]},
          "insts": {"insts": [BTC]}}[select]
    src = ReplaySource(rec, **kw)
    events = list(src)
    assert ticks(events, channel, BTC) == EXPECTED[(channel, BTC)]
    rejected = [e.arrival for e in events if e.kind == "notice" and e.what == "rejected"
                and (e.channel, e.inst) == (channel, BTC)]
    assert rejected == [EXPECTED[(channel, BTC)][1][0]]
    # the decoder's book statistics are verify's, message for message
    stats = src.decoders[0].checker.summary()[channel][BTC]
    assert stats == verify(rec.path).channels[channel]["instruments"][BTC]


def test_a_bad_frame_of_another_stream_is_not_replayed_for_the_selection(rec):
    events = list(ReplaySource(rec, insts=[BTC], channels=["books5"]))
    assert {(getattr(e, "channel", None), getattr(e, "inst", None)) for e in events
            if e.kind in ("book", "notice") and e.inst is not None} == {("books5", BTC)}
    src = ReplaySource(rec, insts=[BTC], channels=["books5"])
    list(src)
    assert set(src.decoders[0].checker.syncs) == {("books5", BTC)}
    # a frame that names no stream is reported, as unfiltered
    assert [e.arrival for e in events if e.kind == "notice" and e.what == "malformed"] == [7]


@pytest.mark.parametrize("time_basis", ["exchange", "recv"])
def test_a_time_range_sees_them_too(rec, time_basis):
    start = ((T0_MS + 2) * 1_000_000 if time_basis == "exchange"
             else RECV0 + 2 * 1_000_000)
    events = list(ReplaySource(rec, insts=[BTC], channels=["books5"], start=start,
                               time_basis=time_basis))
    assert ticks(events, "books5", BTC) == [(3, False), (8, True)]


@pytest.mark.parametrize("validity", ["raw", "manifest"])
def test_the_columnar_path_agrees(rec, validity):
    for (ch, inst), want in EXPECTED.items():
        m = tables.book_messages(rec, ch, inst, validity=validity)
        assert m.validity == validity
        # the refused push is a message too, with no level rows: the event replay's tick
        assert list(zip(m.arrival.tolist(), m.valid.tolist(), strict=True)) == want
        refused = next(a for a, ok in want if not ok)
        i = m.arrival.tolist().index(refused)
        assert m.msg_start[i] == m.msg_start[i + 1]


# A model that reads history: its feature state is reset where the book becomes unknown, so
# the refused push must reach the columnar run as the event run (and live) sees it.
HISTORY_MODEL = LogisticFillModel(
    features=FILL_FEATURES, mean=(0.0,) * len(FILL_FEATURES), scale=(1.0,) * len(FILL_FEATURES),
    coef=(-0.3, 0.2, 0.1, 0.5, -0.2, 0.05, 0.02, -0.01, -0.4), intercept=0.3,
    info={"feature_params": {"lookback_ms": 1000, "depth_levels": 5}, "tick_size": 0.01})


@pytest.mark.parametrize("model", [None, HISTORY_MODEL], ids=["queue-share", "history"])
@pytest.mark.parametrize("channel", ["books5", "books"])
@pytest.mark.parametrize("window", [{}, {"start": (T0_MS + 2) * 1_000_000,
                                         "end": (T0_MS + 8) * 1_000_000},
                                    {"start": (T0_MS + 2) * 1_000_000,
                                     "end": (T0_MS + 5) * 1_000_000}],
                         ids=["all", "range", "ends-at-the-refused-push"])
def test_columnar_and_event_runs_agree_on_a_refused_push(rec, model, channel, window):
    order = OrderSpec(BTC, "buy", 0.5, "base", "limit", "VIP1")
    ac = ACParams(sigma=1.0, eta=0.01, gamma=0.0, lam=1e-6, T=30, N=5)
    p = CostPipeline(order, channel=channel, impact=ac, model=model,
                     metadata={BTC: {"instType": "SPOT"}})
    ev = p.run(ReplaySource(rec.path, insts=[BTC], channels=p.channels, **window))
    assert ev.counts["invalid"] >= 1
    for validity in ("raw", "manifest"):
        col = p.run_recording(rec.path, validity=validity, **window)
        pd.testing.assert_frame_equal(ev.table, col.table, check_exact=True)
        assert {k: col.counts[k] for k in ("book_ticks", "invalid", "priced")} == {
            k: ev.counts[k] for k in ("book_ticks", "invalid", "priced")}
