"""Read a simlab recording: tables in arrival order, or raw frames streamed.

Only files listed in the manifest are read; anything else in the directory (a temporary
file left by a killed writer, a stray copy) is ignored here and reported by
:func:`simlab.store.verify.verify`.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Collection, Iterator
from pathlib import Path, PurePath, PurePosixPath
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow.fs import FileSystem, FileType

from simlab.okx.frames import RawFrame

from .manifest import RecordingError, join_path, read_manifest
from .schema import LEVELS, MANIFEST, RAW, SCHEMAS, TRADES

if TYPE_CHECKING:
    from simlab.monitor import Monitor

_BATCH_ROWS = 4096


class Recording:
    """A recording directory opened for reading: a local path, a URI that
    :meth:`pyarrow.fs.FileSystem.from_uri` understands (``file:///abs/rec``,
    ``s3://bucket/prefix/rec``, ``gs://...``, ``hdfs://...``), or a path inside an explicit
    ``filesystem`` (any :class:`pyarrow.fs.FileSystem`). The manifest and every Parquet
    file are read through that filesystem; a local path is read as it always was.

    ``path`` is how the recording is named in messages: the path, or the URI as given.

    >>> rec = Recording("rec")                                      # doctest: +SKIP
    >>> rec.levels_table(channel="books", inst="BTC-USDT").num_rows  # doctest: +SKIP
    39347
    >>> next(rec.iter_raw()).payload[:20]                           # doctest: +SKIP
    b'{"event":"subscribe"'
    >>> Recording("s3://bucket/recs/day1").path                     # doctest: +SKIP
    's3://bucket/recs/day1'
    >>> Recording("file:///no/such/rec")
    Traceback (most recent call last):
    ...
    simlab.store.manifest.RecordingError: file:///no/such/rec: no such recording directory
    """

    def __init__(self, path: str | Path, filesystem: FileSystem | None = None):
        self.filesystem, self.root, self.path = _locate(path, filesystem)
        self.manifest: dict[str, Any] = read_manifest(self.root, self.filesystem,
                                                      str(self.path))

    def __repr__(self) -> str:
        fs = "" if self.filesystem is None else f", filesystem={self.filesystem.type_name}"
        return f"Recording({str(self.path)!r}{fs}, arrivals={self.manifest.get('arrivals')})"

    @property
    def name(self) -> str:
        """A short name: the recording directory's last component.

        >>> Recording("s3://bucket/recs/day1/").name                    # doctest: +SKIP
        'day1'
        """
        return PurePosixPath(str(self.path).rstrip("/")).name or str(self.path)

    def _where(self, rel: str) -> str:
        """A file of the recording as messages name it."""
        if self.filesystem is None:
            return str(self.path / rel)
        return f"{str(self.path).rstrip('/')}/{rel}"

    @property
    def wire_format(self) -> str:
        return self.manifest.get("wire_format", "okx-ws")

    def monitor(self) -> Monitor | None:
        """The live recorder's performance monitor as it was at the last rotation (manifest
        ``live.monitor``: stage latencies, feed latency, message rates, resource use), a
        read-only :class:`simlab.monitor.Monitor` to tabulate or plot; None for a recording
        without one (imported, or recorded without a monitor).

        >>> Recording("rec").monitor().latency_frame()              # doctest: +SKIP
        """
        summary = (self.manifest.get("live") or {}).get("monitor")
        if summary is None:
            return None
        from simlab.monitor import Monitor

        try:
            return Monitor.from_summary(summary)
        except ValueError as e:
            raise RecordingError(f"{self._where(MANIFEST)}: unreadable live.monitor "
                                 f"({e})") from None

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
        if self.filesystem is None:
            path = self.path / entry["path"]
            if not path.is_file():
                raise RecordingError(f"{path}: listed in the manifest but missing")
            source: Any = path
        else:
            try:
                source = self.filesystem.open_input_file(join_path(self.root, entry["path"]))
            except (FileNotFoundError, IsADirectoryError):
                raise RecordingError(f"{self._where(entry['path'])}: listed in the manifest "
                                     "but missing") from None
            except (pa.ArrowException, OSError) as e:
                raise RecordingError(f"{self._where(entry['path'])}: cannot be opened ({e})"
                                     ) from None
        try:
            return pq.ParquetFile(source)
        except (pa.ArrowException, OSError) as e:
            raise RecordingError(f"{self._where(entry['path'])}: not a readable Parquet file "
                                 f"({e})") from None

    def _read(self, entry: dict[str, Any], columns: list[str] | None = None) -> pa.Table:
        pf = self._open(entry)
        try:
            t = pf.read(columns=columns)
        except (pa.ArrowException, OSError) as e:
            raise RecordingError(f"{self._where(entry['path'])}: damaged Parquet file ({e})"
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
        import pyarrow.dataset as ds  # here: it imports pandas, which writers never need

        paths = self._existing([e["path"] for e in entries])
        fmt = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(
            dictionary_columns=read_dictionary or []))
        try:
            # one scan over all files: they are read in parallel, in the order given
            t = ds.dataset(paths, format=fmt, filesystem=self.filesystem).to_table(columns=cols)
        except (pa.ArrowException, OSError) as err:
            raise RecordingError(f"{self.path}: a {dataset} file of {channel}:{inst} is not "
                                 f"readable Parquet ({err})") from None
        arr = t["arrival"]
        if len(arr) > 1 and pc.any(pc.less(arr.slice(1), arr.slice(0, len(arr) - 1))).as_py():
            t = t.take(pc.sort_indices(t, [("arrival", "ascending")]))
        return t

    def _existing(self, rels: list[str]) -> list[str]:
        """The files' paths for a scan; :class:`RecordingError` naming the first missing."""
        if self.filesystem is None:
            paths = []
            for rel in rels:
                path = self.path / rel
                if not path.is_file():
                    raise RecordingError(f"{path}: listed in the manifest but missing")
                paths.append(str(path))
            return paths
        paths = [join_path(self.root, rel) for rel in rels]
        try:
            # one call for all files: one listing, not one request per file, on object stores
            infos = self.filesystem.get_file_info(paths)
        except (pa.ArrowException, OSError) as e:
            raise RecordingError(f"{self.path}: cannot list the recording's files ({e})"
                                 ) from None
        for rel, info in zip(rels, infos, strict=True):
            if info.type != FileType.File:
                raise RecordingError(f"{self._where(rel)}: listed in the manifest but missing")
        return paths

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
            raise RecordingError(f"{self._where(entry['path'])}: damaged Parquet file ({e})"
                                 ) from None


def _locate(path: str | PurePath, filesystem: FileSystem | None
            ) -> tuple[FileSystem | None, str, Path | str]:
    """(filesystem or None for a plain local path, root inside it, display name)."""
    if filesystem is not None and not isinstance(filesystem, FileSystem):
        raise TypeError("filesystem must be a pyarrow.fs.FileSystem or None, got "
                        f"{type(filesystem).__name__} (wrap an fsspec filesystem in "
                        "pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(fs)))")
    if not isinstance(path, (str, PurePath)):
        raise TypeError(f"recording must be a path or a URI string, got {type(path).__name__}")
    uri = isinstance(path, str) and _URI.match(path) is not None
    if filesystem is None and not uri:
        return None, str(path), Path(path)
    if filesystem is not None:
        if uri:
            raise ValueError(f"recording {path!r}: give either a URI or a path inside "
                             "filesystem=, not both")
        root = path.as_posix() if isinstance(path, PurePath) else path
        base = getattr(filesystem, "base_path", None)  # a SubTreeFileSystem's root
        shown = join_path(base, root) if base and root not in ("", ".") else base or root
        return filesystem, root, shown.rstrip("/") or shown
    try:
        fs, root = FileSystem.from_uri(path)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise RecordingError(f"{path}: pyarrow cannot open this URI ({e})") from None
    return fs, root, path


# a URI scheme (RFC 3986) then "://": "file:///x", "s3://b/p"; a plain path never has one
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


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
