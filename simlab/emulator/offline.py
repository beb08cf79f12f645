"""Synthetic recordings without a network: the emulator's market written straight to disk.

Recording the emulator live (``simlab serve`` + ``simlab record``) runs in real time.
:func:`write_synthetic_recording` drives the same :class:`~simlab.emulator.publisher.Publisher`
in simulated time and hands every frame to a
:class:`~simlab.store.writer.RecordingWriter` in send order, so ten simulated minutes take
seconds and the result is what a live recording of the emulator would hold:

- per connection (subscriptions spread as the live client spreads them,
  :func:`simlab.okx.connection.plan_connections`; request ids as it numbers them), the
  subscribe acknowledgement of each stream, as the emulator words it, followed by the
  stream's initial snapshot (book channels);
- every push in send order, received ``latency_ms`` after its exchange time
  (``recv_ns = ts_ms * 1e6 + latency``: no clock, so the same arguments give the same
  recording);
- the unsubscribe acknowledgements a recorder gets when it stops;
- the instruments' metadata in the manifest, as the live recorder stores it from the
  emulator's ``/api/v5/public/instruments``, and a ``source`` saying the recording is
  synthetic, with the seed, the market's parameters and these arguments.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from simlab import __version__
from simlab.okx.connection import batch_requests, normalize_args, plan_connections
from simlab.okx.encode import encode_event
from simlab.okx.normalize import instrument_metadata

from .cst import CSTBook, CSTParams
from .flow import check_beta, imbalance_flow
from .instruments import DEFAULT_INSTRUMENTS
from .market import DEFAULT_START_MS, CSTMarket
from .publisher import CHANNELS, TRADES, Publisher
from .rest import instrument_json
from .source import MarketSource

#: What ``recv_ns`` means in a synthetic recording (stored in the manifest's source).
RECV_TIME = "simulated: exchange ts_ms + latency_ms (no clock)"


def _acks(op: str, conns: Sequence[Sequence[tuple[str, str]]], seed: int,
          next_id: Any) -> Iterable[tuple[int, str, str, bytes]]:
    """``(connection, channel, instId, frame)``: the emulator's acknowledgement of ``op``
    (``subscribe`` / ``unsubscribe``) for each stream of each connection, worded and with
    the connId as the emulator sends it (``Emulator._conn_id``), requested in the live
    client's batches with the ids ``next_id`` gives (drawn lazily, in request order).

    >>> [(n, ch, f[:22]) for n, ch, _, f in _acks("subscribe", [[("books", "X")]], 0,
    ...                                           lambda: "1")]
    [(0, 'books', b'{"id":"1","event":"sub')]
    """
    for n, args in enumerate(conns):
        conn_id = _conn_id(seed, n)
        for rid, _, batch in batch_requests(op, args, next_id):
            for ch, inst in batch:
                yield n, ch, inst, encode_event(op, {"channel": ch, "instId": inst},
                                                conn_id=conn_id, id=rid)


def _instruments(instruments: str | Iterable[str] | None, market: MarketSource | None
                 ) -> list[str]:
    if instruments is None:
        return ([i.inst_id for i in market.instruments()] if market is not None
                else ["BTC-USDT"])
    ids = [instruments] if isinstance(instruments, str) else list(instruments)
    if not ids or not all(isinstance(i, str) and i for i in ids):
        raise ValueError(f"instruments must be non-empty instIds, got {instruments!r}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"instruments must be distinct, got {ids}")
    if market is None:
        for i in ids:
            if i not in DEFAULT_INSTRUMENTS:
                raise ValueError(f"unknown instrument {i!r}: expected one of "
                                 f"{sorted(DEFAULT_INSTRUMENTS)} (others: pass a market "
                                 "built with SimInstrument s)")
    else:
        known = [i.inst_id for i in market.instruments()]
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise ValueError(f"instruments {unknown} are not in the market; it has {known}")
    return ids


def _channels(channels: str | Iterable[str]) -> list[str]:
    chs = [channels] if isinstance(channels, str) else list(channels)
    if not chs:
        raise ValueError(f"channels must name at least one of {list(CHANNELS)}")
    for c in chs:
        if c not in CHANNELS:
            raise ValueError(f"unknown channel {c!r}: expected one of {list(CHANNELS)}")
    if len(set(chs)) != len(chs):
        raise ValueError(f"channels must be distinct, got {chs}")
    return chs


def _number(value: Any, name: str, *, positive: bool) -> float:
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or (value <= 0 if positive else value < 0)):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, "
                         f"got {value!r}")
    return float(value)


def _conn_id(seed: int, n: int) -> str:
    return f"{zlib.crc32(f'{seed}:{n}'.encode()):08x}"


def _describe(market: MarketSource) -> dict[str, Any]:
    """The market's class and, for a CST market, each book's class and parameters."""
    d: dict[str, Any] = {"class": type(market).__name__,
                         "seed": getattr(market, "seed", None)}
    if isinstance(market, CSTMarket):
        books = {}
        for ins in market.instruments():
            b = market.book(ins.inst_id)
            books[ins.inst_id] = {"book_cls": type(b).__name__,
                                  "beta": getattr(b, "beta", None),
                                  "params": dataclasses.asdict(b.params)}
        d["books"] = books
    return d


def write_synthetic_recording(
    out: str | Path, *, market: MarketSource | None = None, seconds: float = 600.0,
    instruments: str | Sequence[str] | None = None,
    channels: str | Sequence[str] = ("books", "trades"), seed: int = 0,
    imbalance: float | None = None,
    params: CSTParams | Mapping[str, CSTParams] | None = None,
    checksum: bool = False, latency_ms: float = 5.0, step_ms: int = 100,
    start_ms: int | None = None, progress: bool | None = False,
) -> Path:
    """Write ``seconds`` of a synthetic market as a new recording ``out``; returns its path.

    ``market``: any fresh (never advanced) :class:`~simlab.emulator.source.MarketSource`;
    by default ``CSTMarket(seed, instruments, params, start_ms)``, with
    ``imbalance_flow(imbalance)`` books when ``imbalance`` (beta in [-1, 1]) is given.
    ``instruments``: those recorded (default: BTC-USDT, or all of a given market's);
    ``channels``: each instrument's subscriptions (any of
    :data:`~simlab.emulator.publisher.CHANNELS`). ``seed`` also picks the seqIds and connIds.
    ``checksum=False`` writes checksum 0 (OKX since June 2026). Frames are received
    ``latency_ms`` after their exchange time; ``step_ms`` is how far simulated time moves per
    step (memory and progress only: the recording does not depend on it). ``progress``
    shows a tqdm bar of simulated seconds on stderr.

    Raises ValueError naming a bad argument, :class:`~simlab.store.manifest.RecordingError`
    if ``out`` exists and is not an empty directory.

    >>> import tempfile
    >>> from simlab.store.verify import verify
    >>> d = write_synthetic_recording(tempfile.mkdtemp() + "/rec", seconds=2.0)
    >>> r = verify(d)
    >>> r.ok, r.channels["books"]["total"]["snapshots"], r.control
    (True, 1, {'subscribe': 2, 'unsubscribe': 2})
    """
    from simlab.progress import bar
    from simlab.store.writer import RecordingWriter

    seconds = _number(seconds, "seconds", positive=True)
    latency_ms = _number(latency_ms, "latency_ms", positive=False)
    if isinstance(step_ms, bool) or not isinstance(step_ms, int) or step_ms < 1:
        raise ValueError(f"step_ms must be an integer >= 1, got {step_ms!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if not isinstance(checksum, bool):
        raise TypeError(f"checksum must be True or False, got {checksum!r}")
    if imbalance is not None:
        imbalance = check_beta(imbalance)
    if market is not None:
        if imbalance is not None or params is not None or start_ms is not None:
            raise ValueError("imbalance, params and start_ms build the default market: "
                             "give them or a market, not both")
        now = getattr(market, "now_ms", None)
        if now is not None and now >= market.start_ms:
            raise ValueError(f"market has already advanced to {now}: pass a fresh one (the "
                             "recording starts from its initial book)")
    insts = _instruments(instruments, market)
    chs = _channels(channels)
    subs = normalize_args([(c, i) for i in insts for c in chs])
    dur_ms = round(seconds * 1000.0)
    if dur_ms < 1:
        raise ValueError(f"seconds must be at least 0.001, got {seconds!r}")
    if market is None:
        market = CSTMarket(seed=seed, instruments=insts, params=params,
                           start_ms=DEFAULT_START_MS if start_ms is None else start_ms,
                           book_cls=CSTBook if imbalance is None else imbalance_flow(imbalance))
    t0 = int(market.start_ms)
    end_ms = t0 + dur_ms
    lat_ns = round(latency_ms * 1e6)

    conns = plan_connections(subs)
    conn_of = {key: n for n, args in enumerate(conns) for key in args}
    pub = Publisher(market, checksum=checksum, seed=seed, streams=subs)
    source = {
        "generator": "simlab synth", "synthetic": True, "simlab_version": __version__,
        "seed": seed, "seconds": seconds, "start_ms": t0, "end_ms": end_ms,
        "instruments": insts, "channels": chs, "subscriptions": [list(s) for s in subs],
        "checksum": checksum, "latency_ms": latency_ms, "imbalance_beta": imbalance,
        "market": _describe(market), "recv_time": RECV_TIME,
    }
    meta = {ins.inst_id: ins for ins in market.instruments()}
    ids = itertools.count(1)  # the live client numbers its requests 1, 2, ...

    def next_id() -> str:
        return str(next(ids))

    with RecordingWriter(out, source, check_books=True) as w:
        for inst in insts:
            w.set_instrument(inst, instrument_metadata({"data": [instrument_json(meta[inst])]})
                             [inst])
        ns = t0 * 1_000_000 + lat_ns
        for n, ch, inst, ack in _acks("subscribe", conns, seed, next_id):
            w.add(ack, ns, n)
            snap = pub.snapshot(ch, inst) if ch != TRADES else None
            if snap is not None:
                w.add(snap.frame, max(ns, snap.ts_ms * 1_000_000 + lat_ns), n)
        last = ns
        # Counted in ms (exact integers), shown in simulated seconds.
        with bar(progress, total=dur_ms, unit="s", unit_scale=0.001, desc="synth",
                 bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} simulated s [{elapsed}<"
                            "{remaining}]") as pbar:
            t = t0
            while t < end_ms:
                nxt = min(t + step_ms, end_ms)
                for p in pub.advance(nxt):
                    # Pushes come in send order with non-decreasing ts_ms; max() keeps the
                    # receive times ordered whatever a custom market does.
                    last = max(last, p.ts_ms * 1_000_000 + lat_ns)
                    w.add(p.frame, last, conn_of[(p.channel, p.inst_id)])
                pbar.update(nxt - t)
                t = nxt
        last = max(last, end_ms * 1_000_000 + lat_ns)
        for n, _, _, ack in _acks("unsubscribe", conns, seed, next_id):
            w.add(ack, last, n)
    return Path(out)
