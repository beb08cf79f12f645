"""Write a simlab recording: raw frames plus the normalised tables derived from them.

Rows are buffered per partition and written as new part files when ``flush_rows`` rows (or
``flush_bytes`` payload bytes) are buffered, and at :meth:`RecordingWriter.close`.

Every write is a commit (``docs/recording-format.md``): each part file is written under a
hidden temporary name and fsync'd; then the manifest, replaced atomically, lists the files
(and names them in ``pending``); only then are they renamed into view. So pandas, DuckDB,
pyarrow and simlab never see a row the manifest does not list, even when the process is
killed between two steps; a killed commit is completed (renames) by the next
:class:`~simlab.store.reader.Recording` opened on the directory.

With ``rotating=True`` (the live recorder) each partition has an open hidden part file
instead: when ``flush_rows`` rows (or ``flush_bytes`` payload bytes) are buffered, the
partitions with the most rows are appended to their files as row groups until half is
left (few, large row groups: each holds ~10 KB of footer metadata in memory until its file
is closed, so past ``MAX_OPEN_ROW_GROUPS`` the fullest files are finished early, still
hidden). :meth:`RecordingWriter.rotate` writes the rest, finishes every file and commits
them: memory stays bounded and a crash loses at most the current rotation.

:func:`rebuild` re-derives ``levels/`` and ``trades/`` from ``raw/``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from time import perf_counter_ns
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from simlab import __version__
from simlab.okx.frames import RawFrame
from simlab.okx.normalize import WIRE_WS, Normalized, normalize, normalize_raw
from simlab.okx.rest import REST_CONN

from .atomic import crash_point, fsync_dir, hidden, rename_into_view
from .checking import CheckingStage
from .manifest import RecordingError, new_manifest, utc_now, write_manifest
from .reader import Recording
from .schema import (
    DERIVED,
    EVENT_CHANNEL,
    LEVELS,
    MALFORMED_CHANNEL,
    MANIFEST,
    NO_INST,
    RAW,
    SCHEMAS,
    TRADES,
    part_name,
    partition_dir,
    partition_ok,
    utc_date,
)

log = logging.getLogger("simlab.store")

#: Manifest limits: a recording of a broken feed must not grow an unbounded manifest.
MAX_EVENTS = 10_000
MAX_EXAMPLES = 20
MAX_REASONS = 100
_LOGGED_MALFORMED = 20
_I64 = 2**63
Key = tuple[str, str, str]  # channel, inst, date

def _dict_columns(schema: pa.Schema) -> list[str]:
    # Dictionary-encoding unique payloads only costs time; repeated strings gain from it.
    return [f.name for f in schema if f.name not in ("payload", "arrival", "recv_ns")]


class PartFile:
    """A part file written row group by row group under its hidden temporary name
    (:func:`~simlab.store.atomic.hidden`, skipped by dataset discovery and ``*.parquet``
    globs). :meth:`finish` closes and fsyncs it (still hidden); once the manifest lists it
    (:meth:`entry`), :meth:`publish` renames it into view. Pages carry CRC checksums, so
    a damaged page fails to read instead of decoding to wrong values."""

    def __init__(self, root: Path, rel: str, schema: pa.Schema, key: Key):
        self.root, self.rel, self.key = root, rel, key
        self.path = root / rel
        self.tmp = hidden(self.path)
        self.rows = 0
        self.row_groups = 0
        self.arrival_min: int | None = None
        self.arrival_max: int | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.writer: pq.ParquetWriter | None = pq.ParquetWriter(
            str(self.tmp), schema, compression="zstd", use_dictionary=_dict_columns(schema),
            write_page_checksum=True)
        self.schema = schema

    def write(self, cols: dict[str, list]) -> None:
        """Append rows (in arrival order) as one row group."""
        table = pa.Table.from_pydict(cols, schema=self.schema)
        self.writer.write_table(table, row_group_size=max(1, table.num_rows))
        if self.arrival_min is None:
            self.arrival_min = cols["arrival"][0]
        self.arrival_max = cols["arrival"][-1]
        self.rows += table.num_rows
        self.row_groups += 1

    def finish(self) -> None:
        """Close the file and fsync it; it keeps its hidden name."""
        self.writer.close()
        self.writer = None  # frees the footer metadata it held
        fd = os.open(self.tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        crash_point("file-finished")

    def entry(self, dataset: str) -> dict[str, Any]:
        """The file's manifest entry."""
        channel, inst, date = self.key
        return {"dataset": dataset, "path": self.rel, "channel": channel, "inst": inst,
                "date": date, "rows": self.rows, "arrival_min": self.arrival_min,
                "arrival_max": self.arrival_max}

    def publish(self) -> None:
        """Rename the finished, listed file to its real name (a reader that completed an
        interrupted commit may have done it already)."""
        rename_into_view(self.path)
        crash_point("file-renamed")

    def discard(self) -> None:
        """Give up the file: close what can be closed, remove the temporary."""
        if self.writer is not None:
            with contextlib.suppress(OSError, pa.ArrowException):
                self.writer.close()
            self.writer = None
        self.tmp.unlink(missing_ok=True)


class DatasetBuffer:
    """Buffered rows of one dataset, by partition, written as numbered hidden part files.

    :meth:`flush` writes every buffered partition to a new finished part file (rotating:
    appends it to the partition's open :class:`PartFile` as one row group). With
    ``rotating``, :meth:`write_largest` appends the partitions with the most buffered rows;
    :meth:`roll` finishes the open files with the most row groups (each row group holds
    ~10 KB of footer metadata in memory until its file is closed) and starts new ones.
    :meth:`seal` writes the rest and finishes every file: all still hidden, for the
    caller to list in the manifest and then :meth:`PartFile.publish`.
    """

    def __init__(self, root: Path, dataset: str, rotating: bool = False):
        self.root = Path(root)
        self.dataset = dataset
        self.schema = SCHEMAS[dataset]
        self.names = self.schema.names
        self.buf: dict[Key, dict[str, list]] = {}
        self.next_part: dict[Key, int] = {}
        self.rows = 0
        self.rotating = rotating
        self.open: dict[Key, PartFile] = {}
        self.finished: list[PartFile] = []  # complete, still hidden, not yet listed
        self.current: str | None = None  # the part file being written (names a failure)

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

    def flush(self) -> None:
        """Write every buffered partition to a new finished (hidden) part file; rotating:
        append every partition to its open part file."""
        if self.rotating:
            self.write_largest(0)
            return
        for key in sorted(self.buf):
            cols = self.buf.pop(key)
            if cols["arrival"]:
                pf = self.open[key] = self._new_part(key)  # open: discard() finds it
                self.current = pf.rel
                pf.write(cols)
                self._finish(self.open.pop(key))
        self.buf.clear()
        self.rows = 0

    def write_largest(self, keep_rows: int) -> None:
        """Rotating: write partitions, most rows first, as one row group each, until at
        most ``keep_rows`` stay buffered."""
        sizes = {k: len(c["arrival"]) for k, c in self.buf.items()}
        for key in sorted(sizes, key=sizes.__getitem__, reverse=True):
            if self.rows <= keep_rows:
                break
            cols = self.buf.pop(key)
            if not sizes[key]:
                continue
            pf = self.open.get(key)
            if pf is None:
                pf = self.open[key] = self._new_part(key)
            self.current = pf.rel
            pf.write(cols)
            self.current = None
            self.rows -= sizes[key]

    def _new_part(self, key: Key) -> PartFile:
        rel = self.current = self._next_rel(key)
        pf = PartFile(self.root, rel, self.schema, key)
        self.current = None
        return pf

    def _finish(self, pf: PartFile) -> None:
        self.current = pf.rel
        self.finished.append(pf)
        pf.finish()
        self.current = None

    @property
    def row_groups(self) -> int:
        """Row groups in the open part files."""
        return sum(pf.row_groups for pf in self.open.values())

    def roll(self, keep_groups: int) -> None:
        """Rotating: finish the open files with the most row groups until at most
        ``keep_groups`` remain open; the next rows of those partitions start new parts."""
        total = self.row_groups
        for key in sorted(self.open, key=lambda k: self.open[k].row_groups, reverse=True):
            if total <= keep_groups:
                break
            pf = self.open.pop(key)
            self._finish(pf)
            total -= pf.row_groups

    def seal(self) -> list[PartFile]:
        """Write what is buffered and finish every open file; every finished, unlisted
        part file (hidden), in path order. They stay in :attr:`finished` until the caller
        has listed them (:meth:`listed`) or given up (:meth:`discard`)."""
        self.flush()
        crash_point("rows-written")
        self.roll(0)
        return sorted(self.finished, key=lambda f: f.rel)

    def listed(self) -> None:
        """The finished files are in the manifest now: forget them here."""
        self.finished.clear()

    def discard(self) -> None:
        """Drop buffered rows and every unlisted part file (temporaries removed)."""
        for pf in [*self.open.values(), *self.finished]:
            pf.discard()
        self.open.clear()
        self.finished.clear()
        self.buf.clear()
        self.rows = 0

    def _next_rel(self, key: Key) -> str:
        channel, inst, date = key
        n = self.next_part.get(key, 0)
        self.next_part[key] = n + 1
        return f"{partition_dir(self.dataset, channel, inst, date)}/{part_name(n)}"


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
    """Write a new recording directory: store each frame (raw, and its normalised rows),
    count it, keep the manifest, and commit part files (see the module docstring).

    ``source`` describes where the data comes from (``importer``, ``input`` ...), stored in
    the manifest. ``wire_format`` says how raw payloads are parsed (``"okx-ws"`` frames or
    ``"okx-l2-history"`` lines). With ``check_books`` (default) a
    :class:`~simlab.store.checking.CheckingStage` rebuilds every book stream as its frames
    are stored, so gaps and checksum failures are recorded in the manifest (``events``,
    ``integrity``); without it the writer only stores.

    Each frame goes through :meth:`store` (buffer and count), the check (:attr:`check`,
    if any) and :meth:`write_if_full`; a caller that composes other stages (the live
    recorder times each one, see :mod:`simlab.record.monitored`) calls them itself.
    ``manifest_hooks`` are called with the manifest, in order, just before every write of
    it; ``on_write``, if set, is called with how long each Parquet write took (ns: a flush
    of buffered rows when they are full, or a rotation's sealing of its files, fsync
    included, but not the manifest write nor the renames into view after it).

    >>> with RecordingWriter("rec", source={"importer": "demo"}) as w:  # doctest: +SKIP
    ...     w.add(b'{"event":"subscribe","arg":{"channel":"books","instId":"X"}}', 10**18)
    0
    """

    def __init__(self, path: str | Path, source: dict[str, Any] | None = None, *,
                 flush_rows: int = 100_000, flush_bytes: int = 64 << 20,
                 wire_format: str = WIRE_WS, check_books: bool = True,
                 rotating: bool = False):
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
        self.rotating = rotating
        self.buffers = {d: DatasetBuffer(self.path, d, rotating) for d in (RAW, LEVELS, TRADES)}
        self.manifest = new_manifest(source, wire_format)
        self._arrival = 0
        self._bytes = 0
        self._closed = False
        self._channels: dict[str, Counter] = {}
        self._control: Counter = Counter()
        self._saved: dict[str, Any] = {}
        self.manifest_hooks: list[Callable[[dict[str, Any]], None]] = []
        self.on_write: Callable[[int], None] | None = None
        #: The book check run on every stored frame (``check_books``), else None.
        self.check: CheckingStage | None = CheckingStage(self) if check_books else None
        self._checkpoint()
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

    def add_frame(self, frame: RawFrame) -> int:
        """Record a :class:`~simlab.okx.frames.RawFrame` as the live client yields it (a REST
        order-book snapshot, ``conn == REST_CONN``, is stored and normalised as a snapshot
        of ``frame.channel``/``frame.inst``); returns its arrival number here.

        >>> w.add_frame(RawFrame(0, 10**18, 0, "_event", "_none", b"pong"))  # doctest: +SKIP
        0
        """
        norm = normalize_raw(frame.payload, frame.conn, frame.channel, frame.inst,
                             self.wire_format)
        return self.add_normalized(frame.payload, norm, frame.recv_ns, frame.conn)

    def add_normalized(self, payload: bytes, norm: Normalized, recv_ns: int,
                       conn: int = 0) -> int:
        """Like :meth:`add` for a frame the caller has already normalised (importers use
        the parse to derive receive times): :meth:`store`, check, :meth:`write_if_full`."""
        a = self.store(payload, norm, recv_ns, conn)
        if self.check is not None:
            self.check.frame(norm, a, conn)
        self.write_if_full()
        return a

    def store(self, payload: bytes, norm: Normalized, recv_ns: int, conn: int = 0) -> int:
        """Buffer one normalised frame (raw row, and its level or trade rows) and count it
        in the manifest; returns its arrival number. Writes nothing: see
        :meth:`write_if_full`."""
        if self._closed:
            raise RecordingError(f"{self.path}: writer is closed")
        if isinstance(payload, str):
            payload = payload.encode()
        elif not isinstance(payload, bytes):
            payload = bytes(payload)
        if not (isinstance(recv_ns, int) and 0 <= recv_ns < _I64):
            raise ValueError(f"recv_ns must be an int of ns since the epoch, got {recv_ns!r}")
        if not (isinstance(conn, int) and REST_CONN <= conn < 2**31):
            raise ValueError(f"conn must be a non-negative int32 (or {REST_CONN} for a REST "
                             f"snapshot), got {conn!r}")
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
        return a

    def write_if_full(self) -> bool:
        """Write buffered rows if ``flush_rows`` rows or ``flush_bytes`` payload bytes are
        buffered (rotating: the largest partitions, into the open part files; else a
        commit of new part files); True if it wrote."""
        if (sum(b.rows for b in self.buffers.values()) < self.flush_rows
                and self._bytes < self.flush_bytes):
            return False
        on_write = self.on_write
        t = perf_counter_ns() if on_write is not None else 0
        self._write_some() if self.rotating else self.flush()
        if on_write is not None:
            on_write(perf_counter_ns() - t)
        return True

    #: Rotating: row groups the open part files may hold before the largest are finished.
    MAX_OPEN_ROW_GROUPS = 1000

    def _write_some(self) -> None:
        """Rotating: write the partitions with the most rows until half of ``flush_rows``
        is left (few, large row groups), then finish files if too many row groups are
        open."""
        try:
            keep = self.flush_rows // 2 if self._bytes < self.flush_bytes else 0
            bufs = sorted(self.buffers.values(), key=lambda b: b.rows, reverse=True)
            for i, buf in enumerate(bufs):
                rest = sum(b.rows for b in bufs[i + 1:])
                buf.write_largest(max(0, keep - rest))
            self._bytes = 0
            if sum(b.row_groups for b in self.buffers.values()) > self.MAX_OPEN_ROW_GROUPS:
                for buf in self.buffers.values():
                    buf.roll(buf.row_groups // 2)
        except BaseException as e:
            self._fail_rotation(e)
            raise

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

    def note_event(self, event: dict[str, Any]) -> None:
        """Keep an event that already names its arrival (e.g. a book check's gap) in the
        manifest as it is; past :data:`MAX_EVENTS` it is only counted."""
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
        self.note_event({"arrival": self._arrival, **event})

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
        """Write all buffered rows to new part files and commit them (:meth:`rotate`);
        rotating: append them to the open part files, nothing new is listed."""
        if self.rotating:
            try:
                for buf in self.buffers.values():
                    buf.flush()
            except BaseException as e:
                self._fail_rotation(e)
                raise
            self._bytes = 0
            return
        self._commit()

    def _sync_manifest(self) -> None:
        m = self.manifest
        m["arrivals"] = self._arrival
        m["channels"] = {ch: {"messages": sum(c.values()), "instruments": dict(sorted(c.items()))}
                         for ch, c in sorted(self._channels.items())}
        m["control"] = dict(sorted(self._control.items()))
        for hook in self.manifest_hooks:
            hook(m)
        write_manifest(self.path, m)

    def rotate(self) -> list[dict[str, Any]]:
        """Close the current part files, commit them and return their manifest entries.
        Not rotating: the same as :meth:`flush`.

        The commit (``docs/recording-format.md``): every part file is finished and fsync'd
        under its hidden temporary name; the manifest is rewritten listing them (and naming
        them in ``pending``); only then are they renamed into view. A reader of the
        directory (pandas, DuckDB, simlab) never sees a file the manifest does not list; if
        the process dies between the manifest and the last rename, the next
        :class:`~simlab.store.reader.Recording` opened on it completes the renames.

        If a file or the manifest cannot be written (a full disk), the files of this
        rotation are removed, its rows are lost and the writer goes back to its last
        rotation (arrivals, counts, events), so the directory and the manifest on disk keep
        agreeing; the error is raised with ``failed_path`` naming what could not be written.
        """
        if not self.rotating:
            before = len(self.manifest["files"])
            self.flush()
            return self.manifest["files"][before:]
        if self._closed:
            raise RecordingError(f"{self.path}: writer is closed")
        return self._commit(perf_counter_ns() if self.on_write is not None else None)

    def _commit(self, t: int | None = None) -> list[dict[str, Any]]:
        """Seal every buffer, list the sealed files in the manifest, write it, rename the
        files into view; their entries. ``t``: when the rotation started (timed for
        :attr:`on_write`)."""
        parts: list[PartFile] = []
        try:
            entries = []
            for name, buf in self.buffers.items():
                sealed = buf.seal()
                parts += sealed
                entries += [pf.entry(name) for pf in sealed]
            m = self.manifest
            m["files"] += entries
            for e in entries:
                m["rows"][e["dataset"]] += e["rows"]
            m["pending"] = [e["path"] for e in entries]
            self._bytes = 0
            if t is not None and self.on_write is not None:
                self.on_write(perf_counter_ns() - t)
            self._sync_manifest()
        except BaseException as e:
            self._fail_rotation(e)
            raise
        # committed: from here on the files are the recording's, never removed
        crash_point("manifest-written")
        for buf in self.buffers.values():
            buf.listed()
        self._checkpoint()
        pf = None
        try:
            for pf in parts:
                pf.publish()
            for d in sorted({p.path.parent for p in parts}):
                fsync_dir(d)
        except OSError as e:
            self.failed_path = pf.rel if pf is not None else MANIFEST
            log.error("%s: %s is listed in the manifest but could not be renamed into view "
                      "(%s); the next reader of the recording completes the rename",
                      self.path, self.failed_path, e)
            raise
        crash_point("committed")
        return entries

    def _fail_rotation(self, e: BaseException) -> None:
        """Undo the current, uncommitted rotation: its hidden part files and counts."""
        self.failed_path = self._failing(e)
        for buf in self.buffers.values():
            buf.discard()
            buf.current = None
        self._restore()
        log.error("%s: could not write %s (%s: %s); the rows since the last rotation are "
                  "lost, the files listed before are intact", self.path, self.failed_path,
                  type(e).__name__, e)

    #: What a failed :meth:`rotate` could not write (relative path or ``manifest.json``).
    failed_path: str | None = None

    def _failing(self, e: BaseException) -> str:
        for buf in self.buffers.values():
            if buf.current is not None:
                return buf.current
        name = getattr(e, "filename", None)
        if isinstance(name, str):
            try:
                return Path(name).relative_to(self.path).as_posix()
            except ValueError:
                return name
        return MANIFEST

    def _checkpoint(self) -> None:
        """Remember the state of the last rotation (what the files on disk hold)."""
        m = self.manifest
        self._saved = {
            "arrival": self._arrival,
            "channels": {k: Counter(v) for k, v in self._channels.items()},
            "control": Counter(self._control),
            "malformed": json.loads(json.dumps(m["malformed"])),
            "first_recv_ns": m["first_recv_ns"], "last_recv_ns": m["last_recv_ns"],
            "events": len(m["events"]), "events_dropped": m["events_dropped"],
            "files": len(m["files"]), "rows": dict(m["rows"]),
            "pending": list(m.get("pending", [])),
        }

    def _restore(self) -> None:
        sv, m = self._saved, self.manifest
        self._arrival = sv["arrival"]
        self._channels = {k: Counter(v) for k, v in sv["channels"].items()}
        self._control = Counter(sv["control"])
        m["malformed"] = json.loads(json.dumps(sv["malformed"]))
        m["first_recv_ns"], m["last_recv_ns"] = sv["first_recv_ns"], sv["last_recv_ns"]
        del m["events"][sv["events"]:]
        m["events_dropped"] = sv["events_dropped"]
        del m["files"][sv["files"]:]
        m["rows"] = dict(sv["rows"])
        m["pending"] = list(sv["pending"])
        self._bytes = 0

    def close(self) -> None:
        """Flush everything and mark the recording complete. Idempotent."""
        if self._closed:
            return
        self.manifest["complete"] = True
        try:
            self.rotate() if self.rotating else self.flush()
        except BaseException:
            self.manifest["complete"] = False
            raise
        self._closed = True

    def abort(self, reason: str) -> None:
        """Flush what is buffered (it is valid data) but leave the recording marked
        incomplete, with ``reason``. Used when the context manager exits on an error."""
        if self._closed:
            return
        self.manifest["complete"] = False
        self.manifest["error"] = reason
        try:
            if self.rotating:
                try:
                    self.rotate()
                except Exception:
                    # its rows are lost; record the error in the last rotation's manifest
                    self.manifest["error"] = reason
                    self._sync_manifest()
                    raise
            else:
                self.flush()
        except Exception as e:  # the original error matters more; files stay consistent
            log.error("%s: could not flush after %s: %s", self.path, reason, e)
        finally:
            self._closed = True


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

    def flush(b: DatasetBuffer) -> list[dict[str, Any]]:
        b.flush()  # hidden files under .rebuild/, shown to no reader: rename them now
        out = [pf.entry(b.dataset) for pf in b.finished]
        for pf in b.finished:
            rename_into_view(pf.path)
        b.listed()
        return out

    for f in rec.iter_raw():
        norm = normalize_raw(f.payload, f.conn, f.channel, f.inst, rec.wire_format)
        if norm.rows is None or norm.kind == "malformed":
            continue
        key = (*partition_of(norm), utc_date(f.recv_ns))
        buffers[norm.table].extend(key, f.arrival, f.recv_ns, norm.rows)
        if sum(b.rows for b in buffers.values()) >= flush_rows:
            for b in buffers.values():
                entries += flush(b)
    for b in buffers.values():
        entries += flush(b)
    _swap(root, work)
    m = rec.manifest
    m["files"] = [e for e in m["files"] if e["dataset"] not in DERIVED] + entries
    m["pending"] = []  # Recording() above completed any interrupted commit
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
