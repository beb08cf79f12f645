"""Turn a :class:`~simlab.emulator.source.MarketSource` into OKX channel messages.

Pure and deterministic: no network, no wall clock. :meth:`Publisher.advance` moves simulated
time forward and returns the pushes of every *active* ``(channel, instId)`` stream, in the
order OKX would send them, as ready-to-send frames (bytes, written by
:mod:`simlab.okx.encode`, byte for byte as OKX does). The server fans each frame out to the
connections subscribed to its stream, so every connection sees the same bytes and seqIds.

Channels (cadence in simulated time; pushes fall on multiples of the cadence):

=================  =====  ========  ====================================================
channel            depth  cadence   messages
=================  =====  ========  ====================================================
``bbo-tbt``        1      10 ms     full top 1 when it changed (``seqId``, no action)
``books-l2-tbt``   400    10 ms     snapshot to a new subscriber, then updates
``books50-l2-tbt`` 50     10 ms     snapshot to a new subscriber, then updates
``books``          400    100 ms    snapshot to a new subscriber, then updates
``books5``         5      100 ms    full top 5 when it changed (``seqId``, no action)
``trades``         -      at once   one push per print (OKX aggregates per taker order)
=================  =====  ========  ====================================================

Within one push time and instrument the order is OKX's: bbo-tbt, books-l2-tbt,
books50-l2-tbt, books, books5; a trade is pushed at its own time, so before the book push
that shows its effect.

Sequence numbers: each instrument has one seqId counter, advanced by every market event
(so steps between published seqIds are arbitrary, as on OKX). A push carries the counter's
value; an update's ``prevSeqId`` is the seqId of the previous push of the same stream. A
stream with no change for ``heartbeat_ms`` (OKX: about 60 s) sends an empty update with
``seqId == prevSeqId`` (``books5``/``bbo-tbt`` repeat their last snapshot). :meth:`reset`
(a maintenance reset) moves the counter far down: every incremental stream of the
instrument then pushes an update with ``seqId < prevSeqId`` at its next push time, and the
chain continues from there.

Updates carry only the levels whose (size, order count) changed, size ``"0"`` deleting one;
levels are best first. The depth window (400 or 50) is kept exact: a level that leaves
the window (pushed out by a better one) is sent as a deletion, and a level that enters it
(after a deletion inside) is sent with its size, so the subscriber's book always equals the
exchange's top N (see ``docs/emulator.md``). The checksum (top 25, :meth:`L2Book.checksum`)
is computed from the published book, or is always 0 (``checksum=False``, OKX since June
2026).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterable
from typing import NamedTuple

import orjson

from simlab.book import L2Book
from simlab.okx import Trade
from simlab.okx.encode import encode_book, encode_trades
from simlab.okx.messages import (
    BOOK_DEPTH,
    FULL_BOOK_CHANNELS,
    INCREMENTAL_BOOK_CHANNELS,
    TRADE_CHANNELS,
)

from .source import Instrument, LevelChange, MarketSource, Print

#: Push cadence (ms) of each book channel, in OKX's fixed push order for the book channels
#: of one instrument within one push time. The channels, their kinds and depths are
#: simlab.okx's (messages.BOOK_DEPTH ...); the emulator serves every live one.
PUSH_MS = {"bbo-tbt": 10, "books-l2-tbt": 10, "books50-l2-tbt": 10, "books": 100, "books5": 100}
PUSH_ORDER = tuple(PUSH_MS)
#: Incremental channels: depth and push cadence (ms).
INCREMENTAL = {c: (BOOK_DEPTH[c], PUSH_MS[c]) for c in PUSH_ORDER
               if c in INCREMENTAL_BOOK_CHANNELS}
#: Full-book channels: depth and push cadence (ms).
FULL = {c: (BOOK_DEPTH[c], PUSH_MS[c]) for c in PUSH_ORDER if c in FULL_BOOK_CHANNELS}
(TRADES,) = TRADE_CHANNELS
BOOK_CHANNELS = tuple(INCREMENTAL) + tuple(FULL)
CHANNELS = (*BOOK_CHANNELS, TRADES)
_RANK = {c: i for i, c in enumerate(PUSH_ORDER)}
#: OKX: an empty update after about 60 s without change.
HEARTBEAT_MS = 60_000
_TICK = 10  # every cadence is a multiple of this

_orjson_dumps = orjson.dumps


def _tight(frame: bytes) -> bytes:
    """``frame`` in a block of its own size. orjson returns every result in a 4 KB block,
    so a queue of 300-byte updates held 14 times its size (1.4 GB for a slow client)."""
    return bytes(memoryview(frame))


def _dumps(obj: object) -> bytes:
    return bytes(memoryview(_orjson_dumps(obj)))


class Push(NamedTuple):
    """One frame for the subscribers of ``(channel, inst_id)``.

    ``kind``: ``snapshot``, ``update`` (non-empty incremental), ``heartbeat`` (empty update,
    seqId == prevSeqId), ``reset`` (seqId < prevSeqId), ``full`` (books5/bbo-tbt), ``trade``
    or ``other`` (a recorded frame of another channel). ``checksum`` is the value written.
    ``ts_ms`` is simulated time; the frame's ``ts`` is ``ts_ms`` plus the publisher's
    :attr:`Publisher.ts_offset_ms`.
    (A NamedTuple: the publisher makes one per message, and it is several times cheaper to
    build than a frozen dataclass.)
    """

    ts_ms: int
    channel: str
    inst_id: str
    kind: str
    frame: bytes
    seq_id: int | None = None
    prev_seq_id: int | None = None
    checksum: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.channel, self.inst_id


class _Engine:
    """One instrument's full book as the market made it, and its seqId counter.

    Per side: ``levels`` price -> (size, count) and ``keys``, the sorted ``(sort key,
    price)`` of every level best first (the sort key is negated for bids).
    """

    __slots__ = ("inst", "keys", "levels", "off", "seq", "streams")

    def __init__(self, inst: Instrument, bids: list[list[str]], asks: list[list[str]],
                 seq: int) -> None:
        self.inst = inst
        self.levels: tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]] = ({}, {})
        self.keys: tuple[list[tuple[float, str]], list[tuple[float, str]]] = ([], [])
        for ask, levels in ((False, bids), (True, asks)):
            side = self.levels[ask]
            for lv in levels:
                if not _is_zero(lv[1]):
                    side[lv[0]] = (lv[1], str(lv[-1]))
            self.keys[ask].extend(sorted((_key(px, ask), px) for px in side))
        self.seq = seq
        self.streams: list[_Stream] = []
        self.off = 0  # exchange ts = simulated ms + off (Publisher.ts_offset_ms)

    def apply(self, ev: LevelChange) -> None:
        ask = ev.side == "ask"
        if not ask and ev.side != "bid":
            raise ValueError(f"LevelChange side must be 'bid' or 'ask', got {ev.side!r}")
        side, keys = self.levels[ask], self.keys[ask]
        px = ev.price
        size = ev.size
        k = float(px) if ask else -float(px)
        if size == "0" or _is_zero(size):
            if side.pop(px, None) is not None:
                del keys[bisect.bisect_left(keys, (k, px))]
        else:
            if px not in side:
                bisect.insort(keys, (k, px))
            side[px] = (size, str(ev.count))
        self.seq += 1
        for st in self.streams:
            st.touch(ask, px, k)

    def top(self, ask: bool, n: int | None = None) -> list[list[str]]:
        """The best ``n`` levels of one side as wire levels."""
        side = self.levels[ask]
        return [[px, *_wire(side[px])] for _, px in self.keys[ask][:n]]


def _is_zero(size: str) -> bool:
    return size == "0" or not size.strip("0.")


def _key(px: str, ask: bool) -> float:
    # Prices are on a tick grid with far fewer than 15 significant digits: float order is
    # exact for them and much cheaper than Decimal. Bids sort best (highest) first.
    return float(px) if ask else -float(px)


class _Stream:
    """Base of one (channel, instrument) stream."""

    channel: str
    period: int
    depth: int

    def __init__(self, channel: str, eng: _Engine, ts: int) -> None:
        self.channel, self.eng = channel, eng
        self.inst_id = eng.inst.inst_id
        self.last_seq = eng.seq
        self.last_ts = ts  # time of the last push (or of activation): heartbeat clock
        self.dirty = False
        self.force = False

    def touch(self, ask: bool, px: str, k: float) -> None:
        self.dirty = True

    hb_ms = HEARTBEAT_MS


class _BookStream(_Stream):
    """An incremental channel: the published top-``depth`` book and its diffs."""

    def __init__(self, channel: str, eng: _Engine, ts: int, checksum: bool) -> None:
        super().__init__(channel, eng, ts)
        self.depth, self.period = INCREMENTAL[channel]
        self.with_checksum = checksum
        # The published book, per side as in _Engine: always the engine's top `depth` as of
        # the last push, so `keys` is a prefix of the engine's keys after every push.
        self.pub: tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]] = ({}, {})
        self.keys: tuple[list[tuple[float, str]], list[tuple[float, str]]] = ([], [])
        for ask in (False, True):
            keys = self.keys[ask]
            keys.extend(eng.keys[ask][: self.depth])
            side = eng.levels[ask]
            self.pub[ask].update((px, side[px]) for _, px in keys)
        # Prices changed since the last push, per side, with their sort keys.
        self.touched: tuple[dict[str, float], dict[str, float]] = ({}, {})
        self.book = L2Book(self.inst_id)
        self.book.apply_snapshot(*self.levels())
        self.checksum = self.book.checksum() if checksum else 0

    def touch(self, ask: bool, px: str, k: float) -> None:
        # A change beyond the published worst level of a full window cannot change the
        # window (levels move in only by the refill, which reads the engine's order).
        keys = self.keys[ask]
        if len(keys) < self.depth or k <= keys[-1][0]:
            self.dirty = True
            self.touched[ask][px] = k

    def levels(self, n: int | None = None) -> tuple[list[list[str]], list[list[str]]]:
        """The published book as wire levels, best first."""
        out = []
        for ask in (False, True):
            pub = self.pub[ask]
            out.append([[px, *_wire(pub[px])] for _, px in self.keys[ask][:n]])
        return out[0], out[1]

    def snapshot(self) -> Push:
        bids, asks = self.levels()
        frame = _tight(encode_book(self.channel, self.inst_id, "snapshot", bids, asks,
                                   self.last_ts + self.eng.off, seq_id=self.last_seq,
                                   prev_seq_id=-1, checksum=self.checksum))
        return Push(self.last_ts, self.channel, self.inst_id, "snapshot", frame,
                    self.last_seq, -1, self.checksum)

    def _place(self, ask: bool, px: str, k: float, before: dict) -> None:
        """Bring the published level at ``px`` in line with the engine, keeping the window."""
        pub, keys = self.pub[ask], self.keys[ask]
        new = self.eng.levels[ask].get(px)
        old = pub.get(px)
        if old is not None:
            if px not in before:
                before[px] = (k, old)
            if new is None:
                del pub[px]
                del keys[bisect.bisect_left(keys, (k, px))]
            else:
                pub[px] = new
            return
        if new is None or not keys or k > keys[-1][0]:
            # Gone; or beyond the published worst level: outside the window, or (window
            # not full) the refill takes it in engine order, after any levels in between.
            return
        if px not in before:
            before[px] = (k, None)
        pub[px] = new
        bisect.insort(keys, (k, px))
        if len(keys) > self.depth:
            kout, out = keys.pop()  # pushed out of the window: the subscriber must drop it
            if out not in before:
                before[out] = (kout, pub[out])
            del pub[out]

    def _refill(self, ask: bool, before: dict) -> None:
        """After deletions inside the window, the engine's next levels move in."""
        pub, keys = self.pub[ask], self.keys[ask]
        missing = self.depth - len(keys)
        eng_keys = self.eng.keys[ask]
        if missing <= 0 or len(eng_keys) <= len(keys):
            return
        # `keys` is a prefix of the engine's order: the newcomers follow its worst level.
        pos = bisect.bisect_right(eng_keys, keys[-1]) if keys else 0
        side = self.eng.levels[ask]
        for item in eng_keys[pos: pos + missing]:
            px = item[1]
            if px not in before:
                before[px] = (item[0], None)
            pub[px] = side[px]
            keys.append(item)

    def diff(self) -> tuple[list[list[str]], list[list[str]]]:
        """Apply the touched prices to the published book; the changed levels, best first."""
        out: list[list[list[str]]] = [[], []]
        for ask in (False, True):
            touched = self.touched[ask]
            if not touched:
                continue  # every change of a side that can reach the window touches it
            before: dict[str, tuple[float, tuple[str, str] | None]] = {}
            place = self._place
            for px, k in touched.items():
                place(ask, px, k, before)
            touched.clear()
            self._refill(ask, before)
            pub = self.pub[ask]
            changed = []
            for px, (k, old) in before.items():
                new = pub.get(px)
                if new != old:
                    changed.append((k, [px, "0", "0", "0"] if new is None
                                    else [px, new[0], "0", new[1]]))
            if len(changed) > 1:
                changed.sort(key=_first)
            out[ask] = [lv for _, lv in changed]
        return out[0], out[1]

    def push(self, t: int) -> Push | None:
        eng = self.eng
        bids, asks = self.diff() if self.dirty else ([], [])
        self.dirty = False
        forced, self.force = self.force, False
        if bids or asks:
            if self.with_checksum:
                self.book.apply_update(bids, asks)
                self.checksum = self.book.checksum()
            kind = "reset" if forced else "update"
            seq = eng.seq
        elif forced:
            kind, seq = "reset", eng.seq
        elif t - self.last_ts >= self.hb_ms:
            kind, seq = "heartbeat", self.last_seq
        else:
            return None
        prev = self.last_seq
        frame = _encode_update(self.channel, self.inst_id, bids, asks, t + eng.off,
                               self.checksum, prev, seq)
        self.last_seq, self.last_ts = seq, t
        return Push(t, self.channel, self.inst_id, kind, frame, seq, prev, self.checksum)


class _FullStream(_Stream):
    """``books5`` / ``bbo-tbt``: the whole top N, pushed when it changed."""

    def __init__(self, channel: str, eng: _Engine, ts: int) -> None:
        super().__init__(channel, eng, ts)
        self.depth, self.period = FULL[channel]
        self.top = [eng.top(False, self.depth), eng.top(True, self.depth)]
        self.last = self._push(ts, eng.seq)
        self._worst = [self._worst_key(False), self._worst_key(True)]
        self._side_dirty = [False, False]

    def _worst_key(self, ask: bool) -> float:
        """The key of the side's N-th best level (inf while the side is shorter)."""
        keys = self.eng.keys[ask]
        return keys[self.depth - 1][0] if len(keys) >= self.depth else float("inf")

    def touch(self, ask: bool, px: str, k: float) -> None:
        if k <= self._worst[ask]:
            self.dirty = True
            self._side_dirty[ask] = True

    def _push(self, t: int, seq: int) -> Push:
        frame = _encode_full(self.channel, self.inst_id, self.top[0], self.top[1],
                             t + self.eng.off, seq)
        return Push(t, self.channel, self.inst_id, "full", frame, seq)

    def snapshot(self) -> Push:
        return self.last

    def push(self, t: int) -> Push | None:
        if self.dirty:
            self.dirty = False
            changed = False
            for ask in (False, True):
                if self._side_dirty[ask]:
                    self._side_dirty[ask] = False
                    top = self.eng.top(ask, self.depth)
                    self._worst[ask] = self._worst_key(ask)
                    if top != self.top[ask]:
                        self.top[ask] = top
                        changed = True
            if changed:
                self.last = self._push(t, self.eng.seq)
                self.last_ts = t
                return self.last
        if t - self.last_ts >= self.hb_ms:
            # OKX repeats the latest snapshot of a full-book channel that stays unchanged.
            self.last = self._push(t, self.last.seq_id)
            self.last_ts = t
            return self.last
        return None


def _wire(level: tuple[str, str] | None) -> list[str]:
    return ["0", "0", "0"] if level is None else [level[0], "0", level[1]]


def _first(x: tuple) -> float:
    return x[0]


def _encode_full(channel: str, inst: str, bids: list, asks: list, ts: int, seq: int) -> bytes:
    """:func:`simlab.okx.encode.encode_book` bytes for books5/bbo-tbt (canonical levels)."""
    return _dumps({"arg": {"channel": channel, "instId": inst},
                   "data": [{"asks": asks, "bids": bids, "instId": inst, "ts": str(ts),
                             "seqId": seq}]})


def _encode_update(channel: str, inst: str, bids: list, asks: list, ts: int, checksum: int,
                   prev: int, seq: int) -> bytes:
    """Same bytes as :func:`simlab.okx.encode.encode_book` for an update whose levels are
    already canonical wire levels (the publisher writes them so); several times faster."""
    return _dumps({"arg": {"channel": channel, "instId": inst}, "action": "update",
                   "data": [{"asks": asks, "bids": bids, "ts": str(ts), "checksum": checksum,
                             "prevSeqId": prev, "seqId": seq}]})


class Publisher:
    """OKX channel messages from a market, in simulated time (see the module docstring).

    ``checksum=False`` writes ``checksum: 0`` on every book push (OKX since June 2026).
    ``seed`` picks each instrument's initial seqId. Streams are computed only once
    :meth:`activate`-d (the server activates a stream at its first subscription) and stay
    active; ``streams`` activates some from the start.

    >>> from simlab.emulator.testing import ScriptedMarket
    >>> m = ScriptedMarket({"BTC-USDT": ([["100", "1", "1"]], [["101", "2", "1"]])})
    >>> p = Publisher(m, streams=[("books", "BTC-USDT")])
    >>> m.add(LevelChange(m.start_ms + 30, "BTC-USDT", "ask", "101", "0.5", 1))
    >>> [(x.kind, x.ts_ms - m.start_ms) for x in p.advance(m.start_ms + 250)]
    [('update', 100)]
    """

    def __init__(self, source: MarketSource, *, checksum: bool = True, seed: int = 0,
                 heartbeat_ms: int = HEARTBEAT_MS,
                 streams: Iterable[tuple[str, str]] = ()) -> None:
        if heartbeat_ms <= 0:
            raise ValueError(f"heartbeat_ms must be > 0, got {heartbeat_ms}")
        self.source = source
        self.checksum = checksum
        self.heartbeat_ms = heartbeat_ms
        self.start_ms = int(source.start_ms)
        self.now_ms = self.start_ms
        self._t = self.start_ms - self.start_ms % _TICK  # last push time handled
        self._instruments = {i.inst_id: i for i in source.instruments()}
        self._engines: dict[str, _Engine] = {}
        for inst_id, ins in self._instruments.items():
            bids, asks = source.initial_book(inst_id)
            seq = random.Random(f"{seed}:{inst_id}:seq").randrange(10**9, 10**10)
            self._engines[inst_id] = _Engine(ins, bids, asks, seq)
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._trades: set[str] = set()
        self._pending: list = []
        self._pending_i = 0
        self._stall_until: int | None = None
        self._held: list[Push] = []
        self._ts_offset = 0
        for ch, inst in streams:
            self.activate(ch, inst)

    @property
    def ts_offset_ms(self) -> int:
        """What the frames' ``ts`` add to simulated time (0: ``ts`` is the market's time).

        The server sets it to serve the market on wall time (or from a chosen start);
        :attr:`Push.ts_ms` stays simulated time.

        >>> from simlab.emulator.testing import ScriptedMarket
        >>> p = Publisher(ScriptedMarket({"BTC-USDT": ([["100", "1", "1"]], [["101", "1", "1"]])}))
        >>> p.ts_offset_ms = 5_000
        >>> b'"ts":"%d"' % (p.start_ms + 5_000) in p.snapshot("books", "BTC-USDT").frame
        True
        """
        return self._ts_offset

    @ts_offset_ms.setter
    def ts_offset_ms(self, value: int) -> None:
        self._ts_offset = int(value)
        for eng in self._engines.values():
            eng.off = self._ts_offset

    # -- queries ------------------------------------------------------------------------------
    def instruments(self) -> list[Instrument]:
        return list(self._instruments.values())

    def has_instrument(self, inst_id: str) -> bool:
        return inst_id in self._instruments

    def channels(self) -> tuple[str, ...]:
        return CHANNELS

    def is_active(self, channel: str, inst_id: str) -> bool:
        if channel == TRADES:
            return inst_id in self._trades
        return (channel, inst_id) in self._streams

    def seq_id(self, inst_id: str) -> int:
        """The instrument's current seqId counter."""
        return self._engines[inst_id].seq

    # -- streams ------------------------------------------------------------------------------
    def activate(self, channel: str, inst_id: str) -> None:
        """Start computing the pushes of ``(channel, inst_id)`` (idempotent)."""
        if inst_id not in self._engines:
            raise KeyError(f"unknown instrument {inst_id!r}; expected one of "
                           f"{sorted(self._engines)}")
        if channel == TRADES:
            self._trades.add(inst_id)
            return
        key = (channel, inst_id)
        if key in self._streams:
            return
        eng = self._engines[inst_id]
        if channel in INCREMENTAL:
            st: _Stream = _BookStream(channel, eng, self.now_ms, self.checksum)
        elif channel in FULL:
            st = _FullStream(channel, eng, self.now_ms)
        else:
            raise KeyError(f"unknown channel {channel!r}; expected one of {list(CHANNELS)}")
        st.hb_ms = self.heartbeat_ms
        self._streams[key] = st
        eng.streams.append(st)
        eng.streams.sort(key=lambda s: _RANK[s.channel])

    def snapshot(self, channel: str, inst_id: str) -> Push | None:
        """What a new subscriber gets first: the stream's current snapshot (activating it).

        For incremental channels a ``snapshot`` push (prevSeqId -1, the stream's last seqId,
        so the next shared update chains onto it); for books5/bbo-tbt the last full push.
        None for ``trades``.
        """
        self.activate(channel, inst_id)
        st = self._streams.get((channel, inst_id))
        return None if st is None else st.snapshot()

    def rest_book(self, inst_id: str, sz: int) -> tuple[list, list, int, int]:
        """``(bids, asks, ts_ms, seqId)`` for ``GET /api/v5/market/books``.

        The published ``books`` state when that stream is active (else ``books-l2-tbt``),
        so a client splicing a REST snapshot into the stream by seqId gets a consistent book;
        otherwise the exchange's current book and seqId.
        """
        for ch in ("books", "books-l2-tbt"):
            st = self._streams.get((ch, inst_id))
            if isinstance(st, _BookStream):
                bids, asks = st.levels(sz)
                return bids, asks, st.last_ts + self._ts_offset, st.last_seq
        eng = self._engines[inst_id]
        return eng.top(False, sz), eng.top(True, sz), self.now_ms + self._ts_offset, eng.seq

    # -- exchange events ----------------------------------------------------------------------
    def reset(self, inst_id: str) -> int:
        """Maintenance reset of ``inst_id``'s seqId counter; returns the new value.

        Every incremental stream of the instrument pushes an update with ``seqId`` below its
        ``prevSeqId`` at its next push time (even if the book did not change).
        """
        eng = self._engines[inst_id]
        low = min([eng.seq] + [s.last_seq for s in eng.streams])
        eng.seq = max(0, low // 1000)
        if eng.seq >= low:
            raise ValueError(f"{inst_id}: seqId {low} is too small to reset below it")
        for st in eng.streams:
            if isinstance(st, _BookStream):
                st.force = True
        return eng.seq

    def stall(self, until_ms: int) -> None:
        """No pushes before ``until_ms`` (simulated); the market moves on, and the first
        pushes after the stall carry everything that changed (trades held until then)."""
        self._stall_until = until_ms

    # -- time -------------------------------------------------------------------------------
    def advance(self, until_ms: int) -> list[Push]:
        """Move simulated time to ``until_ms``; the pushes due by then, in send order."""
        if until_ms < self.now_ms:
            return []
        pend = self._pending
        if self._pending_i >= len(pend):
            pend = self._pending = self.source.advance(until_ms)
            self._pending_i = 0
        else:
            pend.extend(self.source.advance(until_ms))
        out: list[Push] = []
        i = self._pending_i
        engines = self._engines
        while True:
            nxt = self._next_push(i)
            limit = min(nxt, until_ms)
            while i < len(pend) and pend[i].ts_ms <= limit:
                ev = pend[i]
                i += 1
                if type(ev) is LevelChange:
                    engines[ev.inst_id].apply(ev)
                elif type(ev) is Print:
                    self._print(ev, out)
                else:
                    raise TypeError(f"market event must be LevelChange or Print, got {ev!r}")
            if nxt > until_ms:
                break
            self._t = nxt
            self._push_at(nxt, out)
        self._pending_i = i
        if i > 4096:
            del pend[:i]
            self._pending_i = 0
        self.now_ms = until_ms
        return out

    def _next_push(self, i: int) -> int:
        t = self._t
        best = float("inf")
        if i < len(self._pending):
            best = max((self._pending[i].ts_ms + _TICK - 1) // _TICK * _TICK, t + _TICK)
        for st in self._streams.values():
            p = st.period
            if st.dirty or st.force:
                d = (t // p + 1) * p
            else:  # the heartbeat
                d = max((t // p + 1) * p, -(-(st.last_ts + st.hb_ms) // p) * p)
            if d < best:
                best = d
        if self._stall_until is not None:
            best = max(best, -(-self._stall_until // _TICK) * _TICK)
        return best  # type: ignore[return-value]

    def _print(self, ev: Print, out: list[Push]) -> None:
        eng = self._engines[ev.inst_id]
        eng.seq += 1
        if ev.inst_id not in self._trades:
            return
        trade = Trade(ev.trade_id, ev.price, ev.size, ev.side, ev.ts_ms + eng.off, count=ev.count,
                      seq_id=eng.seq, source="0")
        push = Push(ev.ts_ms, TRADES, ev.inst_id, "trade",
                    _tight(encode_trades(ev.inst_id, [trade])), eng.seq)
        if self._stall_until is not None:
            self._held.append(push)
        else:
            out.append(push)

    def _push_at(self, t: int, out: list[Push]) -> None:
        if self._stall_until is not None:
            if t < self._stall_until:
                return
            self._stall_until = None
            out.extend(self._held)
            self._held.clear()
        for eng in self._engines.values():
            for st in eng.streams:
                if t % st.period == 0 and (st.dirty or st.force
                                           or t - st.last_ts >= st.hb_ms):
                    p = st.push(t)
                    if p is not None:
                        out.append(p)
