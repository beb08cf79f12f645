"""The live client's decisions, driven on the handler alone: no sockets, no asyncio, no
sleeps. The test plays the driver: it reports what the transport did (``opened``,
``frame``, ``closed``, ``fetched``), moves a fake clock by hand and calls ``tick``, and
checks the actions the handler asks for and what it passes on (``ready``)."""

from __future__ import annotations

import orjson
import pytest

from simlab.book import L2Book
from simlab.okx.actions import Abort, ClientEvent, Close, Fetch, Open, Send, Unsubscribed
from simlab.okx.clock import FakeClock
from simlab.okx.decoded import Decoded
from simlab.okx.handler import FeedHandler
from simlab.okx.rest import REST_CONN, RestBook, RestError, parse_rest_book

X, Y = ("books", "X-USDT"), ("books", "Y-USDT")
TX = ("trades", "X-USDT")


def book(key, action, prev, seq, bids=(("10", "1"),), ts=5) -> bytes:
    return orjson.dumps({"arg": {"channel": key[0], "instId": key[1]}, "action": action,
                         "data": [{"asks": [["11", "1", "0", "1"]],
                                   "bids": [[p, s, "0", "1"] for p, s in bids], "ts": str(ts),
                                   "checksum": 0, "prevSeqId": prev, "seqId": seq}]})


def ack(key, event="subscribe") -> bytes:
    return orjson.dumps({"event": event, "arg": {"channel": key[0], "instId": key[1]},
                         "connId": "c"})


def trades(key, trade_id: int, count: int = 1) -> bytes:
    return orjson.dumps({"arg": {"channel": key[0], "instId": key[1]}, "data": [
        {"instId": key[1], "tradeId": str(trade_id), "px": "10", "sz": "1", "side": "buy",
         "ts": "5", "count": str(count)}]})


def notice(code: str = "64008") -> bytes:
    return orjson.dumps({"event": "notice", "code": code, "msg": "service upgrade",
                         "connId": "c"})


def rest_book(seq: int, bid_size: str = "4") -> RestBook:
    body = (b'{"code":"0","msg":"","data":[{"asks":[["11","1","0","1"]],"bids":[["10","'
            + bid_size.encode() + b'","0","1"]],"ts":"6","seqId":' + str(seq).encode()
            + b"}]}")
    return RestBook(X[0], X[1], body, 0, parse_rest_book(body, *X))


class Driver:
    """What a client does around the handler, by hand: ``out`` collects the actions."""

    def __init__(self, subs=(X,), **options) -> None:
        self.clock = FakeClock()
        self.h = FeedHandler(list(subs), book_factory=L2Book, clock=self.clock,
                             rand=lambda: 1.0, **options)
        self.h.start()
        self.out: list = []
        self.conns = [self.open()]

    def take(self) -> list:
        self.out += self.h.drain()
        out, self.out = self.out, []
        return out

    def open(self, slot: int = 0, current: bool = True) -> int:
        """Open what the handler asked for; its subscribe requests go to ``subscribes``
        (its ``connect`` event is checked and taken away)."""
        assert Open(slot, current) in self.take()
        conn = self.h.opened(slot, current)
        self.subscribes = self.h.drain()
        assert self.h.ready.pop().kind == "connect"
        return conn

    def recv(self, payload: bytes, conn: int | None = None) -> None:
        self.h.frame(self.conns[0] if conn is None else conn, payload, self.clock.time_ns())
        self.out += self.h.drain()

    def tick(self, seconds: float = 0.0) -> None:
        self.clock.advance(seconds)
        self.h.tick(self.clock.now())

    def items(self) -> list:
        out = list(self.h.ready)
        self.h.ready.clear()
        return out

    def events(self, kind: str | None = None) -> list[ClientEvent]:
        return [i for i in self.items() if type(i) is ClientEvent
                and (kind is None or i.kind == kind)]

    def synced(self, key=X, conn: int | None = None) -> None:
        self.recv(ack(key), conn)
        self.recv(book(key, "snapshot", -1, 10), conn)


def kinds(items) -> list[str]:
    return [i.kind for i in items if type(i) is ClientEvent]


def sent(actions, conn: int | None = None) -> list[tuple[str, list]]:
    """The requests among ``actions``: (op, [[channel, inst], ...]) each."""
    out = []
    for a in actions:
        if type(a) is Send and a.text != "ping" and conn in (None, a.conn):
            r = orjson.loads(a.text)
            out.append((r["op"], [[x["channel"], x["instId"]] for x in r["args"]]))
    return out


# -- the subscription plan ----------------------------------------------------------------
def test_each_planned_connection_is_opened_and_subscribed_in_batched_requests():
    subs = [("books", f"I{i:02d}-USDT") for i in range(35)] + [("trades", "I33-USDT")]
    h = FeedHandler(subs, book_factory=L2Book, clock=FakeClock(), max_request_bytes=1000)
    h.start()
    assert h.drain() == [Open(0, True), Open(1, True)]
    first, second = h.opened(0, True), h.opened(1, True)
    reqs = h.drain()
    assert all(type(a) is Send and len(a.text) <= 1000 for a in reqs)
    on_first, on_second = sent(reqs, first), sent(reqs, second)
    assert len(on_first) > 1 and [op for op, _ in on_first] == ["subscribe"] * len(on_first)
    assert [tuple(x) for _, a in on_first for x in a] == subs[:30]
    assert [tuple(x) for _, a in on_second for x in a] == subs[30:]
    assert h.counts["requests"] == len(reqs) == len(on_first) + 1
    assert [(e.kind, e.data["slot"]) for e in h.ready] == [("connect", 0), ("connect", 1)]


def test_a_data_frame_queues_no_action():
    d = Driver(subs=(X, TX))
    d.synced()
    d.take()
    for i in range(10, 20):
        d.h.frame(0, book(X, "update", i, i + 1), 0)
        d.h.frame(0, trades(TX, 100 + i), 0)
    assert d.h.actions == [] and d.h.counts["frames"] == 2 + 20


# -- keepalive ----------------------------------------------------------------------------
def test_an_idle_connection_is_pinged_and_aborted_without_a_pong():
    d = Driver(ping_interval=5.0, pong_timeout=3.0)
    d.tick(4.9)
    assert d.take() == []
    d.tick(0.1)
    assert d.take() == [Send(0, "ping")]
    d.tick(2.9)
    d.recv(b"pong")  # in time: the connection lives
    d.tick(4.9)
    assert d.take() == []
    d.tick(0.1)
    assert d.take() == [Send(0, "ping")]
    d.tick(3.1)
    assert d.take() == [Abort(0)]
    (ev,) = d.events("ping_timeout")
    assert ev.conn == 0
    d.tick(10)
    assert d.take() == []  # aborted: no second ping, no second abort


def test_silence_is_reported_when_data_flows_again():
    d = Driver(subs=(TX,), silence_s=2.0, ping_interval=100.0)
    d.recv(trades(TX, 1))
    d.tick(2.5)
    assert d.events("silence") == []
    d.tick(0.5)
    d.recv(trades(TX, 2))
    (ev,) = d.events("silence")
    assert ev.data["silent_s"] == 3.0


def test_a_lost_connection_is_reopened_after_its_backoff():
    d = Driver(backoff_base=1.0, backoff_max=4.0, backoff_reset_s=30.0)
    d.h.closed(0, 1006, "gone")
    (ev,) = d.events("disconnect")
    assert ev.data["expected"] is False and d.take() == []
    d.tick(0.9)
    assert d.take() == []
    d.tick(0.1)  # attempt 1: backoff_base (jitter at its top)
    assert d.take() == [Open(0, True)]
    d.h.open_failed(0, True, "OSError: refused")
    (ev,) = d.events("connect_failed")
    assert ev.data["attempt"] == 2
    d.tick(1.9)
    assert d.take() == []
    d.tick(0.1)  # attempt 2: twice as long
    d.out.append(Open(0, True))
    conn = d.open()
    d.tick(30)  # lived long enough: the next loss starts the backoff again
    d.take()  # a ping
    d.h.closed(conn, 1006, "gone")
    d.tick(0.9)
    assert d.take() == []
    d.tick(0.1)
    assert d.take() == [Open(0, True)]


# -- resync -------------------------------------------------------------------------------
def test_a_gap_resyncs_by_resubscribe_and_the_held_updates_are_stale():
    d = Driver()
    d.synced()
    d.items()
    d.take()
    d.recv(book(X, "update", 10, 12))
    d.recv(book(X, "update", 20, 25))  # expected prevSeqId 12: a gap
    assert sent(d.take()) == [("unsubscribe", [list(X)]), ("subscribe", [list(X)])]
    assert d.h.streams[X].mode == "await"
    d.recv(book(X, "update", 25, 26))  # held while resyncing
    d.recv(ack(X))
    d.recv(book(X, "snapshot", -1, 30))
    items = d.items()
    assert kinds(items) == ["resync_started", "subscribed", "resync_done"]
    frames = [i for i in items if type(i) is Decoded and i.channel == "books"]
    assert [f.msg.seq_id for f in frames] == [12, 25, 26, 30]
    done = items[-1]  # arrivals: 0 ack, 1 snapshot, 2 and 3 updates, 4 ack, 5 the held one
    assert done.data["how"] == "resubscribe" and done.data["stale_arrivals"] == [5, 5]
    assert d.h.streams[X].mode == "live" and d.h.counts["resyncs_resubscribe"] == 1


def test_a_gap_resyncs_by_rest_and_the_snapshot_splices_onto_the_held_updates():
    d = Driver(resync="rest")
    d.synced()
    d.items()
    d.take()
    d.recv(book(X, "update", 11, 15))  # gap
    (fetch,) = d.take()
    assert type(fetch) is Fetch and fetch.key == X and d.h.streams[X].mode == "rest"
    d.recv(book(X, "update", 15, 18, [("10", "3")]))
    d.recv(book(X, "update", 18, 22, [("10", "5")]))
    d.h.fetched(X, fetch.ticket, rest_book(20))
    items = d.items()
    assert kinds(items) == ["resync_started", "bootstrap", "resync_done"]
    frames = [i for i in items if type(i) is Decoded]
    assert [f.conn for f in frames][-2:] == [REST_CONN, 0]  # REST snapshot, then 18 -> 22
    (done,) = [i for i in items if type(i) is ClientEvent and i.kind == "resync_done"]
    assert (done.data["how"], done.data["splice_prev_seq_id"]) == ("rest", 18)
    assert d.h.streams[X].mode == "live" and d.take() == []


def test_no_snapshot_after_the_subscribe_ack_goes_to_rest_by_the_clock():
    d = Driver(subs=(X, Y), snapshot_timeout=2.0)
    d.recv(ack(X))
    d.tick(2.0)
    assert d.h.streams[X].mode == "await" and d.take() == []
    d.tick(0.1)
    assert d.take() == [Fetch(X, 1)]
    assert kinds(d.items()) == ["subscribed", "snapshot_timeout"]
    assert d.h.streams[X].mode == "rest" and d.h.counts["rest_requests"] == 1
    d.recv(ack(Y))  # this server sends no snapshots: do not wait for one
    assert d.take() == [Fetch(Y, 2)] and d.h.streams[Y].mode == "rest"


def test_a_rest_error_is_retried_after_a_backoff_and_an_old_answer_is_ignored():
    d = Driver(resync="rest", rest_retry_base=0.5, rest_retry_max=4.0)
    d.synced()
    d.recv(book(X, "update", 11, 15))  # gap
    (fetch,) = d.take()
    d.items()
    d.h.fetched(X, fetch.ticket, RestError("u", 503, None, "busy"))
    (ev,) = d.events("rest_error")
    assert ev.data["retry_in_s"] == 0.5 and d.take() == []
    d.tick(0.4)
    assert d.take() == []
    d.tick(0.1)
    (again,) = d.take()
    assert again.key == X and again.ticket != fetch.ticket
    d.h.fetched(X, fetch.ticket, rest_book(14))  # the first request's late answer
    assert d.events("bootstrap") == [] and d.h.counts["rest_requests"] == 2


def test_a_rest_snapshot_nothing_splices_onto_is_fetched_again():
    d = Driver(resync="rest", splice_wait=1.0, rest_retry_base=0.2)
    d.synced()
    d.recv(book(X, "update", 11, 15))  # gap
    d.recv(book(X, "update", 15, 18))  # held
    (fetch,) = d.take()
    d.h.fetched(X, fetch.ticket, rest_book(40))  # after every held update: wait for more
    d.items()
    d.tick(1.0)
    assert [e.detail[:20] for e in d.events("bootstrap_retry")] == ["no update spliced on"]
    d.tick(0.19)
    assert d.take() == []  # a short pause first (rest_retry_base)
    d.tick(0.01)
    (again,) = d.take()
    assert type(again) is Fetch and d.h.streams[X].mode == "rest"
    d.h.fetched(X, again.ticket, rest_book(8))  # older than the held update: stale
    assert kinds(d.items()) == ["bootstrap", "bootstrap_retry"]
    d.tick(0.2)
    assert [type(a) for a in d.take()] == [Fetch]


# -- several connections ------------------------------------------------------------------
def test_a_message_passed_on_by_one_connection_is_a_duplicate_on_the_other():
    d = Driver()
    d.synced()
    d.recv(notice())
    new = d.open(current=False)  # the 64008 switchover's second connection
    d.recv(ack(X), new)
    d.recv(book(X, "update", 10, 12), new)  # continues the chain: passed on
    d.recv(book(X, "update", 10, 12))  # the old one's copy: a duplicate
    d.recv(book(X, "update", 12, 13))  # the old one runs ahead: passed on
    d.recv(book(X, "update", 12, 13), new)
    frames = [i for i in d.items() if type(i) is Decoded and i.channel == "books"]
    assert [(f.conn, f.msg.seq_id) for f in frames] == [(0, 10), (1, 12), (0, 13)]
    assert d.h.counts["duplicates"] == 2


def test_a_64008_notice_switches_to_a_new_connection_once_it_carries_every_stream():
    d = Driver(subs=(X, TX))
    d.synced()
    d.recv(trades(TX, 1))
    d.recv(notice())
    new = d.open(current=False)
    assert {tuple(a) for _, args in sent(d.subscribes, new) for a in args} == {X, TX}
    d.recv(ack(X), new)
    d.recv(ack(TX), new)  # a trades stream joins with its ack
    d.tick()
    assert d.h.slots[0].current.id == 0  # the book has not joined yet
    d.recv(book(X, "update", 10, 11), new)
    d.recv(book(X, "update", 10, 11))  # the overlap: a duplicate, not reported
    d.tick()
    assert d.take() == [Close(0)]
    assert d.h.slots[0].current.id == new and d.h.counts["switchovers"] == 1
    items = d.items()
    (sw,) = [i for i in items if type(i) is ClientEvent and i.kind == "switchover"]
    assert (sw.data["old_conn"], sw.data["joined"], sw.data["duplicates_dropped"]) == (0, 2, 1)
    assert "duplicate" not in kinds(items)
    d.recv(book(X, "update", 11, 12))  # the old one, still read, runs ahead
    d.recv(book(X, "update", 11, 12), new)  # the expected overlap: not reported
    d.recv(book(X, "update", 12, 13), new)  # its own: the overlap is over
    d.recv(book(X, "update", 12, 13))
    assert kinds(d.items()) == []  # the old one is closing: not reported either
    d.recv(book(X, "update", 12, 13), new)
    assert kinds(d.items()) == ["duplicate"] and d.h.counts["duplicates"] == 4
    d.h.closed(0, 1000, "bye")
    (ev,) = d.events("disconnect")
    assert ev.data["expected"] is True
    d.tick(60)
    assert [type(a) for a in d.take()] == [Send]  # a ping; no reconnect


def test_a_switchover_whose_new_connection_fails_retries_then_times_out_into_a_switch():
    d = Driver(switch_timeout=10.0, backoff_base=1.0)
    d.synced()
    d.recv(notice())
    assert d.take() == [Open(0, False)]
    d.h.open_failed(0, False, "OSError: refused")
    (ev,) = d.events("connect_failed")
    assert ev.detail == "switchover: OSError: refused"
    d.tick(1.0)
    new = d.open(current=False)
    d.take()
    d.tick(8.9)  # the new connection never carries the book
    assert d.take() == [] and d.h.slots[0].current.id == 0
    d.tick(0.2)
    assert d.take() == [Close(0)] and d.h.slots[0].current.id == new


# -- refusals -----------------------------------------------------------------------------
def test_a_subscribe_error_naming_its_argument_refuses_it_for_good():
    d = Driver(subs=(X, Y))
    rid = next(iter(d.h.conns[0].requests))
    d.recv(orjson.dumps({"event": "error", "id": rid, "code": "60018",
                         "msg": "Wrong URL or channel:books,instId:Y-USDT doesn't exist"}))
    assert [(r["inst"], r["code"]) for r in d.h.refused] == [("Y-USDT", "60018")]
    assert d.h.slots[0].args == [X] and "refused" in kinds(d.items())
    d.h.closed(0, 1006, "gone")
    d.tick(10)
    assert d.take() == [Open(0, True)]
    d.h.opened(0, True)
    assert sent(d.take()) == [("subscribe", [list(X)])]


def test_an_unnamed_subscribe_error_refuses_what_is_not_acked_after_refusal_wait():
    d = Driver(subs=(X, Y), refusal_wait=3.0)
    d.h.conns[0].requests["7"] = ("subscribe", [X, Y])
    d.recv(ack(X))
    d.recv(orjson.dumps({"event": "error", "id": "7", "code": "64003", "msg": "no"}))
    d.tick(2.9)
    assert not d.h.refused
    d.tick(0.2)
    assert [(r["inst"], r["code"]) for r in d.h.refused] == [("Y-USDT", "64003")]
    assert "refused" in kinds(d.items())


def test_a_connection_whose_every_subscription_is_refused_is_closed_and_not_reopened():
    d = Driver(subs=(X,))
    rid = next(iter(d.h.conns[0].requests))
    d.recv(orjson.dumps({"event": "error", "id": rid, "code": "60018", "msg": "no"}))
    assert d.take() == [Close(0)]
    d.h.closed(0, 1000, "bye")
    d.tick(60)
    assert d.take() == [] and d.h.stats()["connections"] == 0


# -- reconnects and closing ---------------------------------------------------------------
def test_resume_proof_after_a_disconnect():
    d = Driver()
    d.synced()
    d.recv(book(X, "update", 10, 12))
    d.h.closed(0, 1006, "gone")
    d.tick(10)
    c2 = d.open()
    d.recv(ack(X), c2)
    d.recv(book(X, "snapshot", -1, 12), c2)  # the same book: nothing was missed
    (r,) = d.events("resumed")
    assert r.data["lossless"] is True and r.data["last_seq_id"] == 12


def test_closing_unsubscribes_what_was_acked_then_reports_closed():
    d = Driver(subs=(X, Y))
    d.recv(ack(X))
    d.take()
    d.h.begin_close()
    assert sent(d.take()) == [("unsubscribe", [list(X)])] and d.h.unsubscribing
    d.recv(ack(X, "unsubscribe"))
    assert d.take() == [Unsubscribed()] and not d.h.unsubscribing
    assert d.h.close_all() == [0]
    d.h.closed(0, 1000, "bye")
    d.tick(1.0)
    assert d.take() == []  # closing: no reconnect
    d.h.finish()
    assert kinds(d.items())[-2:] == ["disconnect", "closed"]


@pytest.mark.parametrize("payload", [b"{not json", b'{"arg":{"channel":"books"}}'])
def test_a_frame_that_does_not_parse_is_passed_on_as_malformed(payload):
    d = Driver()
    d.recv(payload)
    items = d.items()
    assert [i.channel for i in items if type(i) is Decoded] == ["_malformed"]
    assert kinds(items)[-1] == "malformed" and d.h.counts["malformed"] == 1
