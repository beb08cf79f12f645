"""Read a simlab recording: tables in arrival order, or raw frames streamed.

Only files listed in the manifest are read; anything else in the directory (a temporary
file left by a killed writer, a stray copy) is ignored here and reported by
:func:`simlab.store.verify.verify`.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from simlab.okx.frames import RawFrame

from .manifest import RecordingError, read_manifest
from .schema import LEVELS, RAW, SCHEMAS, TRADES

_BATCH_ROWS = 4096


class Recording:
    """A recording directory opened for reading.

    >>> rec = Recording("rec")                                      # doctest: +SKIP
    >>> rec.levels_table(channel="books", inst="BTC-USDT").num_rows  # doctest: +SKIP
    39347
    >>> next(rec.iter_raw()).payload[:20]                           # doctest: +SKIP
    b'{"event":"subscribe"'
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.manifest: dict[str, Any] = read_manifest(self.path)

    def __repr__(self) -> str:
        return f"Recording({str(self.path)!r}, arrivals={self.manifest.get('arrivals')})"

    @property
    def wire_format(self) -> str:
        return self.manifest.get("wire_format", "okx-ws")

    def files(self, dataset: str, channel: str | Collection[str] | None = None,
              inst: str | Collection[str] | None = None) -> list[dict[str, Any]]:
        """Manifest entries of one dataset, optionally of some channels / instruments (a
        name or a collection of names).

        >>> Recording("rec").files("raw", channel="books")[0]["path"]  # doctest: +SKIP
        'raw/channel=books/inst=BTC-USD-220527/date=2022-05-13/part-000000.parquet'
        """
        if dataset not in SCHEMAS:
            raise ValueError(f"dataset must be one of {sorted(SCHEMAS)}, got {dataset!r}")
        chs, insts = _names(channel), _names(inst)
        return [f for f in self.manifest["files"] if f["dataset"] == dataset
                and (chs is None or f.get("channel") in chs)
                and (insts is None or f.get("inst") in insts)]

    def _open(self, entry: dict[str, Any]) -> pq.ParquetFile:
        path = self.path / entry["path"]
        if not path.is_file():
            raise RecordingError(f"{path}: listed in the manifest but missing")
        try:
            return pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as e:
            raise RecordingError(f"{path}: not a readable Parquet file ({e})") from None

    def _read(self, entry: dict[str, Any], columns: list[str] | None = None) -> pa.Table:
        pf = self._open(entry)
        try:
            t = pf.read(columns=columns)
        except (pa.ArrowException, OSError) as e:
            raise RecordingError(f"{self.path / entry['path']}: damaged Parquet file ({e})"
                                 ) from None
        n = t.num_rows
        return (t.append_column("channel", pa.array([entry.get("channel")] * n, pa.string()))
                 .append_column("inst", pa.array([entry.get("inst")] * n, pa.string())))

    def table(self, dataset: str, channel: str | Collection[str] | None = None,
              inst: str | Collection[str] | None = None,
              columns: list[str] | None = None) -> pa.Table:
        """One dataset as a pyarrow Table sorted by arrival (rows of one frame keep their
        wire order), with ``channel`` and ``inst`` columns from the partitions. ``columns``
        reads only those (``arrival`` is always read); the partition columns are added."""
        entries = self.files(dataset, channel, inst)
        schema = SCHEMAS[dataset]
        if columns is not None:
            unknown = [c for c in columns if c not in schema.names]
            if unknown:
                raise ValueError(f"columns {unknown} are not in the {dataset} table; it has "
                                 f"{schema.names}")
            keep = ["arrival"] + [c for c in columns if c != "arrival"]
            schema = pa.schema([schema.field(c) for c in keep])
        schema = schema.append(pa.field("channel", pa.string())).append(
            pa.field("inst", pa.string()))
        if not entries:
            return schema.empty_table()
        cols = None if columns is None else schema.names[:-2]
        t = pa.concat_tables([self._read(e, cols).cast(schema) for e in entries])
        # sort_indices is stable, so a frame's rows (all in one file) keep their order
        return t.take(pc.sort_indices(t, [("arrival", "ascending")]))

    def stream_table(self, dataset: str, channel: str, inst: str, columns: list[str],
                     read_dictionary: list[str] | None = None) -> pa.Table:
        """The columns of one stream (one channel and instrument) in arrival order, read
        as fast as Parquet allows: no partition columns, string columns in
        ``read_dictionary`` as dictionary arrays, and no sort (a stream's part files hold
        disjoint, increasing arrival ranges; checked, and sorted only if not).

        >>> Recording("rec").stream_table("levels", "books", "BTC-USDT",
        ...                               ["price", "size"]).num_rows   # doctest: +SKIP
        4968
        """
        entries = sorted(self.files(dataset, channel, inst),
                         key=lambda e: (e.get("arrival_min", 0), e["path"]))
        cols = ["arrival"] + [c for c in columns if c != "arrival"]
        unknown = [c for c in cols if c not in SCHEMAS[dataset].names]
        if unknown:
            raise ValueError(f"columns {unknown} are not in the {dataset} table")
        if not entries:
            return pa.schema([SCHEMAS[dataset].field(c) for c in cols]).empty_table()
        paths = []
        for e in entries:
            path = self.path / e["path"]
            if not path.is_file():
                raise RecordingError(f"{path}: listed in the manifest but missing")
            paths.append(str(path))
        fmt = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(
            dictionary_columns=read_dictionary or []))
        try:
            # one scan over all files: they are read in parallel, in the order given
            t = ds.dataset(paths, format=fmt).to_table(columns=cols)
        except (pa.ArrowException, OSError) as err:
            raise RecordingError(f"{self.path}: a {dataset} file of {channel}:{inst} is not "
                                 f"readable Parquet ({err})") from None
        arr = t["arrival"]
        if len(arr) > 1 and pc.any(pc.less(arr.slice(1), arr.slice(0, len(arr) - 1))).as_py():
            t = t.take(pc.sort_indices(t, [("arrival", "ascending")]))
        return t

    def raw_table(self, channel: str | None = None, inst: str | None = None) -> pa.Table:
        """Every raw frame: arrival, recv_ns, conn, payload, channel, inst."""
        return self.table(RAW, channel, inst)

    def levels_table(self, channel: str | None = None, inst: str | None = None) -> pa.Table:
        """Book level changes, one row per level, in arrival then wire order."""
        return self.table(LEVELS, channel, inst)

    def trades_table(self, channel: str | None = None, inst: str | None = None) -> pa.Table:
        """Trades, one row per trade, in arrival order."""
        return self.table(TRADES, channel, inst)

    def iter_raw(self, channel: str | Collection[str] | None = None,
                 inst: str | Collection[str] | None = None,
                 from_arrival: int = 0) -> Iterator[RawFrame]:
        """Stream raw frames in arrival order with bounded memory, from ``from_arrival`` on.

        Each part file is sorted by arrival; a k-way merge opens a file only once the merge
        reaches its first arrival, and reads it in batches.
        """
        entries = sorted((e for e in self.files(RAW, channel, inst)
                          if e.get("arrival_max", from_arrival) >= from_arrival),
                         key=lambda e: (e.get("arrival_min", 0), e["path"]))
        return _merge(entries, lambda e: self._rows(e, from_arrival))

    def _rows(self, entry: dict[str, Any], from_arrival: int = 0) -> Iterator[RawFrame]:
        pf = self._open(entry)
        ch, inst = entry.get("channel"), entry.get("inst")
        try:
            for b in pf.iter_batches(batch_size=_BATCH_ROWS,
                                     columns=["arrival", "recv_ns", "conn", "payload"]):
                cols = [c.to_pylist() for c in b.columns]
                for a, r, c, p in zip(*cols, strict=True):
                    if a >= from_arrival:
                        yield RawFrame(a, r, c, ch, inst, p)
        except (pa.ArrowException, OSError) as e:
            raise RecordingError(f"{self.path / entry['path']}: damaged Parquet file ({e})"
                                 ) from None


def _names(v: str | Collection[str] | None) -> frozenset[str] | None:
    if v is None:
        return None
    return frozenset((v,)) if isinstance(v, str) else frozenset(v)


def _merge(entries: list[dict[str, Any]], rows) -> Iterator[RawFrame]:
    pending = list(reversed(entries))  # pop() gives the smallest arrival_min
    heap: list[tuple[int, int, RawFrame, Iterator[RawFrame]]] = []
    serial = 0

    def push(it: Iterator[RawFrame]) -> None:
        nonlocal serial
        row = next(it, None)
        if row is not None:
            heapq.heappush(heap, (row.arrival, serial, row, it))
            serial += 1

    while pending or heap:
        while pending and (not heap or pending[-1].get("arrival_min", 0) <= heap[0][0]):
            push(rows(pending.pop()))
        if not heap:
            continue
        _, _, row, it = heapq.heappop(heap)
        yield row
        push(it)
