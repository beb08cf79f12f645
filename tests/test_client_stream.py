"""The live client's stream over its handler, without a network: frames handed to the
handler as its driver would, a fake connection that records what is sent, a fake REST
client, and a fake clock moved by hand (no sleeps: ``asyncio.sleep(0)`` only lets a spawned
request task run). What ``stream()`` adds to the handler is checked here: each book frame
applied when it is yielded, the breaks it shows and the resyncs they start. The handler's
decisions alone: tests/test_client_handler.py."""

from __future__ import annotations

import asyncio

import orjson
from test_client_handler import X, Y, ack, book

from simlab.book import L2Book
from simlab.okx.client import OkxClient
from simlab.okx.clock import FakeClock
from simlab.okx.decoded import Decoded
from simlab.okx.rest import REST_CONN, RestBook, parse_rest_book


class FakeWs:
    transport = None

    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def send(self, frame: str, text: bool = True) -> None:
        self.sent.append(orjson.loads(frame) if frame != "ping" else {"op": "ping"})


class FakeRest:
    def __init__(self) -> None:
        self.answer: asyncio.Future | None = None
        self.asked = 0

    async def books(self, inst: str, channel: str, sz: int) -> RestBook:
        self.asked += 1
        self.answer = asyncio.get_running_loop().create_future()
        return await self.answer

    async def close(self) -> None:
        pass


class Harness:
    """A client whose connections are fakes; ``take()`` is what ``stream()`` yields. The
    test plays the reader and the housekeeping: it hands frames and ticks to the handler
    and lets the client perform the actions (``_after``), as they do."""

    def __init__(self, subs=(X,), **options) -> None:
        self.clock = FakeClock()
        self.client = c = OkxClient(list(subs), book_factory=L2Book, clock=self.clock,
                                    **options)
        c._started = True  # no real connections: the test plays the transport
        c._rest = self.rest = FakeRest()
        self.stream = c.stream(decoded=True)
        self.conns = [self.connect()]

    def connect(self, current: bool = True) -> int:
        h = self.client.handler
        conn = h.opened(0, current)
        h.drain()  # the subscribe requests: not what these tests look at
        assert h.ready.pop().kind == "connect"  # as a transport's open would report it
        self.client._ws[conn] = FakeWs()
        return conn

    def sent(self, conn: int = 0) -> list[dict]:
        return self.client._ws[conn].sent

    def recv(self, payload: bytes, conn: int | None = None) -> None:
        self.client.handler.frame(self.conns[0] if conn is None else conn, payload,
                                  self.clock.time_ns())
        self.client._after()

    def tick(self) -> None:
        self.client.handler.tick(self.clock.now())
        self.client._after()

    async def take(self) -> list:
        mark = object()
        self.client._ready.append(mark)
        out = []
        while (item := await self.stream.__anext__()) is not mark:
            out.append(item)
        return out

    def kinds(self, items) -> list[str]:
        return [i.kind for i in items if not isinstance(i, Decoded)]

    async def close(self) -> None:
        for t in list(self.client._tasks):
            t.cancel()
        await asyncio.gather(*self.client._tasks, return_exceptions=True)


def synced(h: Harness, key=X) -> None:
    h.recv(ack(key))
    h.recv(book(key, "snapshot", -1, 10))


def test_snapshot_timeout_goes_to_rest_by_the_clock():
    async def main():
        h = Harness(snapshot_timeout=2.0)
        h.recv(ack(X))
        h.tick()
        assert h.client.mode(*X) == "await"
        h.clock.advance(2.1)
        h.tick()
        await asyncio.sleep(0)  # the bootstrap task asks REST
        items = await h.take()
        await h.close()
        return h, items

    h, items = asyncio.run(main())
    assert h.kinds(items) == ["subscribed", "snapshot_timeout"]
    assert h.client.mode(*X) == "rest" and h.rest.asked == 1


def test_gap_resyncs_by_resubscribe_and_the_book_is_applied_when_yielded():
    async def main():
        h = Harness()
        synced(h)
        h.recv(book(X, "update", 10, 12, [("10", "2")]))
        first = await h.take()
        assert h.client.book(*X).levels("bid")[0][1] == "2"  # applied when yielded
        h.recv(book(X, "update", 20, 25))  # expected prevSeqId 12: a gap
        await asyncio.sleep(0)  # the resubscribe task sends
        assert [r["op"] for r in h.sent()] == ["unsubscribe", "subscribe"]
        h.recv(book(X, "update", 25, 26))  # held while resyncing
        h.recv(book(X, "snapshot", -1, 30, [("9", "4")]))
        second = await h.take()
        await h.close()
        return h, first, second

    h, first, second = asyncio.run(main())
    assert h.kinds(first) == ["subscribed", "synced"]
    assert h.kinds(second) == ["gap", "resync_started", "resync_done"]
    (gap,) = [e for e in second if getattr(e, "kind", "") == "gap"]
    assert (gap.data["expected_prev"], gap.data["seq_id"]) == (12, 25)
    frames = [i for i in second if isinstance(i, Decoded)]
    assert [f.outcome.seq.value for f in frames] == ["gap", "no_snapshot", "snapshot"]
    done = second[-1]
    assert done.data["how"] == "resubscribe" and done.data["stale_arrivals"] == [4, 4]
    sync = h.client.sync(*X)
    assert sync.valid and sync.stats.gaps == 1 and h.client.mode(*X) == "live"


def test_resync_by_rest_splice():
    async def main():
        h = Harness(resync="rest")
        synced(h)
        h.recv(book(X, "update", 11, 15))  # gap
        h.recv(book(X, "update", 15, 18, [("10", "3")]))
        h.recv(book(X, "update", 18, 22, [("10", "5")]))
        await asyncio.sleep(0)
        body = (b'{"code":"0","msg":"","data":[{"asks":[["11","1","0","1"]],"bids":[["10","4",'
                b'"0","1"]],"ts":"6","seqId":20}]}')
        h.rest.answer.set_result(RestBook(X[0], X[1], body, h.clock.time_ns(),
                                          parse_rest_book(body, *X)))
        await asyncio.sleep(0)
        items = await h.take()
        await h.close()
        return h, items

    h, items = asyncio.run(main())
    assert h.kinds(items)[-4:] == ["gap", "resync_started", "bootstrap", "resync_done"]
    frames = [i for i in items if isinstance(i, Decoded)]
    assert [f.conn for f in frames][-2:] == [REST_CONN, 0]  # REST snapshot, then 18 -> 22
    assert frames[-1].outcome.valid and h.client.book(*X).levels("bid")[0][1] == "5"
    done = next(i for i in items if getattr(i, "kind", "") == "resync_done")
    assert (done.data["how"], done.data["splice_prev_seq_id"]) == ("rest", 18)


def test_an_unnamed_subscribe_error_refuses_what_is_not_acked_after_refusal_wait():
    async def main():
        h = Harness(subs=(X, Y), refusal_wait=3.0)
        h.client.handler.conns[0].requests["7"] = ("subscribe", [X, Y])
        h.recv(ack(X))
        h.recv(orjson.dumps({"event": "error", "id": "7", "code": "64003", "msg": "no"}))
        h.clock.advance(2.9)
        h.tick()
        assert not h.client.refused
        h.clock.advance(0.2)
        h.tick()
        items = await h.take()
        await h.close()
        return h, items

    h, items = asyncio.run(main())
    assert [(r["inst"], r["code"]) for r in h.client.refused] == [("Y-USDT", "64003")]
    assert "refused" in h.kinds(items)


def test_a_message_passed_on_by_one_connection_is_a_duplicate_on_the_other():
    async def main():
        h = Harness()
        synced(h)
        new = h.connect(current=False)  # a 64008 switchover's second connection
        h.recv(ack(X), new)
        h.recv(book(X, "update", 10, 12), new)  # continues the chain: passed on
        h.recv(book(X, "update", 10, 12))  # the old one's copy: a duplicate
        hd = h.client.handler
        hd._switch(hd.slots[0], hd.conns[h.conns[0]], hd.conns[new], h.clock.now())
        h.recv(book(X, "update", 12, 13), new)
        items = await h.take()
        await h.close()
        return h, items

    h, items = asyncio.run(main())
    frames = [i for i in items if isinstance(i, Decoded) and i.channel == "books"]
    assert [(f.conn, f.msg.seq_id) for f in frames] == [(0, 10), (1, 12), (1, 13)]
    assert h.client.counts["duplicates"] == 1 and "switchover" in h.kinds(items)
    assert h.client.sync(*X).stats.gaps == 0


def test_resume_proof_after_a_disconnect():
    async def main():
        h = Harness()
        synced(h)
        h.recv(book(X, "update", 10, 12))
        h.client.handler.closed(h.conns[0], 1006, "gone")
        c2 = h.connect()
        h.recv(ack(X), c2)
        h.recv(book(X, "snapshot", -1, 12), c2)  # the same book: nothing was missed
        items = await h.take()
        await h.close()
        return items

    items = asyncio.run(main())
    (r,) = [i for i in items if getattr(i, "kind", "") == "resumed"]
    assert r.data["lossless"] is True and r.data["last_seq_id"] == 12
