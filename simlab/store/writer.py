"""Write a simlab recording: raw frames plus the normalised tables derived from them.

Rows are buffered per partition and written as new part files when ``flush_rows`` rows (or
``flush_bytes`` payload bytes) are buffered, and at :meth:`RecordingWriter.close`. Each part
file is written under a hidden temporary name, fsync'd and renamed, and only then listed in
the manifest, which is itself replaced atomically: a reader never sees a half-written file.

:func:`rebuild` re-derives ``levels/`` and ``trades/`` from ``raw/``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from simlab import __version__
from simlab.okx import is_book
from simlab.okx.normalize import WIRE_WS, Normalized, normalize

from .atomic import atomic_write, fsync_dir
from .manifest import RecordingError, new_manifest, utc_now, write_manifest
from .reader import Recording
from .schema import (
    DERIVED,
    EVENT_CHANNEL,
    LEVELS,
    MALFORMED_CHANNEL,
    NO_INST,
    RAW,
    SCHEMAS,
    TRADES,
    part_name,
    partition_dir,
    partition_ok,
    utc_date,
)
from .verify import BookChecker

log = logging.getLogger("simlab.store")

#: Manifest limits: a recording of a broken feed must not grow an unbounded manifest.
MAX_EVENTS = 10_000
MAX_EXAMPLES = 20
MAX_REASONS = 100
_LOGGED_MALFORMED = 20
_I64 = 2**63

Key = tuple[str, str, str]  # channel, inst, date


def write_parquet(path: Path, table: pa.Table) -> None:
    """Write ``table`` to ``path`` atomically: hidden ``.<name>.tmp``, fsync, rename.

    The temporary name starts with a dot, so pyarrow/pandas dataset discovery skips it
    even while it is being written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: pq.write_table(table, f, compression="zstd",
                                                use_dictionary=_dict_columns(table)))


def _dict_columns(table: pa.Table) -> list[str]:
    # Dictionary-encoding unique payloads only costs time; repeated strings gain from it.
    return [f.name for f in table.schema if f.name not in ("payload", "arrival", "recv_ns")]


class DatasetBuffer:
    """Buffered rows of one dataset, by partition, flushed as numbered part files."""

    def __init__(self, root: Path, dataset: str):
        self.root = Path(root)
        self.dataset = dataset
        self.schema = SCHEMAS[dataset]
        self.names = self.schema.names
        self.buf: dict[Key, dict[str, list]] = {}
        self.next_part: dict[Key, int] = {}
        self.rows = 0

    def _cols(self, key: Key) -> dict[str, list]:
        cols = self.buf.get(key)
        if cols is None:
            cols = self.buf[key] = {n: [] for n in self.names}
        return cols

    def append_raw(self, key: Key, arrival: int, recv_ns: int, conn: int, payload: bytes) -> None:
        c = self._cols(key)
        c["arrival"].append(arrival)
        c["recv_ns"].append(recv_ns)
        c["conn"].append(conn)
        c["payload"].append(payload)
        self.rows += 1

    def extend(self, key: Key, arrival: int, recv_ns: int, rows: dict[str, list]) -> None:
        """Append normalised rows (columns without ``arrival``/``recv_ns``)."""
        c = self._cols(key)
        n = len(next(iter(rows.values())))
        c["arrival"].extend([arrival] * n)
        c["recv_ns"].extend([recv_ns] * n)
        for name, values in rows.items():
            c[name].extend(values)
        self.rows += n

    def flush(self) -> list[dict[str, Any]]:
        """Write every buffered partition to a new part file; return manifest entries."""
        entries = []
        for key in sorted(self.buf):
            cols = self.buf.pop(key)
            if cols["arrival"]:
                entries.append(self._write(key, cols))
        self.buf.clear()
        self.rows = 0
        return entries

    def _write(self, key: Key, cols: dict[str, list]) -> dict[str, Any]:
        channel, inst, date = key
        n = self.next_part.get(key, 0)
        self.next_part[key] = n + 1
        rel = f"{partition_dir(self.dataset, channel, inst, date)}/{part_name(n)}"
        table = pa.Table.from_pydict(cols, schema=self.schema)
        write_parquet(self.root / rel, table)
        return {"dataset": self.dataset, "path": rel, "channel": channel, "inst": inst,
                "date": date, "rows": table.num_rows, "arrival_min": cols["arrival"][0],
                "arrival_max": cols["arrival"][-1]}


def partition_of(norm: Normalized) -> tuple[str, str]:
    """``(channel, inst)`` partition values of a normalised frame.

    >>> partition_of(Normalized("book", "books", "BTC-USDT")), partition_of(Normalized("pong"))
    (('books', 'BTC-USDT'), ('_event', '_none'))
    """
    if norm.kind == "malformed":
        return MALFORMED_CHANNEL, NO_INST
    if norm.kind in ("event", "pong"):
        return EVENT_CHANNEL, NO_INST
    channel, inst = norm.channel or "", norm.inst_id or NO_INST
    if not partition_ok(channel, inst) or channel.startswith("_"):
        return MALFORMED_CHANNEL, NO_INST
    return channel, inst


class RecordingWriter:
    """Write a new recording directory.

    ``source`` describes where the data comes from (``importer``, ``input`` ...), stored in
    the manifest. ``wire_format`` says how raw payloads are parsed (``"okx-ws"`` frames or
    ``"okx-l2-history"`` lines). With ``check_books`` (default) every book stream is
    rebuilt while writing, so gaps and checksum failures are recorded in the manifest.

    >>> with RecordingWriter("rec", source={"importer": "demo"}) as w:  # doctest: +SKIP
    ...     w.add(b'{"event":"subscribe","arg":{"channel":"books","instId":"X"}}', 10**18)
    0
    """

    def __init__(self, path: str | Path, source: dict[str, Any] | None = None, *,
                 flush_rows: int = 100_000, flush_bytes: int = 64 << 20,
                 wire_format: str = WIRE_WS, check_books: bool = True):
        self.path = Path(path)
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise RecordingError(f"{self.path}: already exists and is not an empty directory; "
                                 "choose a new path for the recording")
        if flush_rows < 1 or flush_bytes < 1:
            raise ValueError("flush_rows and flush_bytes must be >= 1")
        normalize(b"pong", wire_format)  # rejects an unknown wire format early
        self.path.mkdir(parents=True, exist_ok=True)
        self.wire_format = wire_format
        self.flush_rows, self.flush_bytes = flush_rows, flush_bytes
        self.buffers = {d: DatasetBuffer(self.path, d) for d in (RAW, LEVELS, TRADES)}
        self.checker = BookChecker() if check_books else None
        self.manifest = new_manifest(source, wire_format)
        self._arrival = 0
        self._bytes = 0
        self._closed = False
        self._channels: dict[str, Counter] = {}
        self._control: Counter = Counter()
        write_manifest(self.path, self.manifest)

    # -- context manager ------------------------------------------------------------------
    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
        else:
            self.abort(f"{type(exc).__name__}: {exc}")

    # -- adding data ----------------------------------------------------------------------
    @property
    def arrivals(self) -> int:
        """Number of frames added so far (the next arrival number)."""
        return self._arrival

    def add(self, payload: bytes, recv_ns: int, conn: int = 0) -> int:
        """Record one raw frame received at ``recv_ns`` (ns since the epoch, local clock);
        returns its arrival number (0, 1, 2 ... over the whole recording)."""
        return self.add_normalized(payload, normalize(payload, self.wire_format), recv_ns, conn)

    def add_normalized(self, payload: bytes, norm: Normalized, recv_ns: int,
                       conn: int = 0) -> int:
        """Like :meth:`add` for a frame the caller has already normalised (importers use
        the parse to derive receive times)."""
        if self._closed:
            raise RecordingError(f"{self.path}: writer is closed")
        if isinstance(payload, str):
            payload = payload.encode()
        elif not isinstance(payload, bytes):
            payload = bytes(payload)
        if not (isinstance(recv_ns, int) and 0 <= recv_ns < _I64):
            raise ValueError(f"recv_ns must be an int of ns since the epoch, got {recv_ns!r}")
        if not (isinstance(conn, int) and 0 <= conn < 2**31):
            raise ValueError(f"conn must be a non-negative int32, got {conn!r}")
        a = self._arrival
        self._arrival += 1
        channel, inst = partition_of(norm)
        if channel == MALFORMED_CHANNEL and norm.kind != "malformed":
            norm = Normalized("malformed", norm.channel, norm.inst_id, norm.msg,
                              error="channel or instId unusable as a partition name")
        key = (channel, inst, utc_date(recv_ns))
        self.buffers[RAW].append_raw(key, a, recv_ns, conn, payload)
        self._bytes += len(payload)
        if norm.rows is not None and norm.kind != "malformed":
            self.buffers[norm.table].extend(key, a, recv_ns, norm.rows)
        self._count(norm, channel, inst, a, recv_ns)
        if self.checker is not None and norm.msg is not None and is_book(norm.msg):
            for ev in self.checker.apply(norm.msg, a):
                self._event(ev)
        if (sum(b.rows for b in self.buffers.values()) >= self.flush_rows
                or self._bytes >= self.flush_bytes):
            self.flush()
        return a

    def _count(self, norm: Normalized, channel: str, inst: str, arrival: int,
               recv_ns: int) -> None:
        m = self.manifest
        if m["first_recv_ns"] is None:
            m["first_recv_ns"] = recv_ns
        m["last_recv_ns"] = recv_ns
        if norm.kind == "malformed":
            self._malformed(norm, arrival)
        elif norm.kind in ("event", "pong"):
            self._control[norm.label or norm.kind] += 1
        else:
            self._channels.setdefault(channel, Counter())[inst] += 1
            if norm.kind == "unknown" and self._channels[channel][inst] == 1:
                log.warning("arrival %d: unknown channel %r (kept raw, not normalised)",
                            arrival, channel)

    def _malformed(self, norm: Normalized, arrival: int) -> None:
        mal = self.manifest["malformed"]
        mal["count"] += 1
        reason = norm.error or "malformed"
        reasons = mal["reasons"]
        if reason in reasons or len(reasons) < MAX_REASONS:
            reasons[reason] = reasons.get(reason, 0) + 1
        else:
            reasons["(other reasons)"] = reasons.get("(other reasons)", 0) + 1
        if len(mal["examples"]) < MAX_EXAMPLES:
            mal["examples"].append({"arrival": arrival, "reason": reason,
                                    "channel": norm.channel, "inst": norm.inst_id})
        level = logging.WARNING if mal["count"] <= _LOGGED_MALFORMED else logging.DEBUG
        log.log(level, "%s: arrival %d: malformed frame kept raw: %s", self.path, arrival,
                reason)

    def _event(self, event: dict[str, Any]) -> None:
        if len(self.manifest["events"]) < MAX_EVENTS:
            self.manifest["events"].append(event)
        else:
            self.manifest["events_dropped"] += 1

    def add_event(self, event: dict[str, Any]) -> None:
        """Record a gap, resync or connection event in the manifest.

        ``event`` must be a JSON-serialisable dict with a ``kind``; the writer adds the
        arrival number of the next frame (``arrival``) unless given.

        >>> w.add_event({"kind": "connect", "url": "wss://ws.okx.com:8443/ws/v5/public",
        ...              "recv_ns": 1652459224530060500})               # doctest: +SKIP
        """
        if not isinstance(event, dict) or not isinstance(event.get("kind"), str):
            raise ValueError(f"an event must be a dict with a 'kind' string, got {event!r}")
        try:
            json.dumps(event)
        except (TypeError, ValueError) as e:
            raise ValueError(f"event is not JSON-serialisable ({e}): {event!r}") from None
        self._event({"arrival": self._arrival, **event})

    def set_instrument(self, inst_id: str, metadata: dict[str, Any]) -> None:
        """Store instrument metadata (tick size, lot size, contract value ...) in the manifest.

        >>> w.set_instrument("BTC-USDT", {"tickSz": "0.1", "lotSz": "0.00000001"})  # doctest: +SKIP
        """
        if not isinstance(inst_id, str) or not isinstance(metadata, dict):
            raise ValueError("set_instrument needs an instrument id and a metadata dict")
        self.manifest["instruments"].setdefault(inst_id, {}).update(metadata)

    def instruments_seen(self) -> set[str]:
        """Instruments that have data frames in the recording so far."""
        return {i for c in self._channels.values() for i in c if i != NO_INST}

    def update_source(self, **fields: Any) -> None:
        """Add fields to the manifest's ``source`` (importers record notes and line counts)."""
        self.manifest["source"].update(fields)

    # -- flushing -------------------------------------------------------------------------
    def flush(self) -> None:
        """Write all buffered rows to new part files, then rewrite the manifest."""
        entries = []
        for name, buf in self.buffers.items():
            new = buf.flush()
            entries += new
            self.manifest["rows"][name] += sum(e["rows"] for e in new)
        self._bytes = 0
        self.manifest["files"] += entries
        self._sync_manifest()

    def _sync_manifest(self) -> None:
        m = self.manifest
        m["arrivals"] = self._arrival
        m["channels"] = {ch: {"messages": sum(c.values()), "instruments": dict(sorted(c.items()))}
                         for ch, c in sorted(self._channels.items())}
        m["control"] = dict(sorted(self._control.items()))
        if self.checker is not None:
            m["integrity"] = self.checker.summary()
        write_manifest(self.path, m)

    def close(self) -> None:
        """Flush everything and mark the recording complete. Idempotent."""
        if self._closed:
            return
        self.manifest["complete"] = True
        self.flush()
        self._closed = True

    def abort(self, reason: str) -> None:
        """Flush what is buffered (it is valid data) but leave the recording marked
        incomplete, with ``reason``. Used when the context manager exits on an error."""
        if self._closed:
            return
        self._closed = True
        self.manifest["complete"] = False
        self.manifest["error"] = reason
        try:
            self.flush()
        except Exception as e:  # the original error matters more; files stay consistent
            log.error("%s: could not flush after %s: %s", self.path, reason, e)


def rebuild(path: str | Path, flush_rows: int = 200_000) -> dict[str, int]:
    """Delete and re-derive ``levels/`` and ``trades/`` from ``raw/``; returns row counts.

    New files are written under ``.rebuild/`` first, then swapped in and the manifest
    rewritten. If interrupted, run it again: it reads only ``raw/``.

    >>> rebuild("rec")  # doctest: +SKIP
    {'levels': 165433, 'trades': 74}
    """
    rec = Recording(path)
    root = rec.path
    work = root / ".rebuild"
    shutil.rmtree(work, ignore_errors=True)
    buffers = {d: DatasetBuffer(work, d) for d in DERIVED}
    entries: list[dict[str, Any]] = []
    for f in rec.iter_raw():
        norm = normalize(f.payload, rec.wire_format)
        if norm.rows is None or norm.kind == "malformed":
            continue
        key = (*partition_of(norm), utc_date(f.recv_ns))
        buffers[norm.table].extend(key, f.arrival, f.recv_ns, norm.rows)
        if sum(b.rows for b in buffers.values()) >= flush_rows:
            for b in buffers.values():
                entries += b.flush()
    for b in buffers.values():
        entries += b.flush()
    _swap(root, work)
    m = rec.manifest
    m["files"] = [e for e in m["files"] if e["dataset"] not in DERIVED] + entries
    for d in DERIVED:
        m["rows"][d] = sum(e["rows"] for e in entries if e["dataset"] == d)
    m.setdefault("history", []).append({"action": "rebuild", "time": utc_now(),
                                        "simlab_version": __version__})
    write_manifest(root, m)
    shutil.rmtree(work, ignore_errors=True)
    return {d: m["rows"][d] for d in DERIVED}


def _swap(root: Path, work: Path) -> None:
    for d in DERIVED:
        old, new = root / d, work / d
        if old.exists():
            os.replace(old, work / f"{d}.old")
        if new.exists():
            os.replace(new, old)
    fsync_dir(root)
