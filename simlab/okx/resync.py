"""The book streams' half of the live feed handler (no I/O): book messages as received
(dedup across connections, the chain), and the resync state machine of one stream.

A stream is ``live`` (its book is valid, or it needs none), ``await`` (waiting for an
in-band snapshot after a subscribe) or ``rest`` (a REST bootstrap runs). Outside ``live``
its updates are held back (bounded) and released in the order that rebuilds the book:
stale updates, then the snapshot, then the updates after it. A gap found on receipt, or a
break found when the frame is yielded, resyncs the stream: unsubscribe + subscribe on its
connection, or a REST bootstrap (fetch, splice onto the held updates, fetch again when
none splices within ``splice_wait``).

Across connections (a 64008 switchover, a reconnect) a book message is passed on once: a
message already passed on (by prevSeqId/seqId) is a duplicate; one from a connection other
than the stream's current one is passed on only when it continues the chain, else held
until it does or is found to be a duplicate.

:class:`BookResync` is a base of :class:`~simlab.okx.handler.FeedHandler` and works on its
state (streams, slots, connections, counts, the ready queue, the actions).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from .actions import ClientEvent, Fetch
from .connection import backoff_delay
from .decoded import Decoded
from .integrity import SPLICE, STALE, WAIT, Outcome, find_splice, start_chain_at
from .rest import RestBook, RestError
from .rest_parse import REST_CONN
from .sequence import Seq, classify
from .state import AWAIT, LIVE, REST, Conn, Held, Stream, book_key


def _empty(msg: Any) -> bool:
    return not len(msg.bids) and not len(msg.asks)


class BookResync:
    """Book messages and resyncs; the state is :class:`~simlab.okx.handler.FeedHandler`'s
    (use that class: see its example)."""

    # -- book messages as received ------------------------------------------------------------
    def _on_book(self, c: Conn, msg: Any, payload: bytes, recv_ns: int) -> None:
        st = self.streams.get((msg.channel, msg.inst_id))
        if st is None or st.sync is None:
            self._emit(recv_ns, c.id, msg.channel, msg.inst_id, payload, msg)
            return
        owner = self.slots[st.slot].current is c
        if owner:
            if st.resume is not None and st.resume["conn"] != c.id:
                self._resume_book(st, c, msg)
            st.last_seq = msg.seq_id
        if st.kind == "full":
            if self._fresh(st, c, (msg.seq_id, msg.ts), msg, "full-book push already passed on"):
                self._emit_book(st, recv_ns, c.id, payload, msg, self._parse_ns)
            return
        snapshot = msg.action == "snapshot"
        if st.mode != LIVE:
            if not owner:
                self.counts["non_owner_dropped"] += 1
                return
            if snapshot:
                self._inband_snapshot(st, c, msg, payload, recv_ns)
            else:
                self._hold(st, c, msg, payload, recv_ns)
            return
        if snapshot:
            if msg.seq_id in st.seen_seq:
                self._dup(st, c, msg, "snapshot of a seqId already passed on")
                return
            if owner:
                self._accept(st, c.id, msg, payload, recv_ns)
                self._drain_pending(st)
            else:
                self._pend(st, c, msg, payload, recv_ns)
            return
        if book_key(msg) in st.seen:
            self._dup(st, c, msg, "update already passed on")
            return
        if owner or self._chains(st, msg):
            if not owner:
                c.joined.add(st.key)
            self._accept(st, c.id, msg, payload, recv_ns)
            self._drain_pending(st)
        else:
            self._pend(st, c, msg, payload, recv_ns)

    def _chains(self, st: Stream, msg: Any) -> bool:
        s = st.chain
        kind = classify(s.valid, s.last_seq, s.last_prev, False, msg.prev_seq_id, msg.seq_id,
                        _empty(msg))
        return kind in (Seq.UPDATE, Seq.HEARTBEAT, Seq.RESET)

    def _own(self, st: Stream, conn: int) -> None:
        """A message of its own from the stream's current connection ends a switchover's
        overlap (the old one, still read until closed, may run ahead of the new one)."""
        if st.overlap:
            cur = self.slots[st.slot].current
            if cur is not None and cur.id == conn:
                st.overlap = False

    def _accept(self, st: Stream, conn: int, msg: Any, payload: bytes, recv_ns: int,
                parse_ns: int | None = None) -> None:
        chain = st.chain
        kind = chain.apply(msg, self._arrival)
        gap = bool(chain.events)
        a = self._emit_book(st, recv_ns, conn, payload, msg,
                            self._parse_ns if parse_ns is None else parse_ns, handled=gap).arrival
        st.last_seq = msg.seq_id
        self._own(st, conn)
        st.remember(msg)
        if kind is Seq.RESET:
            self._event("seq_reset", conn, st.channel, st.inst,
                        detail="maintenance reset: seqId went down, chain continues",
                        seq_id=msg.seq_id, prev_seq_id=msg.prev_seq_id, ts=msg.ts, arrival=a)
        if gap:
            # the gap event itself follows the frame when it is yielded (its book says so)
            events, chain.events = chain.events, []
            if any(e.kind == "gap" for e in events):
                self._start_resync(st, "gap", msg.ts)

    def _pend(self, st: Stream, c: Conn, msg: Any, payload: bytes, recv_ns: int) -> None:
        q = c.pending.get(st.key)
        if q is None:
            q = c.pending[st.key] = deque()
        if len(q) >= self.cfg.max_pending:
            q.popleft()
            self.counts["pending_dropped"] += 1
        q.append(Held(msg, payload, recv_ns, c.id, self._parse_ns))

    def _drain_pending(self, st: Stream) -> None:
        """Messages other connections sent ahead of the chain: pass on those that now
        continue it, drop those now known to be duplicates."""
        progress = True
        while progress and st.mode == LIVE:
            progress = False
            for c in list(self.conns.values()):
                q = c.pending.get(st.key)
                while q:
                    h = q[0]
                    m = h.msg
                    if (m.seq_id in st.seen_seq if m.action == "snapshot"
                            else book_key(m) in st.seen):
                        q.popleft()
                        self._dup(st, c, m, "already passed on by another connection")
                        progress = True
                    elif m.action != "snapshot" and self._chains(st, m):
                        q.popleft()
                        c.joined.add(st.key)
                        self._accept(st, c.id, m, h.payload, h.recv_ns, h.parse_ns)
                        progress = True
                    else:
                        break

    # -- breaks found when a frame is yielded -------------------------------------------------
    def outcome_events(self, item: Decoded, o: Outcome) -> list[ClientEvent]:
        """The client events of the breaks a yielded frame's book showed (``o``, from
        ``books.apply``); a break the receiving side did not see already resyncs the
        stream (its actions are queued)."""
        st = self.streams[(item.channel, item.inst)]
        conn = None if item.conn == REST_CONN or item._released else item.conn
        out = []
        for e in o.events:
            if e["kind"] == "no_snapshot":
                continue  # explained by the resync that is holding or releasing them
            out.append(self._new_event(e["kind"], conn, e["channel"], e["inst"], e["detail"],
                                       seq_id=e["seq_id"], prev_seq_id=e["prev_seq_id"],
                                       expected_prev=e["expected_prev"], ts=e["ts"],
                                       arrival=e["arrival"]))
            if st.kind == "incremental" and not item._released and not item._handled:
                self._on_break(st, e["kind"], e["ts"])
        return out

    def _on_break(self, st: Stream, why: str, ts: int | None) -> None:
        """A break found at yield time: the updates of the stream passed on since reach no
        book (counted stale with the held ones when the resync is done); resync."""
        st.chain.invalidate()
        if st.mode != LIVE or self.closing:
            return
        key = st.key
        first = next((x.arrival for x in self.ready if type(x) is Decoded and x._book
                      and (x.channel, x.inst) == key), None)
        self._start_resync(st, why, ts)
        if first is not None and st.mode != LIVE:
            st.stale_first = first

    # -- resync -------------------------------------------------------------------------------
    def _resync_how(self, st: Stream) -> str:
        mode = self.cfg.resync
        if mode == "rest" or (mode == "auto" and self._inband is False):
            return "rest"
        c = self.slots[st.slot].current
        if c is None or c.closed or c.budget.left() < 2:
            return "rest"
        return "resubscribe"

    def _start_resync(self, st: Stream, why: str, ts: int | None) -> None:
        if st.mode != LIVE or self.closing:
            return
        st.why, st.t0, st.base_ts = why, self._now(), ts
        st.resyncs += 1
        how = self._resync_how(st)
        self._event("resync_started", self._owner_id(st), st.channel, st.inst,
                    detail=f"{why}: resync by {how}", how=how, why=why)
        if how == "rest":
            self._to_rest(st)
            return
        st.how = "resubscribe"
        st.mode = AWAIT
        st.deadline = None  # set at the subscribe ack
        self.counts["resyncs_resubscribe"] += 1
        c = self.slots[st.slot].current
        # OKX acks a repeated subscribe without a new snapshot: unsubscribe first.
        self._send_requests(c, "unsubscribe", [st.key])
        self._send_requests(c, "subscribe", [st.key])

    def _hold(self, st: Stream, c: Conn, msg: Any, payload: bytes, recv_ns: int) -> None:
        if book_key(msg) in st.seen:
            self._dup(st, c, msg, "update already held")
            return
        if len(st.held) >= self.cfg.max_buffered:
            self._event("buffer_overflow", c.id, st.channel, st.inst,
                        detail=f"{len(st.held)} updates held while resyncing by {st.how} "
                               f"(max_buffered={self.cfg.max_buffered}): released unapplied, "
                               "resync goes on", held=len(st.held))
            self._release(st)
            if st.mode == REST:
                st.rest_snap = None
                self._rest_woken(st)
        st.remember(msg)
        st.held.append(Held(msg, payload, recv_ns, c.id, self._parse_ns))
        if st.mode == REST and st.rest_snap is not None:
            self._try_splice(st)

    def _release(self, st: Stream, n: int | None = None) -> tuple[int, int] | None:
        """Pass on the first ``n`` held updates (all by default) unapplied-able: they reach
        the book while it has none (counted no_snapshot). Returns their arrival range."""
        held = st.held
        n = len(held) if n is None else n
        first = last = None
        chain = st.chain
        for _ in range(n):
            h = held.popleft()
            if not self.cfg.keep_stale:
                self.counts["stale"] += 1
                continue
            chain.apply(h.msg, self._arrival)
            last = self._emit_book(st, h.recv_ns, h.conn, h.payload, h.msg, h.parse_ns,
                                   released=True).arrival
            first = last if first is None else first
        chain.events.clear()  # explained by the resync releasing them
        return None if first is None else (first, last)

    def _stale(self, st: Stream, released: tuple[int, int] | None) -> list[int] | None:
        """The ``stale_arrivals`` of a resync that is done: the updates it released, from
        the first one passed on after a break found at yield time (they reached no book)."""
        first, st.stale_first = st.stale_first, None
        if first is None:
            return None if released is None else list(released)
        return [first, st.last_arrival if released is None else released[1]]

    def _inband_snapshot(self, st: Stream, c: Conn, msg: Any, payload: bytes,
                         recv_ns: int) -> None:
        self._inband = True
        stale = self._stale(st, self._release(st))
        first = st.why == "subscribe"
        how = "snapshot" if first else st.how or "resubscribe"
        st.mode = LIVE
        st.deadline = None
        st.rest_snap = None
        self._rest_stop(st)
        st.chain.apply(msg, self._arrival)
        a = self._emit_book(st, recv_ns, c.id, payload, msg, self._parse_ns).arrival
        st.remember(msg)
        self._event("synced" if first else "resync_done", c.id, st.channel, st.inst,
                    detail=f"in-band snapshot ({st.why})", how=how, why=st.why,
                    seq_id=msg.seq_id, arrival=a,
                    stale_arrivals=stale,
                    duration_s=round(self._now() - st.t0, 3) if st.t0 else None)
        st.why = "resync"
        self._drain_pending(st)

    # -- REST bootstrap: fetch, splice, fetch again -------------------------------------------
    def _to_rest(self, st: Stream) -> None:
        st.mode = REST
        st.how = "rest"
        st.deadline = None
        st.rest_snap = None
        self.counts["resyncs_rest"] += 1
        if st.rest_phase is None:  # else the bootstrap under way goes on
            st.rest_attempt = 0
            if not st.t0:
                st.t0 = self._now()
            self._rest_fetch(st)

    def _rest_fetch(self, st: Stream) -> None:
        if st.mode != REST or self.closing:
            st.rest_phase = None
            return
        self.counts["rest_requests"] += 1
        self._tickets += 1
        st.rest_phase, st.rest_ticket = "fetch", self._tickets
        self.actions.append(Fetch(st.key, self._tickets))

    def _rest_stop(self, st: Stream) -> None:
        st.rest_phase = None  # a snapshot still on its way is ignored (its ticket is old)

    def fetched(self, key: tuple[str, str], ticket: int, result: RestBook | RestError) -> None:
        """The answer to ``Fetch(key, ticket)``: the snapshot, or the request's error (then
        fetch again after a backoff). An answer the stream no longer waits for is ignored.

        >>> from simlab.okx.clock import FakeClock
        >>> from simlab.okx.handler import FeedHandler
        >>> h = FeedHandler([("books", "X")], book_factory=lambda i: None, clock=FakeClock(),
        ...                 resync="rest")
        >>> h.fetched(("books", "X"), 99, RestError("u", 500, None, "x"))   # not asked: ignored
        >>> h.counts["rest_requests"], len(h.ready)
        (0, 0)
        """
        st = self.streams.get(key)
        if st is None or st.rest_phase != "fetch" or st.rest_ticket != ticket:
            return
        cfg = self.cfg
        if isinstance(result, Exception):
            st.rest_attempt += 1
            delay = backoff_delay(st.rest_attempt - 1, cfg.rest_retry_base, cfg.rest_retry_max,
                                  self._rand)
            self._event("rest_error", None, st.channel, st.inst, detail=str(result),
                        status=getattr(result, "status", None),
                        code=getattr(result, "code", None), attempt=st.rest_attempt,
                        retry_in_s=round(delay, 3))
            st.rest_phase, st.rest_at = "pause", self._now() + delay
            return
        if st.mode != REST:
            st.rest_phase = None
            return
        st.rest_attempt += 1
        rb = result
        self._event("bootstrap", None, st.channel, st.inst,
                    detail="REST order-book snapshot received", seq_id=rb.seq_id,
                    ts=rb.ts, bids=len(rb.msg.bids), asks=len(rb.msg.asks),
                    attempt=st.rest_attempt, held=len(st.held))
        st.rest_snap = rb
        st.rest_phase, st.rest_at = "splice", self._now() + cfg.splice_wait
        self._try_splice(st)

    def _rest_timer(self, st: Stream, now: float) -> None:
        """``rest_at`` passed: the pause is over (fetch), or no update spliced onto the
        snapshot in time (fetch again)."""
        if st.rest_phase == "pause":
            self._rest_fetch(st)
            return
        if st.mode == REST and st.rest_snap is not None:
            self._event("bootstrap_retry", None, st.channel, st.inst,
                        detail=f"no update spliced onto REST seqId {st.rest_snap.seq_id} "
                               f"within {self.cfg.splice_wait:g} s: fetching again")
            st.rest_snap = None
        self._rest_woken(st)

    def _rest_woken(self, st: Stream) -> None:
        """The snapshot waiting to splice was dropped (stale, overflow, disconnect) or timed
        out: fetch again after a short pause."""
        if st.rest_phase != "splice":
            return  # a fetch or a pause is under way: it goes on
        if st.mode != REST:
            st.rest_phase = None
        elif st.rest_snap is None:
            cfg = self.cfg
            st.rest_phase = "pause"
            st.rest_at = self._now() + min(cfg.rest_retry_base, cfg.splice_wait)
        else:
            st.rest_at = self._now() + self.cfg.splice_wait

    def _try_splice(self, st: Stream) -> None:
        rb = st.rest_snap
        held = st.held
        res = find_splice(rb.seq_id, rb.ts, [(h.msg.prev_seq_id, h.msg.seq_id, h.msg.ts)
                                             for h in held], st.base_ts)
        if res.outcome == WAIT:
            return
        if res.outcome == STALE:
            self._event("bootstrap_retry", None, st.channel, st.inst, detail=res.detail,
                        seq_id=rb.seq_id)
            st.rest_snap = None
            self._rest_woken(st)
            return
        assert res.outcome == SPLICE
        stale = self._stale(st, self._release(st, res.index))
        first = held[0]
        st.chain.apply(rb.msg, self._arrival)
        start_chain_at(st.chain, first.msg.prev_seq_id)
        a = self._emit_book(st, rb.recv_ns, REST_CONN, rb.body, rb.msg, 0).arrival
        st.mode = LIVE
        st.rest_snap = None
        self._event("synced" if st.why == "subscribe" else "resync_done", None, st.channel,
                    st.inst, detail=f"REST snapshot spliced ({st.why})"
                           + (f"; {res.detail}" if res.detail else ""),
                    how="rest", why=st.why, seq_id=rb.seq_id, rest_ts=rb.ts, arrival=a,
                    splice_prev_seq_id=first.msg.prev_seq_id, splice_seq_id=first.msg.seq_id,
                    stale_arrivals=stale, applied=len(held),
                    duration_s=round(self._now() - st.t0, 3))
        st.why = "resync"
        self._rest_stop(st)
        while held and st.mode == LIVE:
            h = held.popleft()
            self._accept(st, h.conn, h.msg, h.payload, h.recv_ns, h.parse_ns)
        self._drain_pending(st)
