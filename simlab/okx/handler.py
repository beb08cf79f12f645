"""The live OKX feed handler: every decision of the live client, and no I/O (no sockets,
tasks, asyncio or REST client). Sans-I/O, as h11 and wsproto are, and split the way
nautilus_trader splits an adapter's handler from its client.

Its inputs are method calls, with times read from an injected clock
(:mod:`simlab.okx.clock`): :meth:`FeedHandler.start`, :meth:`~FeedHandler.opened` /
:meth:`~FeedHandler.open_failed` (a connection attempt's result), :meth:`~FeedHandler.frame`
(one received frame), :meth:`~FeedHandler.closed`, :meth:`~FeedHandler.fetched` (a REST
snapshot or its error), :meth:`~FeedHandler.tick` (the timed decisions: ping, pong
timeout, silence, snapshot timeout, backoffs, switchover progress), and the close
sequence. Its outputs are the ``ready`` queue (frames as :class:`~simlab.okx.decoded.Decoded`
and :class:`~simlab.okx.actions.ClientEvent` status events, in stream order) and
``actions`` (:mod:`simlab.okx.actions`: open, send, close, abort, fetch) that the driver,
:class:`simlab.okx.client.OkxClient`, performs. A data frame queues no action.

It plans the connections (:func:`~simlab.okx.connection.plan_connections`), batches the
requests within OKX's limits, pings idle connections, reconnects with exponential backoff
and jitter, keeps each stream's chain and dedup memory, resyncs a stream on a gap
(:mod:`simlab.okx.resync`), refuses what the server refuses, proves a reconnect lossless
where it can, and switches over to a second connection on a 64008 notice without losing
or duplicating a message.
"""

from __future__ import annotations

import logging
import random
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, fields
from time import perf_counter_ns
from typing import Any

from .actions import Abort, ClientEvent, Close, Open, Send, Unsubscribed
from .clock import Clock, SystemClock
from .config import ClientConfig
from .connection import (
    Arg,
    RequestBudget,
    backoff_delay,
    batch_requests,
    normalize_args,
    plan_connections,
)
from .decoded import Decoded
from .integrity import BookIntegrity, BookSync, NoBook
from .messages import (
    FULL_BOOK_CHANNELS,
    INCREMENTAL_BOOK_CHANNELS,
    TRADE_CHANNELS,
    EventMsg,
    OkxParseError,
    TradeMsg,
    is_book,
)
from .parse import parse_frame
from .resync import BookResync
from .state import AWAIT, LIVE, Conn, Recent, Slot, Stream, Switch, book_key

log = logging.getLogger("simlab.okx.client")

#: RawFrame channel/inst for frames of no stream (as in a recording's raw partitions).
EVENT_CHANNEL, MALFORMED_CHANNEL, NO_INST = "_event", "_malformed", "_none"
#: At most this many events of one noisy kind (duplicate, malformed) are emitted; the rest
#: are only counted (``stats()`` and the final ``closed`` event).
MAX_NOISY_EVENTS = 1000

_NAMED_ARG = re.compile(r"channel:\s*([^,\s]+)\s*,\s*instId:\s*([^\s,]+)")


def named_arg(text: Any) -> Arg | None:
    """The ``(channel, instId)`` an OKX subscribe error names in its text, if any (OKX's
    errors carry no ``arg``; 60018 says ``channel:books,instId:BTC-USTD``). An error about
    an unsubscribe names nothing to refuse.

    >>> named_arg("Wrong URL or channel:books,instId:BTC-USTD doesn't exist. Please use ...")
    ('books', 'BTC-USTD')
    >>> print(named_arg("Unsubscribe failed, wrong URL or channel:books,instId:X ..."))
    None
    """
    if not isinstance(text, str) or "unsubscribe" in text.lower():
        return None
    m = _NAMED_ARG.search(text)
    return (m.group(1), m.group(2)) if m else None


def make_config(config: ClientConfig | None, overrides: dict[str, Any]) -> ClientConfig:
    """``config`` (default :class:`ClientConfig`) with keyword overrides of its fields.

    >>> make_config(None, {"ping_interval": 5}).ping_interval
    5
    >>> make_config(None, {"pong_timout": 3})
    Traceback (most recent call last):
    ValueError: unknown OkxClient option(s) ['pong_timout']; expected ClientConfig fields
    """
    cfg = config or ClientConfig()
    unknown = set(overrides) - {f.name for f in fields(ClientConfig)}
    if unknown:
        raise ValueError(f"unknown OkxClient option(s) {sorted(unknown)}; expected "
                         "ClientConfig fields")
    return ClientConfig(**{**asdict(cfg), **overrides}) if overrides else cfg


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


class FeedHandler(BookResync):
    """The live client's decisions for ``subscriptions`` (``(channel, instId)`` pairs);
    ``book_factory(inst_id)`` makes each depth stream's book; ``config`` or keyword
    overrides of :class:`ClientConfig` fields; ``clock`` the time every decision reads;
    ``rand`` the backoff jitter.

    >>> from simlab.okx.clock import FakeClock
    >>> h = FeedHandler([("books", "X")], book_factory=lambda i: None, clock=FakeClock(),
    ...                 ping_interval=5)
    >>> h.start(); h.drain()
    [Open(slot=0, current=True)]
    >>> conn = h.opened(0, current=True); [a.text[:30] for a in h.drain()]
    ['{"id":"1","op":"subscribe","ar']
    >>> h.frame(conn, b'{"event":"subscribe","arg":{"channel":"books","instId":"X"}}', 1)
    >>> h.clock.advance(5); h.tick(h.clock.now()); h.drain()
    [Send(conn=0, text='ping')]
    >>> [getattr(x, "kind", "frame") for x in h.ready]
    ['connect', 'frame', 'subscribed']
    """

    def __init__(self, subscriptions: Iterable[Arg | dict], *,
                 book_factory: Callable[[str], Any], config: ClientConfig | None = None,
                 clock: Clock | None = None, rand: Callable[[], float] = random.random,
                 **overrides: Any) -> None:
        self.cfg = cfg = make_config(config, overrides)
        self.clock = clock = clock or SystemClock()
        self._now, self._time_ns = clock.now, clock.time_ns
        self._rand = rand
        self.books = BookIntegrity(book_factory, cfg.verify_checksum)
        self.args = normalize_args(subscriptions)
        if not self.args:
            raise ValueError("subscriptions: expected at least one (channel, instId) pair")
        self.slots = [Slot(i, a) for i, a in enumerate(
            plan_connections(self.args, cfg.max_depth_per_conn))]
        self.streams: dict[Arg, Stream] = {}
        for slot in self.slots:
            for key in slot.args:
                self.streams[key] = self._new_stream(key, slot.index)
        #: What the consumer takes, in order: Decoded frames and ClientEvents.
        self.ready: deque = deque()
        #: What the driver does next (see :mod:`simlab.okx.actions`); it drains the list.
        self.actions: list = []
        self.conns: dict[int, Conn] = {}
        self._arrival = 0
        self._next_conn = 0
        self._next_id = 0
        self._tickets = 0
        self._inband: bool | None = None  # does the server send snapshots on subscribe?
        self._parse_ns = 0  # of the frame being handled
        self.closing = False
        self._unsub_wait: set[Arg] = set()
        #: Subscriptions the server refused (``refused`` events), as dicts with channel,
        #: inst, code, msg, conn and recv_ns.
        self.refused: list[dict[str, Any]] = []
        # Subscribe errors that named no argument: (conn, args, code, msg, deadline).
        self._unnamed_errors: list[tuple[Conn, list[Arg], Any, Any, float]] = []
        self.counts: dict[str, int] = dict.fromkeys(
            ("frames", "events", "duplicates", "non_owner_dropped", "pending_dropped",
             "malformed", "reconnects", "switchovers", "resyncs_resubscribe", "resyncs_rest",
             "rest_requests", "stale", "requests", "internal_errors"), 0)

    def _new_stream(self, key: Arg, slot: int) -> Stream:
        ch, inst = key
        n = self.cfg.dedup_window
        sync = chain = None
        if ch in INCREMENTAL_BOOK_CHANNELS:
            kind, mode = "incremental", AWAIT
            chain = BookSync(NoBook(), verify_checksum=False)
        elif ch in FULL_BOOK_CHANNELS:
            kind, mode = "full", LIVE
        elif ch in TRADE_CHANNELS:
            kind, mode = "trades", LIVE
        else:
            kind, mode = "other", LIVE
        if chain is not None or kind == "full":
            sync = self.books.stream(ch, inst)
        return Stream(key, slot, kind, sync, chain, Recent(n), Recent(n), mode=mode)

    # -- queries --------------------------------------------------------------------------
    def drain(self) -> list:
        """The actions queued so far (and none left).

        >>> from simlab.okx.clock import FakeClock
        >>> FeedHandler([("trades", "X")], book_factory=str, clock=FakeClock()).drain()
        []
        """
        out, self.actions = self.actions, []
        return out

    def sync(self, channel: str, inst_id: str) -> BookSync:
        """The :class:`BookSync` of one depth stream (its ``book``, ``stats``, ``valid``).

        >>> from simlab.okx.clock import FakeClock
        >>> FeedHandler([("books", "X")], book_factory=str, clock=FakeClock()).sync(
        ...     "books", "X").valid
        False
        """
        st = self.streams.get((channel, inst_id))
        if st is None or st.sync is None:
            raise KeyError(f"({channel!r}, {inst_id!r}) is not a subscribed depth stream")
        return st.sync

    def stats(self) -> dict[str, Any]:
        """Counters and each depth stream's :class:`~simlab.okx.integrity.BookStats`.

        >>> from simlab.okx.clock import FakeClock
        >>> FeedHandler([("trades", "X")], book_factory=str, clock=FakeClock()).stats()[
        ...     "streams"]
        {'trades:X': {'mode': 'live', 'resyncs': 0}}
        """
        return {**self.counts, "connections": len([c for c in self.conns.values()
                                                   if not c.closed]),
                "streams": {f"{k[0]}:{k[1]}": {"mode": s.mode, "resyncs": s.resyncs,
                                               **(s.sync.stats.as_dict() if s.sync else {})}
                            for k, s in self.streams.items()}}

    # -- connections ----------------------------------------------------------------------
    def start(self) -> None:
        """Ask for every slot's first connection (``Open`` actions)."""
        for slot in self.slots:
            self._need(slot)

    def _wants(self, slot: Slot) -> bool:
        return not (self.closing or slot.opening or slot.current is not None
                    or slot.switch is not None or not slot.args)

    def _need(self, slot: Slot) -> None:
        """The slot has no connection: open one, after a backoff when it is a retry."""
        if not self._wants(slot) or slot.open_at is not None:
            return
        if slot.attempt:
            cfg = self.cfg
            slot.open_at = self._now() + backoff_delay(slot.attempt - 1, cfg.backoff_base,
                                                       cfg.backoff_max, self._rand)
        else:
            slot.opening = True
            self.actions.append(Open(slot.index, True))

    def opened(self, slot: int, current: bool) -> int:
        """A connection of ``slot`` is open (``current`` as in its ``Open``): its id, and
        the subscribe requests queued."""
        cfg = self.cfg
        s = self.slots[slot]
        now = self._now()
        c = Conn(self._next_conn, slot, RequestBudget(cfg.requests_per_hour, 3600.0,
                                                      clock=self._now), now, now)
        self._next_conn += 1
        self.conns[c.id] = c
        sw = s.switch
        if current:
            s.opening = False
            s.current = c
        elif sw is not None:
            sw.opening = False
            sw.new = c
        self._event("connect", c.id, detail=cfg.ws_url, slot=slot, args=len(s.args),
                    attempt=s.attempt, switchover=not current)
        self._send_requests(c, "subscribe", s.args)
        if not current and sw is not None:
            self._check_switch(s, now)
        return c.id

    def open_failed(self, slot: int, current: bool, detail: str) -> None:
        """A connection attempt of ``slot`` failed (``detail``: the error): try again
        after a backoff (reported ``connect_failed``)."""
        s = self.slots[slot]
        cfg = self.cfg
        if current:
            s.opening = False
            if self.closing:
                return
            s.attempt += 1
            self._event("connect_failed", slot=slot, attempt=s.attempt, detail=detail,
                        url=cfg.ws_url)
            self._need(s)
            return
        sw = s.switch
        if sw is None:
            return
        sw.opening = False
        if self.closing:
            self._end_switch(s)
            return
        sw.attempt += 1
        self._event("connect_failed", slot=slot, attempt=sw.attempt,
                    detail=f"switchover: {detail}", url=cfg.ws_url)
        sw.open_at = self._now() + backoff_delay(sw.attempt - 1, cfg.backoff_base,
                                                 cfg.backoff_max, self._rand)

    def blocked(self, conn: int, on: bool) -> None:
        """The driver stopped (``on``) or resumed reading ``conn`` (back-pressure): the
        keepalive does not count that time."""
        c = self.conns.get(conn)
        if c is None:
            return
        c.blocked = on
        if not on:
            c.last_rx = self._now()
            c.ping_sent = None

    def closed(self, conn: int, code: int | None, reason: str) -> None:
        """Connection ``conn`` closed (``code``/``reason`` of its close frame): report it,
        mark its streams for a resume proof, reconnect its slot (after a backoff)."""
        c = self.conns.get(conn)
        if c is None or c.closed:
            return
        c.closed = True
        now = self._now()
        slot = self.slots[c.slot]
        since = now - (c.last_data or c.opened)
        expected = c.closing or self.closing
        # None for a planned close; [] for a connection that was carrying no stream (a
        # switchover's new one, or one whose streams an earlier disconnect already cut).
        streams = None if expected else []
        if streams is not None and slot.current is c:
            # What arrives next on each stream says whether anything was lost meanwhile.
            for key in slot.args:
                st = self.streams[key]
                if st.resume is None:
                    st.resume = {"conn": c.id}
                    st.lossless = None
                    streams.append(list(key))
        self._event("disconnect", c.id, detail=f"code {code}: {reason}", code=code,
                    expected=expected, since_data_s=round(since, 3),
                    lived_s=round(now - c.opened, 3), streams=streams)
        for q in c.pending.values():
            self.counts["pending_dropped"] += len(q)
        c.pending.clear()
        self.conns.pop(c.id, None)
        if self.closing or slot.current is not c:
            return
        slot.current = None
        slot.down_since = c.last_data or c.opened
        slot.down_conn = c.id
        for key in slot.args:
            st = self.streams[key]
            if st.mode != LIVE:
                # What was held came from the dead connection: the new one starts afresh.
                self._release(st)
                st.deadline = None
                st.rest_snap = None
                self._rest_woken(st)
        if slot.switch is not None:
            return  # the switchover makes its new connection current
        if now - c.opened >= self.cfg.backoff_reset_s:
            slot.attempt = 0
        slot.attempt += 1
        self._need(slot)

    def _close(self, c: Conn) -> None:
        c.closing = True
        self.actions.append(Close(c.id))

    def _request_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def _send_requests(self, c: Conn, op: str, args: list[Arg], budget: bool = True) -> bool:
        if not args:
            return True
        reqs = batch_requests(op, args, self._request_id, self.cfg.max_request_bytes)
        if budget and not c.budget.take(len(reqs)):
            return False
        for rid, frame, chunk in reqs:
            c.requests[rid] = (op, chunk)
            if len(c.requests) > 200:  # only to name the args of an error: keep the last few
                del c.requests[next(iter(c.requests))]
            self.counts["requests"] += 1
            self.actions.append(Send(c.id, frame.decode()))
        return True

    # -- time -------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """The timed decisions, every ``tick`` s: ping, pong timeout, silence, refusals
        that named no argument, snapshot timeout, REST retries, reconnect backoffs and the
        switchover's progress."""
        cfg = self.cfg
        for c in list(self.conns.values()):
            if c.closed or c.closing or c.dead or c.blocked:
                continue
            if c.ping_sent is not None:
                if now - c.ping_sent > cfg.pong_timeout:
                    self._event("ping_timeout", c.id, detail=f"no pong within "
                                f"{cfg.pong_timeout:g} s: connection presumed dead")
                    c.dead = True
                    self.actions.append(Abort(c.id))
            elif now - c.last_rx >= cfg.ping_interval:
                c.ping_sent = now
                self.actions.append(Send(c.id, "ping"))
            last = c.last_data or c.opened
            if c.silent_since is None and now - last >= cfg.silence_s:
                c.silent_since = last
        if self._unnamed_errors:
            self._check_unnamed_errors(now)
        for st in self.streams.values():
            if st.mode == AWAIT and st.deadline is not None and now > st.deadline:
                st.deadline = None
                self._inband = False
                self._event("snapshot_timeout", self._owner_id(st), st.channel, st.inst,
                            detail=f"no snapshot within {cfg.snapshot_timeout:g} s of the "
                                   "subscribe ack: bootstrapping from REST")
                self._to_rest(st)
            elif st.rest_phase in ("pause", "splice") and now >= st.rest_at:
                self._rest_timer(st, now)
        for slot in self.slots:
            if slot.open_at is not None and now >= slot.open_at:
                slot.open_at = None
                if self._wants(slot):
                    slot.opening = True
                    self.actions.append(Open(slot.index, True))
            sw = slot.switch
            if sw is None:
                continue
            if sw.open_at is not None and now >= sw.open_at:
                sw.open_at = None
                self._switch_open(slot)
            elif sw.new is not None:
                self._check_switch(slot, now)

    def _owner_id(self, st: Stream) -> int | None:
        c = self.slots[st.slot].current
        return None if c is None else c.id

    # -- frames -----------------------------------------------------------------------------
    def frame(self, conn: int, payload: bytes, recv_ns: int) -> None:
        """One frame received on ``conn`` at ``recv_ns`` (wall ns): pass it on (``ready``)
        and decide. A failure here never loses the frame: it is passed on as malformed."""
        c = self.conns[conn]
        arrival = self._arrival
        try:
            self._on_frame(c, payload, recv_ns)
        except Exception as e:  # a bug here must not silently kill the connection
            self.counts["internal_errors"] += 1
            log.exception("conn %d: frame handling failed", c.id)
            if self.counts["internal_errors"] <= MAX_NOISY_EVENTS:
                self._event("error", c.id, bytes=len(payload),
                            detail=f"internal: {type(e).__name__}: {str(e)[:200]}")
            if self._arrival == arrival:  # not passed on: keep it, never lose it
                self._malformed(c, payload, recv_ns, f"internal: {type(e).__name__}")

    def _on_frame(self, c: Conn, payload: bytes, recv_ns: int) -> None:
        now = self._now()
        c.last_rx = now
        if payload == b"pong":
            c.ping_sent = None
            if self.cfg.yield_pongs:
                self._emit(recv_ns, c.id, EVENT_CHANNEL, NO_INST, payload)
            return
        t0 = perf_counter_ns()
        try:
            msg = parse_frame(payload)  # total: OkxParseError is its only failure
        except OkxParseError as e:
            self._malformed(c, payload, recv_ns, e.reason)
            return
        self._parse_ns = perf_counter_ns() - t0
        if type(msg) is EventMsg:
            self._emit(recv_ns, c.id, EVENT_CHANNEL, NO_INST, payload, msg)
            self._on_control(c, msg)
            return
        self._data_seen(c, now)
        if is_book(msg):
            self._on_book(c, msg, payload, recv_ns)
        elif type(msg) is TradeMsg:
            self._on_trades(c, msg, payload, recv_ns)
        else:
            self._on_other(c, msg, payload, recv_ns)

    def _malformed(self, c: Conn, payload: bytes, recv_ns: int, reason: str) -> None:
        # Passed on (a recorder stores it in the malformed partition), counted, reported.
        self.counts["malformed"] += 1
        self._emit(recv_ns, c.id, MALFORMED_CHANNEL, NO_INST, payload)
        if self.counts["malformed"] <= MAX_NOISY_EVENTS:
            self._event("malformed", c.id, detail=reason, bytes=len(payload))

    def _data_seen(self, c: Conn, now: float) -> None:
        if c.silent_since is not None:
            self._event("silence", c.id, detail="no data on the connection",
                        silent_s=round(now - c.silent_since, 3))
            c.silent_since = None
        c.last_data = now
        if c.first_data is None:
            c.first_data = now
            slot = self.slots[c.slot]
            if slot.current is c and slot.down_since is not None:
                self.counts["reconnects"] += 1
                self._event("reconnect", c.id, detail="data flows again",
                            previous_conn=slot.down_conn,
                            missing_s=round(now - slot.down_since, 3))
                slot.down_since = None

    def _on_control(self, c: Conn, msg: EventMsg) -> None:
        ev = msg.event
        key = (msg.channel, msg.inst_id) if msg.arg else None
        st = self.streams.get(key) if key else None
        if ev == "subscribe" and st is not None:
            c.acked.add(st.key)
            if self.slots[st.slot].current is c and st.mode == AWAIT:
                st.t0 = st.t0 or self._now()
                if self._inband is False:
                    self._to_rest(st)  # this server sends no snapshots: do not wait for one
                else:
                    st.deadline = self._now() + self.cfg.snapshot_timeout
            if st.kind in ("trades", "other"):
                c.joined.add(st.key)
            self._event("subscribed", c.id, st.channel, st.inst)
        elif ev == "unsubscribe" and st is not None:
            c.acked.discard(st.key)
            self._event("unsubscribed", c.id, st.channel, st.inst)
            if self.closing and st.key in self._unsub_wait:
                self._unsub_wait.discard(st.key)
                if not self._unsub_wait:
                    self.actions.append(Unsubscribed())
        elif ev == "error":
            req = c.requests.get(str(msg.id)) if msg.id is not None else None
            extra: dict[str, Any] = {"code": msg.code}
            if req is not None:
                extra["op"], extra["args"] = req[0], [list(a) for a in req[1][:5]]
                extra["n_args"] = len(req[1])
            self._event("error", c.id, detail=str(msg.msg), **extra)
            if req is not None and req[0] == "subscribe":
                self._subscribe_error(c, req[1], msg)
            elif req is None:
                key = named_arg(msg.msg)
                if key in self.streams:
                    self._refuse(c, key, msg.code, msg.msg)
        elif ev == "notice":
            self._event("notice", c.id, detail=str(msg.msg), code=msg.code)
            slot = self.slots[c.slot]
            if msg.code == "64008" and slot.current is c and slot.switch is None \
                    and not self.closing:
                slot.switch = Switch(c, self._now())
                self._switch_open(slot)

    # -- refusals ---------------------------------------------------------------------------
    def _subscribe_error(self, c: Conn, args: list[Arg], msg: EventMsg) -> None:
        """An error answering one of our subscribe requests: refuse the argument it names,
        the request's only argument, or (when it names none of several) those of the
        request still not acked ``refusal_wait`` s later."""
        key = named_arg(msg.msg)
        if key in args:
            self._refuse(c, key, msg.code, msg.msg)
        elif len(args) == 1:
            self._refuse(c, args[0], msg.code, msg.msg)
        else:
            self._unnamed_errors.append((c, list(args), msg.code, msg.msg,
                                         self._now() + self.cfg.refusal_wait))

    def _refuse(self, c: Conn, key: Arg, code: Any, text: Any) -> None:
        """The server refused ``key``: say so (``refused`` event, :attr:`refused`) and stop
        asking for it, here and on every later connection."""
        st = self.streams.get(key)
        if st is None or st.refused is not None:
            return
        now_ns = self._time_ns()
        code = None if code is None else str(code)
        text = None if text is None else str(text)
        st.refused = {"channel": st.channel, "inst": st.inst, "code": code, "msg": text,
                      "conn": c.id, "recv_ns": now_ns}
        self.refused.append(st.refused)
        st.resume = None
        slot = self.slots[st.slot]
        if key in slot.args:
            slot.args.remove(key)
        c.acked.discard(key)
        self._rest_stop(st)
        st.deadline = None
        self._event("refused", c.id, st.channel, st.inst,
                    detail=f"subscription refused: {code} {text}", code=code, msg=text)
        if not slot.args and slot.current is not None and not self.closing:
            # nothing left to receive on it; OKX would close it in 30 s anyway
            self._close(slot.current)

    def _check_unnamed_errors(self, now: float) -> None:
        keep = []
        for c, args, code, text, deadline in self._unnamed_errors:
            if now < deadline:
                keep.append((c, args, code, text, deadline))
            elif not c.closed:
                for key in args:
                    if key not in c.acked:
                        self._refuse(c, key, code, text)
        self._unnamed_errors = keep

    # -- resume after a disconnect --------------------------------------------------------------
    def _resumed(self, st: Stream, c: Conn | None, lossless: bool, detail: str,
                 **data: Any) -> None:
        r = st.resume
        st.resume = None
        st.lossless = lossless
        self._event("resumed", None if c is None else c.id, st.channel, st.inst, detail=detail,
                    previous_conn=r["conn"] if r else None, lossless=lossless, **data)
        if st.kind not in ("incremental", "full"):
            return
        for t in self.streams.values():
            if t.kind != "trades" or t.inst != st.inst or t.resume is None \
                    or t.resume["conn"] != (r or {}).get("conn"):
                continue
            if lossless:
                # The book did not change while the connection was down: no trade can
                # have happened (a trade takes liquidity off the book).
                self._resumed(t, c, True, f"the {st.channel} book of {st.inst} did not "
                              "change while disconnected: no trade happened",
                              proof=f"{st.channel} book", last_trade_id=t.last_trade)
            elif "first" in t.resume:
                self._resumed(t, c, False, t.resume["first"], last_trade_id=t.last_trade)

    def _resume_book(self, st: Stream, c: Conn, msg: Any) -> None:
        last = st.last_seq
        if msg.action == "snapshot" or st.kind == "full":
            ok = last is not None and msg.seq_id == last
            what = f"first push seqId {msg.seq_id}, last before seqId {last}"
        else:
            ok = last is not None and msg.prev_seq_id == last
            what = (f"first update prevSeqId {msg.prev_seq_id}, last before seqId {last}")
        if last is None:
            why = ": no message before the disconnect, cannot tell what was missed"
        else:
            why = ": unchanged, nothing missed" if ok else ": updates in between were not " \
                                                           "received"
        self._resumed(st, c, ok, what + why, last_seq_id=last, seq_id=msg.seq_id)

    def _resume_trades(self, st: Stream, c: Conn, msg: TradeMsg) -> None:
        first = msg.trades[0] if msg.trades else None
        tid = _int(first.trade_id) if first is not None else None
        last = st.last_trade
        n = first.count if first is not None else None
        if tid is not None and last is not None and isinstance(n, int) and n > 0 \
                and tid - n == last:
            self._resumed(st, c, True, f"tradeId {tid} ({n} fills) continues {last}",
                          proof="tradeId", last_trade_id=last, trade_id=tid)
            return
        book = next((b for b in self.streams.values() if b.inst == st.inst
                     and b.kind in ("incremental", "full") and b.slot == st.slot), None)
        why = (f"first tradeId {tid} ({n} fills) after last tradeId {last}: trades in "
               "between may be missing")
        if book is not None and book.resume is not None:
            st.resume["first"] = why  # the book's verdict decides (see _resumed)
            return
        if book is not None and book.lossless:
            self._resumed(st, c, True, f"the {book.channel} book of {st.inst} did not change "
                          "while disconnected: no trade happened", proof=f"{book.channel} book",
                          last_trade_id=last, trade_id=tid)
            return
        self._resumed(st, c, False, why, last_trade_id=last, trade_id=tid)

    # -- trades and other channels ----------------------------------------------------------
    def _dup(self, st: Stream, c: Conn, msg: Any, what: str) -> None:
        c.dups += 1
        self.counts["duplicates"] += 1
        c.joined.add(st.key)
        # A switchover's overlap (and the old connection's last in-flight messages after
        # it) is expected to repeat messages: counted (switchover event), not reported.
        if self.slots[st.slot].switch is None and not c.closing and not st.overlap \
                and self.counts["duplicates"] <= MAX_NOISY_EVENTS:
            self._event("duplicate", c.id, st.channel, st.inst, detail=what,
                        seq_id=getattr(msg, "seq_id", None),
                        prev_seq_id=getattr(msg, "prev_seq_id", None))

    def _fresh(self, st: Stream, c: Conn, key: Any, msg: Any, what: str) -> bool:
        """Whether ``key`` of ``st`` is new: then it is remembered and ``c`` has joined
        the stream; else it is a duplicate (counted, reported as ``what``)."""
        if key in st.seen:
            self._dup(st, c, msg, what)
            return False
        st.seen.add(key)
        c.joined.add(st.key)
        self._own(st, c.id)
        return True

    def _on_trades(self, c: Conn, msg: TradeMsg, payload: bytes, recv_ns: int) -> None:
        st = self.streams.get((msg.channel, msg.inst_id))
        if st is None:
            self._emit(recv_ns, c.id, msg.channel, msg.inst_id or NO_INST, payload, msg)
            return
        ids = [t.trade_id for t in msg.trades]
        if ids and all(i in st.seen for i in ids):
            self._dup(st, c, msg, f"trades {ids[0]}..{ids[-1]} already passed on")
            return
        for i in ids:
            st.seen.add(i)
        c.joined.add(st.key)
        self._own(st, c.id)
        if st.resume is not None and "first" not in st.resume \
                and self.slots[st.slot].current is c:
            self._resume_trades(st, c, msg)
        if msg.trades:
            st.last_trade = _int(msg.trades[-1].trade_id)
        self._emit(recv_ns, c.id, st.channel, st.inst, payload, msg)

    def _on_other(self, c: Conn, msg: Any, payload: bytes, recv_ns: int) -> None:
        inst = msg.inst_id if isinstance(msg.inst_id, str) and msg.inst_id else NO_INST
        st = self.streams.get((msg.channel, inst))
        if st is not None:
            if not self._fresh(st, c, hash(payload), msg, "identical frame already passed on"):
                return
            if st.resume is not None and self.slots[st.slot].current is c:
                self._resumed(st, c, False, "no sequence to tell what was missed")
        self._emit(recv_ns, c.id, msg.channel, inst, payload, msg)

    # -- 64008 switchover ---------------------------------------------------------------------
    def _switch_open(self, slot: Slot) -> None:
        slot.switch.opening = True
        self.actions.append(Open(slot.index, False))

    def _all_joined(self, slot: Slot, c: Conn) -> bool:
        return all(k in c.joined or self.streams[k].mode != LIVE for k in slot.args)

    def _check_switch(self, slot: Slot, now: float) -> None:
        """Switch once the new connection carries every stream (or ``switch_timeout``
        passed, or the old one closed); open another if the new one closed first."""
        sw = slot.switch
        new = sw.new
        if self.closing:
            self._end_switch(slot)
            return
        if new.closed:
            sw.new = None
            self._switch_open(slot)
            return
        if (now - sw.t0 < self.cfg.switch_timeout and not sw.old.closed
                and not self._all_joined(slot, new)):
            return
        self._switch(slot, sw.old, new, sw.t0)
        self._end_switch(slot)
        self._close(sw.old)

    def _end_switch(self, slot: Slot) -> None:
        slot.switch = None
        if slot.current is None and not self.closing:
            self._need(slot)

    def _switch(self, slot: Slot, old: Conn, new: Conn, t0: float) -> None:
        joined = sum(k in new.joined for k in slot.args)
        slot.current = new
        slot.down_since = None
        self.counts["switchovers"] += 1
        for key in slot.args:
            st = self.streams[key]
            st.overlap = True
            q = old.pending.pop(key, None)
            if q:
                self.counts["pending_dropped"] += len(q)
            if st.mode != LIVE:
                # Its resync ran on the old connection: start it again on the new one.
                self._release(st)
                self._rest_stop(st)
                st.mode = LIVE
                st.why = "switchover"
                self._start_resync(st, "switchover", st.base_ts)
                continue
            if st.kind != "incremental":
                continue
            self._drain_pending(st)
            q = new.pending.get(key)
            while q and st.mode == LIVE:
                # Not continuing the chain even now: the new connection's own view wins (its
                # snapshot resets the book; an update is a gap and resyncs the stream).
                h = q.popleft()
                if h.msg.action != "snapshot" and book_key(h.msg) in st.seen:
                    self._dup(st, new, h.msg, "already passed on by the old connection")
                else:
                    self._accept(st, new.id, h.msg, h.payload, h.recv_ns, h.parse_ns)
                self._drain_pending(st)
        self._event("switchover", new.id, detail="64008: switched to the new connection",
                    old_conn=old.id, joined=joined, streams=len(slot.args),
                    overlap_s=round(self._now() - t0, 3),
                    duplicates_dropped=old.dups + new.dups)
        old.closing = True

    # -- closing ----------------------------------------------------------------------------
    def begin_close(self) -> None:
        """The client closes: no new connection, resync or fetch; unsubscribe what each
        current connection carries (``Send`` actions; ``Unsubscribed`` once all are acked,
        see :attr:`unsubscribing`)."""
        self.closing = True
        for slot in self.slots:
            c = slot.current
            if c is not None and not c.closed:
                args = [a for a in slot.args if a in c.acked]
                self._unsub_wait.update(args)
                self._send_requests(c, "unsubscribe", args, budget=False)

    @property
    def unsubscribing(self) -> bool:
        """Unsubscribes sent by :meth:`begin_close` still not acked."""
        return bool(self._unsub_wait)

    def close_all(self) -> list[int]:
        """Every open connection, each marked as closed by us (not a failure)."""
        for c in self.conns.values():
            c.closing = True
        return list(self.conns)

    def finish(self) -> None:
        """The connections are closed: settle what is left (resume verdicts, held and
        pending updates) and emit ``closed`` with the counters."""
        for st in self.streams.values():
            if st.resume is not None:
                self._resumed(st, None, False, st.resume.get("first")
                              or "no message after the reconnect: cannot tell what was missed")
            if st.held:
                self._release(st)
            for c in self.conns.values():
                q = c.pending.pop(st.key, None)
                if q:
                    self.counts["pending_dropped"] += len(q)
        self._event("closed", detail="client closed", **dict(self.counts))

    # -- output ---------------------------------------------------------------------------
    def _emit(self, recv_ns: int, conn: int, channel: str, inst: str, payload: bytes,
              msg: Any = None) -> int:
        a = self._arrival
        self._arrival += 1
        d = Decoded(a, recv_ns, conn, channel, inst, payload, msg)
        d.parse_ns = self._parse_ns
        self.ready.append(d)
        self.counts["frames"] += 1
        return a

    def _emit_book(self, st: Stream, recv_ns: int, conn: int, payload: bytes, msg: Any,
                   parse_ns: int, released: bool = False, handled: bool = False) -> Decoded:
        """Pass on a book frame of ``st``: its book is applied when it is yielded."""
        a = self._arrival
        self._arrival += 1
        d = Decoded(a, recv_ns, conn, st.channel, st.inst, payload, msg)
        d.parse_ns = parse_ns
        d._book = True
        if released:
            d._released = True
        if handled:
            d._handled = True
        st.last_arrival = a
        self.ready.append(d)
        self.counts["frames"] += 1
        return d

    def _new_event(self, kind: str, conn: int | None = None, channel: str | None = None,
                   inst: str | None = None, detail: str = "", **data: Any) -> ClientEvent:
        data = {k: v for k, v in data.items() if v is not None}
        ev = ClientEvent(kind, self._time_ns(), conn, channel, inst, detail, data)
        self.counts["events"] += 1
        level = logging.INFO if kind not in ("duplicate", "subscribed", "unsubscribed") \
            else logging.DEBUG
        log.log(level, "%s conn=%s %s %s %s %s", kind, conn, channel or "", inst or "", detail,
                data or "")
        return ev

    def _event(self, kind: str, conn: int | None = None, channel: str | None = None,
               inst: str | None = None, detail: str = "", **data: Any) -> None:
        self.ready.append(self._new_event(kind, conn, channel, inst, detail, **data))

    def event(self, kind: str, detail: str = "", **data: Any) -> None:
        """Queue a client-level event of the driver's (e.g. a failed internal task).

        >>> from simlab.okx.clock import FakeClock
        >>> h = FeedHandler([("trades", "X")], book_factory=str, clock=FakeClock())
        >>> h.event("error", detail="boom"); h.ready[0].kind, h.counts["events"]
        ('error', 1)
        """
        self._event(kind, detail=detail, **data)

