"""Serving a recording: the real 2022 OKX capture (OKX.ws.1.0) comes back byte for byte."""

from __future__ import annotations

from collections import defaultdict

import orjson

from simlab.book import L2Book
from simlab.emulator import RecordedFeed
from simlab.emulator.testing import FeedCheck, client, recv, recv_until, run, subscribe
from simlab.okx import BookSync, parse_frame
from simlab.store import Recording

INSTS = ("BTC-USDT", "BTC-USD-220527", "UNI-USD-SWAP")


def recorded(rec_path, channels=("books", "trades")) -> dict[tuple[str, str], list[bytes]]:
    out = defaultdict(list)
    for f in Recording(rec_path).iter_raw():
        if f.channel in channels:
            out[(f.channel, f.inst)].append(bytes(f.payload))
    return out


def test_subscribers_from_the_start_get_exactly_the_recorded_frames(emulator_factory,
                                                                    capture_recording):
    want = recorded(capture_recording)
    n = sum(len(v) for v in want.values())
    assert n == 290 + 74
    emu = emulator_factory(recording=capture_recording, speed=None, start_on_subscribe=True)
    args = [(c, i) for c in ("books", "trades") for i in INSTS]

    async def main():
        async with client(emu.ws_url) as ws:
            got = await subscribe(ws, *args)
            while sum(not m.startswith('{"id"') for m in got) < n:
                got.append(await recv(ws))
            await ws.send("ping")
            assert await recv(ws, 2) == "pong"  # nothing more: the recording is over
            return got

    got = run(main())
    by_key = defaultdict(list)
    for m in got:
        d = orjson.loads(m)
        if "data" in d:
            by_key[(d["arg"]["channel"], d["arg"]["instId"])].append(m.encode())
    assert by_key == want  # same frames, same bytes, same order per stream
    fc = FeedCheck().feed_all(got)
    assert fc.total("checksum_verified") == 290
    assert fc.total("checksum_failed") == fc.total("gaps") == fc.total("rejected") == 0


def test_a_late_subscriber_gets_a_synthesized_snapshot_with_the_same_checksums(
        emulator_factory, capture_recording):
    emu = emulator_factory(recording=capture_recording, paused=True)

    async def main():
        async with client(emu.ws_url) as early, client(emu.ws_url) as late:
            first = await subscribe(early, ("books", "BTC-USDT"))
            emu.emulator.advance(5000)  # part of the 2022 session (about 10 s long)
            first += await _drain(early)
            late_got = await subscribe(late, ("books", "BTC-USDT"))
            late_got += await _drain(late)
            emu.emulator.advance(60_000)
            first += await _drain(early)
            late_got += await _drain(late)
            return first, late_got

    first, late = run(main())
    a = FeedCheck().feed_all(first).syncs[("books", "BTC-USDT")]
    b_msgs = [m for m in late if m.startswith('{"arg"')]
    snap = parse_frame(b_msgs[0])
    assert snap.action == "snapshot" and snap.checksum != 0 and snap.seq_id is None
    early_msgs = [m for m in first if m.startswith('{"arg"')]
    assert len(early_msgs) == 98 and 0 < len(b_msgs) - 1 < 98
    # the late snapshot is the early client's book at that point: same checksum
    sync = BookSync(L2Book("BTC-USDT"))
    for m in early_msgs[: 98 - (len(b_msgs) - 1)]:
        sync.apply(parse_frame(m))
    assert sync.book.checksum() == snap.checksum
    # then the late client receives the same recorded updates and verifies every checksum
    assert b_msgs[1:] == early_msgs[98 - (len(b_msgs) - 1):]
    b = FeedCheck().feed_all(b_msgs).syncs[("books", "BTC-USDT")]
    assert b.stats.checksum_verified == len(b_msgs) and b.stats.checksum_failed == 0
    assert b.book.checksum() == a.book.checksum() and a.stats.checksum_failed == 0


async def _drain(ws) -> list[str]:
    await ws.send("ping")
    return (await recv_until(ws, lambda m: m == "pong"))[:-1]


def test_recorded_feed_serves_rest_and_its_instruments(capture_recording):
    feed = RecordedFeed(capture_recording)
    assert set(feed.channels()) == {"books", "trades", "tickers"}
    assert [i.inst_id for i in feed.instruments()] and all(
        feed.has_instrument(i) for i in INSTS)
    assert not feed.has_instrument("ETH-USDT")
    feed.activate("books", "UNI-USD-SWAP")
    pushes = feed.advance(feed.start_ms + 60_000)
    assert len(pushes) == 93 and feed.done
    bids, _, ts, seq = feed.rest_book("UNI-USD-SWAP", 5)
    book = L2Book("UNI-USD-SWAP")
    for p in pushes:
        msg = parse_frame(p.frame)
        (book.apply_snapshot if msg.action == "snapshot" else book.apply_update)(msg.bids,
                                                                                  msg.asks)
    assert [b[0] for b in bids] == [lv[0] for lv in book.levels("bid", 5)]
    assert ts == parse_frame(pushes[-1].frame).ts and seq is None


def test_recorded_instruments_over_rest(emulator_factory, capture_recording, tmp_path,
                                        okx_capture, okx_rest):
    """Without metadata the instruments are guessed from their ids; with the session's REST
    capture (`--instruments OKX.0` at import) the real metadata is served as recorded."""
    from simlab.store import import_file

    with_meta = tmp_path / "rec"
    import_file("okx-capture", okx_capture, with_meta, instruments=okx_rest, progress=False)

    async def get(url):
        import aiohttp

        async with aiohttp.ClientSession() as http, http.get(url) as r:
            return r.status, orjson.loads(await r.read())

    bare = emulator_factory(recording=capture_recording, paused=True)
    full = emulator_factory(recording=with_meta, paused=True)
    path = "/api/v5/public/instruments?instType=SWAP"
    status, body = run(get(bare.rest_url + path))
    assert status == 200 and [d["instId"] for d in body["data"]] == ["UNI-USD-SWAP"]
    assert body["data"][0]["tickSz"] == "" and body["data"][0]["uly"] == "UNI-USD"
    status, body = run(get(full.rest_url + path))
    assert status == 200 and body["data"][0]["tickSz"] == "0.001"
    assert body["data"][0]["ctVal"] == "10" and body["data"][0]["ctType"] == "inverse"


def test_a_rest_snapshot_first_does_not_hide_the_websocket_frames(tmp_path, wire):
    """A live recording that bootstrapped from REST: its first frame of the stream is the
    REST answer (conn -1); the WebSocket updates after it must still be served."""
    from simlab.okx.frames import RawFrame
    from simlab.store import RecordingWriter

    f = wire.BookFeed("BTC-USDT")
    lv = wire.lv
    f.book.apply_snapshot([lv("99", "1")], [lv("101", "1")])
    rest = wire.dumps({"code": "0", "msg": "", "data": [
        {"bids": [lv("99", "1")], "asks": [lv("101", "1")], "ts": str(wire.T0_MS),
         "seqId": f.seq}]})
    updates = [f.update([lv("99", str(i + 2))], []) for i in range(3)]
    t0 = wire.T0_MS * 10**6
    with RecordingWriter(tmp_path / "r", {"importer": "test"}) as w:
        w.add_frame(RawFrame(0, t0, -1, "books", "BTC-USDT", rest))
        for i, u in enumerate(updates):
            w.add_frame(RawFrame(i + 1, t0 + (i + 1) * 10**8, 0, "books", "BTC-USDT", u))
    feed = RecordedFeed(tmp_path / "r")
    feed.activate("books", "BTC-USDT")
    pushes = feed.advance(feed.start_ms + 10_000)
    assert [p.frame for p in pushes] == updates  # the REST answer is not a push
    snap = parse_frame(feed.snapshot("books", "BTC-USDT").frame)  # the book it set, updated
    assert snap.bids[0][:2] == ["99", "4"] and snap.asks[0][:2] == ["101", "1"]
