"""The columnar replay path: one book stream of a recording as message arrays.

The event engine (:mod:`simlab.feed.replay`) parses every raw frame. For whole-night cost
runs that is the slow part, so the cost pipeline can instead read the normalised ``levels``
table (already parsed) and rebuild the book in compiled code
(:func:`simlab.book.batch.rebuild_books`). That needs to know which messages the event engine
would have applied: the recording's integrity record says it. The writer checks every book
stream as it writes (sequence chain, checksum, levels the book refuses) and lists each break
in the manifest with its arrival; a message gives a valid book when a snapshot came at or
after the last break. Recordings without that record (written with ``check_books=False``,
or whose event list overflowed) fall back to one pass of the event decoder over the raw
frames, which is exact and slower.

The tests require this path to give the same books, message for message, as the event
engine, including recordings with injected gaps, checksum failures and resyncs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from simlab.okx.frames import RawFrame
from simlab.okx.normalize import MALFORMED_CHANNEL
from simlab.store.reader import Recording
from simlab.store.schema import LEVELS, RAW, SCHEMAS, TRADES
from simlab.store.verify import stale_ranges

from .decode import FrameDecoder
from .replay import ReplayError, check_range, check_selection, refused_pushes, selected_frames

log = logging.getLogger(__name__)

#: The columns of each dataset a pricing run reads: the union of what its stages ask (the
#: range checks, the seek point, the calibration, the columnar rebuild, the trade flow).
SCAN_COLUMNS = {LEVELS: ("recv_ns", "ts_ms", "snapshot", "prev_seq_id", "side", "price",
                         "size"),
                TRADES: ("recv_ns", "ts_ms", "side", "price", "size")}


class Scan(Recording):
    """A :class:`Recording` read once per pricing run: the first ask of a stream's
    ``levels`` or ``trades`` rows reads that stream's :data:`SCAN_COLUMNS`, and every later
    ask (other columns of them, several streams at once through :meth:`table`) is served
    from memory; so is the malformed partition of the raw frames. The raw frames of the
    streams are still streamed by :meth:`iter_raw` (bounded memory), and nothing else needs
    them: the receive time of each book message comes with its levels.

    Made by :func:`scan`; it lives as long as the run (it holds the tables it read).

    >>> rec = scan(Recording("rec"))                                   # doctest: +SKIP
    >>> rec.stream_table("levels", channel="books", inst="BTC-USDT", columns=["price"])
    ... # doctest: +SKIP
    """

    def __init__(self, rec: Recording) -> None:
        self.__dict__.update(rec.__dict__)
        self._tables: dict[tuple[str, str, str], pa.Table] = {}
        self._malformed: list[RawFrame] | None = None
        self._memo: dict[Any, Any] = {}

    def _stream(self, dataset: str, channel: str, inst: str) -> pa.Table:
        key = (dataset, channel, inst)
        t = self._tables.get(key)
        if t is None:
            t = self._tables[key] = Recording.stream_table(
                self, dataset, channel=channel, inst=inst, columns=list(SCAN_COLUMNS[dataset]),
                read_dictionary=["side"] if dataset == LEVELS else None)
        return t

    def _served(self, dataset: str, columns: Collection[str] | None) -> bool:
        return (dataset in SCAN_COLUMNS and columns is not None
                and set(columns) <= {"arrival", *SCAN_COLUMNS[dataset]})

    def stream_table(self, dataset: str, *, channel: str, inst: str, columns: list[str],
                     read_dictionary: list[str] | None = None) -> pa.Table:
        if not self._served(dataset, columns):
            return super().stream_table(dataset, channel=channel, inst=inst, columns=columns,
                                        read_dictionary=read_dictionary)
        t = self._stream(dataset, channel, inst)
        return _as_read(t.select(["arrival", *(c for c in columns if c != "arrival")]),
                        read_dictionary or ())

    def table(self, dataset: str, *, channel: str | Collection[str] | None = None,
              inst: str | Collection[str] | None = None,
              columns: list[str] | None = None) -> pa.Table:
        entries = self.files(dataset, channel=channel, inst=inst) if self._served(
            dataset, columns) else []
        if not entries:
            return super().table(dataset, channel=channel, inst=inst, columns=columns)
        cols = ["arrival", *(c for c in columns if c != "arrival")]
        schema = pa.schema([SCHEMAS[dataset].field(c) for c in cols]
                           + [pa.field("channel", pa.string()), pa.field("inst", pa.string())])
        parts = []
        for ch, ins in dict.fromkeys((e.get("channel"), e.get("inst")) for e in entries):
            t = _as_read(self._stream(dataset, ch, ins).select(cols), ())
            n = t.num_rows
            parts.append(t.append_column("channel", pa.array([ch] * n, pa.string()))
                         .append_column("inst", pa.array([ins] * n, pa.string()))
                         .cast(schema))
        t = pa.concat_tables(parts)
        # as Recording.table: by arrival, stable (a frame's rows are one stream's, in order)
        return t.take(pc.sort_indices(t, [("arrival", "ascending")]))

    def iter_raw(self, *, channel: str | Collection[str] | None = None,
                 inst: str | Collection[str] | None = None,
                 from_arrival: int = 0) -> Iterator[RawFrame]:
        if channel != MALFORMED_CHANNEL or inst is not None:
            return super().iter_raw(channel=channel, inst=inst, from_arrival=from_arrival)
        if self._malformed is None:
            # asked by the refused-push count and by the replay's merge: read it once
            self._malformed = list(super().iter_raw(channel=MALFORMED_CHANNEL))
        return (f for f in self._malformed if f.arrival >= from_arrival)

    def memo(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()`` the first time ``key`` is asked in this run, the same value after."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]


def scan(rec: Recording) -> Scan:
    """``rec`` as a :class:`Scan` (itself when it is one already).

    >>> scan(Recording("rec")).path                                    # doctest: +SKIP
    'rec'
    """
    return rec if isinstance(rec, Scan) else Scan(rec)


def _as_read(t: pa.Table, dictionary: Collection[str]) -> pa.Table:
    """``t`` with its dictionary columns decoded unless asked as dictionaries, as a
    reader's table would be."""
    for i, name in enumerate(t.column_names):
        if pa.types.is_dictionary(t.schema.field(i).type) and name not in dictionary:
            t = t.set_column(i, name, t.column(i).cast(t.schema.field(i).type.value_type))
    return t


#: Book integrity breaks the writer's check records (a message with no usable book after it).
BREAK_KINDS = ("gap", "checksum_failed", "rejected")
SNAPSHOT, SKIP = 1, 2  # message flags, as simlab.book.batch expects them


@dataclass
class BookMessages:
    """The messages of one book stream, as arrays (``n`` messages, ``r`` level rows).

    ``valid[i]``: the book is known after message ``i``; ``emit[i]``: message ``i`` lies in
    the requested time range (earlier ones only rebuild the book); ``flags`` are
    :data:`SNAPSHOT` / :data:`SKIP` per message; ``msg_start`` (n + 1) are row offsets into
    ``side`` (0 bid, 1 ask, 2 no level), ``price`` and ``size``. ``validity`` says how
    ``valid`` was obtained (``manifest`` or ``raw``).
    """

    channel: str
    inst: str
    arrival: np.ndarray
    recv_ns: np.ndarray
    ts_ms: np.ndarray
    snapshot: np.ndarray
    valid: np.ndarray
    emit: np.ndarray
    flags: np.ndarray
    msg_start: np.ndarray
    side: np.ndarray
    price: np.ndarray
    size: np.ndarray
    validity: str

    def __len__(self) -> int:
        return len(self.arrival)


def has_integrity_record(rec: Recording) -> bool:
    """True when the writer checked the book streams and listed every break it found."""
    m = rec.manifest
    return bool(m.get("integrity")) and not m.get("events_dropped")


def break_arrivals(rec: Recording, channel: str, inst: str) -> np.ndarray:
    """Sorted arrivals of the integrity breaks the writer found in one book stream.

    >>> break_arrivals(Recording("rec"), "books", "BTC-USDT")    # doctest: +SKIP
    array([], dtype=int64)
    """
    out = [e["arrival"] for e in rec.manifest.get("events", [])
           if e.get("kind") in BREAK_KINDS and "expected_prev" in e and "recv_ns" not in e
           and e.get("channel") == channel and e.get("inst") == inst
           and isinstance(e.get("arrival"), int)]
    return np.array(sorted(out), dtype=np.int64)


def validity_from_breaks(arrival: np.ndarray, snapshot: np.ndarray,
                         breaks: np.ndarray) -> np.ndarray:
    """Whether the book is known after each message: a snapshot at or before it and no
    break from that snapshot up to and including it.

    >>> validity_from_breaks(np.array([0, 1, 2, 3, 4, 5]),
    ...                      np.array([False, True, False, False, True, False]),
    ...                      np.array([3])).tolist()
    [False, True, True, False, True, True]
    """
    n = len(arrival)
    idx = np.arange(n)
    last_snap = np.maximum.accumulate(np.where(snapshot, idx, -1)) if n else idx
    has_snap = last_snap >= 0
    snap_arrival = np.where(has_snap, arrival[np.maximum(last_snap, 0)], 0)
    before_snap = np.searchsorted(breaks, snap_arrival, side="left")
    upto_here = np.searchsorted(breaks, arrival, side="right")
    return has_snap & (upto_here == before_snap)


def validity_from_raw(rec: Recording, channel: str, inst: str, arrival: np.ndarray,
                      verify_checksum: bool = True) -> np.ndarray:
    """Validity per message by decoding the stream's raw frames (exact, slower), its
    pushes kept as malformed included (a refused one invalidates the book); decoded once
    per :class:`Scan`."""
    def decode() -> dict[int, bool]:
        dec = FrameDecoder(channels=[channel], insts=[inst], wire_format=rec.wire_format,
                           verify_checksum=verify_checksum, stale=stale_ranges(rec.manifest))
        seen: dict[int, bool] = {}
        for f in selected_frames(rec, [channel], [inst]):
            for ev in dec.decode(f):
                if ev.kind == "book":
                    seen[ev.arrival] = ev.valid
        return seen

    key = ("validity", channel, inst, verify_checksum)
    seen = rec.memo(key, decode) if isinstance(rec, Scan) else decode()
    return np.array([seen.get(int(a), False) for a in arrival], dtype=bool)


def book_messages(rec: Recording, channel: str, inst: str, *, start: int | None = None,
                  end: int | None = None, validity: str = "auto") -> BookMessages:
    """Read one book stream's messages from the ``levels`` table.

    ``start``/``end`` (ns, receive time) select the messages to emit; messages from the
    latest snapshot at or before ``start`` are kept so the book is rebuilt at ``start``.
    ``validity``: ``auto`` (the manifest's integrity record when there is one, else raw),
    ``manifest`` or ``raw``.

    >>> m = book_messages(Recording("rec"), "books", "BTC-USDT")    # doctest: +SKIP
    >>> len(m), int(m.valid.sum()), m.validity                      # doctest: +SKIP
    (98, 98, 'manifest')
    """
    check_selection([rec], [channel], [inst])
    check_range([rec], start, end)
    if validity not in ("auto", "manifest", "raw"):
        raise ValueError(f"validity must be 'auto', 'manifest' or 'raw', got {validity!r}")
    # a Scan holds each message's receive time with its levels: no read of the raw frames
    held = isinstance(rec, Scan)
    t = rec.stream_table(LEVELS, channel=channel, inst=inst,
                         columns=["ts_ms", "snapshot", "prev_seq_id", "side", "price", "size",
                                  *(["recv_ns"] if held else [])],
                         read_dictionary=["side"])
    if t.num_rows == 0:
        raise ReplayError(f"{rec.path}: no book messages for {channel}:{inst}")
    first, per, side = _per_message(t, ("arrival", "ts_ms", "prev_seq_id", "snapshot",
                                        *(["recv_ns"] if held else [])))
    arrival, ts_ms, prev = per["arrival"], per["ts_ms"], per["prev_seq_id"]
    recv_ns = per["recv_ns"] if held else _receive_times(rec, channel, inst, arrival)
    # nulls (no seqIds) read as NaN, never equal to -1
    snapshot = per["snapshot"] | (prev == -1)
    refused = refused_pushes(rec, [channel], [inst]).get((channel, inst))
    if refused is not None:
        arrival, recv_ns, ts_ms, snapshot, first = _with_refused(
            refused, arrival, recv_ns, ts_ms, snapshot, first, t.num_rows)
    if validity == "raw" or (validity == "auto" and not has_integrity_record(rec)):
        if validity == "auto":
            log.info("%s: no integrity record in the manifest: checking %s:%s from raw "
                     "frames", rec.path, channel, inst)
        valid = validity_from_raw(rec, channel, inst, arrival)
        how = "raw"
    else:
        valid = validity_from_breaks(arrival, snapshot, break_arrivals(rec, channel, inst))
        how = "manifest"
    # side 2 (no level) only on heartbeat rows, which the kernel ignores
    price = t["price"].to_numpy()
    size = t["size"].to_numpy()
    msg_start = np.r_[first, t.num_rows].astype(np.int64)
    # time range: keep from the latest snapshot at or before start
    lo, hi = 0, len(arrival)
    emit = np.ones(len(arrival), dtype=bool)
    if end is not None:
        hi = int(np.searchsorted(recv_ns, end, side="right"))
    if start is not None:
        k = int(np.searchsorted(recv_ns, start, side="left"))
        snaps = np.flatnonzero(snapshot[:k + 1] if k < len(arrival) else snapshot)
        lo = int(snaps[-1]) if len(snaps) else 0
        emit[:k] = False
    sel = slice(lo, hi)
    r0, r1 = int(msg_start[lo]), int(msg_start[hi])
    flags = np.where(valid, np.where(snapshot, SNAPSHOT, 0), SKIP).astype(np.uint8)
    return BookMessages(channel, inst, arrival[sel], recv_ns[sel], ts_ms[sel], snapshot[sel],
                        valid[sel], emit[sel], flags[sel], msg_start[lo:hi + 1] - r0,
                        side[r0:r1], price[r0:r1], size[r0:r1], how)


def _with_refused(refused: tuple[np.ndarray, np.ndarray, np.ndarray], arrival: np.ndarray,
                  recv_ns: np.ndarray, ts_ms: np.ndarray, snapshot: np.ndarray,
                  first: np.ndarray, rows: int) -> tuple[np.ndarray, ...]:
    """The messages with the stream's refused pushes (``(arrival, recv_ns, ts_ms)``, kept as
    malformed, so in no ``levels`` row) put in arrival order, each with no rows and no
    snapshot: the event replay gives each a tick whose book is refused, and so must this."""
    a, r, ts = refused
    at = np.searchsorted(arrival, a)
    starts = np.r_[first, rows][at]
    return (np.insert(arrival, at, a), np.insert(recv_ns, at, r), np.insert(ts_ms, at, ts),
            np.insert(snapshot, at, False), np.insert(first, at, starts))


def _receive_times(rec: Recording, channel: str, inst: str, arrival: np.ndarray) -> np.ndarray:
    """The receive time of each message: from the raw table (a row per frame) rather than
    the levels table (a row per level, the same value repeated: reading it there costs a
    fifth of the whole read); from the levels table when the raw frames do not cover the
    messages (a recording imported without its raw frames)."""
    raw = rec.stream_table(RAW, channel=channel, inst=inst, columns=["recv_ns"])
    ra = raw["arrival"].to_numpy()
    i = np.searchsorted(ra, arrival)
    if len(ra) and i.max(initial=0) < len(ra) and np.array_equal(ra[i], arrival):
        return raw["recv_ns"].to_numpy()[i]
    t = rec.stream_table(LEVELS, channel=channel, inst=inst, columns=["recv_ns"])
    return _per_message(t, ("recv_ns",), sides=False)[1]["recv_ns"]


def _per_message(t: pa.Table, columns: tuple[str, ...], sides: bool = True
                 ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """The first row of every message (rows of one message share its arrival, in order),
    the per-message ``columns`` taken at those rows, and the side codes of every row.

    Batch by batch, on zero-copy views where the column allows: a third faster than
    gathering from the whole chunked table, and this runs once per replayed stream.
    """
    firsts: list[np.ndarray] = []
    per: dict[str, list[np.ndarray]] = {c: [] for c in columns}
    codes: list[np.ndarray] = []
    off, last = 0, None
    for b in t.to_batches():
        a = b.column("arrival").to_numpy()
        if not len(a):
            continue
        change = np.empty(len(a), dtype=bool)
        change[0] = last is None or a[0] != last
        np.not_equal(a[1:], a[:-1], out=change[1:])
        f = np.flatnonzero(change)
        firsts.append(f + off)
        for c in columns:
            col = b.column(c)
            if col.null_count or col.type == pa.bool_():
                per[c].append(col.take(pa.array(f)).to_numpy(zero_copy_only=False))
            else:
                per[c].append(col.to_numpy()[f])
        if sides:
            codes.append(_side_codes(pa.chunked_array([b.column("side")])))
        off += len(a)
        last = a[-1]
    if not firsts:
        empty = np.zeros(0, np.int64)
        return empty, {c: empty for c in columns}, np.zeros(0, np.uint8)
    return (np.concatenate(firsts), {c: np.concatenate(v) for c, v in per.items()},
            np.concatenate(codes) if codes else np.zeros(0, np.uint8))


def _side_codes(col: Any) -> np.ndarray:
    """0 bid, 1 ask, 2 none, from a (dictionary-encoded) side column."""
    out = []
    for chunk in col.chunks:
        if not hasattr(chunk, "indices"):
            chunk = chunk.dictionary_encode()
        codes = np.array([{"bid": 0, "ask": 1}.get(v, 2) for v in chunk.dictionary.to_pylist()]
                         + [2], dtype=np.uint8)
        idx = chunk.indices.fill_null(len(codes) - 1).to_numpy()
        out.append(codes[idx])
    return np.concatenate(out) if out else np.zeros(0, np.uint8)


def summarize(m: BookMessages) -> dict[str, Any]:
    """Counts of a :class:`BookMessages`, for reports."""
    return {"channel": m.channel, "inst": m.inst, "messages": len(m),
            "valid": int(m.valid.sum()), "emitted": int(m.emit.sum()),
            "level_rows": len(m.price), "validity": m.validity}
