"""Read a simlab recording: tables in arrival order, or raw frames streamed.

Only files listed in the manifest are read; anything else in the directory (a temporary
file left by a killed writer, a stray copy) is ignored here and reported by
:func:`simlab.store.verify.verify`. Opening a local recording whose writer was killed in
the middle of a commit (the manifest lists files not yet renamed into view) completes the
commit (:func:`complete_commit`). The filters of every method are keyword-only, and a
channel or instrument the recording does not hold is an :class:`UnknownStreamError`.
"""

from __future__ import annotations

import heapq
import logging
import re
from collections.abc import Collection, Iterator
from pathlib import Path, PurePath, PurePosixPath
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow.fs import FileSystem, FileType

from simlab.okx.frames import RawFrame

from .atomic import fsync_dir, hidden, rename_into_view
from .manifest import RecordingError, join_path, read_manifest
from .schema import LEVELS, MANIFEST, RAW, SCHEMAS, TRADES

if TYPE_CHECKING:
    from simlab.monitor import Monitor

_BATCH_ROWS = 4096
#: Names listed in an :class:`UnknownStreamError` before "..." (a recording may hold many).
_SHOWN_NAMES = 20
log = logging.getLogger("simlab.store")


class UnknownStreamError(RecordingError, ValueError):
    """A channel or instrument filter names something the recording does not hold; the
    message names what it does hold. A ``ValueError`` (a bad argument) and a
    :class:`RecordingError` (so the CLI reports it as an error, exit 2, not a traceback).

    >>> raise UnknownStreamError("instrument 'BTC-UDST' is not in rec")
    Traceback (most recent call last):
    ...
    simlab.store.reader.UnknownStreamError: instrument 'BTC-UDST' is not in rec
    """


def complete_commit(root: Path, manifest: dict[str, Any]) -> list[str]:
    """Finish a commit that a killed writer left half done: every file the manifest
    names in ``pending`` that is still under its hidden temporary name is renamed into
    view. Returns the paths renamed (usually none). A directory that cannot be changed
    (read-only) is left as it is: :class:`Recording` then reads those temporaries.

    >>> complete_commit(Path("rec"), {"pending": []})
    []
    """
    done = []
    for rel in manifest.get("pending") or ():
        path = root / rel
        if path.exists() or not hidden(path).is_file():
            continue
        try:
            if rename_into_view(path):
                done.append(rel)
        except OSError as e:
            log.warning("%s: cannot complete the interrupted commit of %s (%s); reading its "
                        "hidden temporary instead", root, rel, e)
    for d in sorted({(root / rel).parent for rel in done}):
        fsync_dir(d)
    if done:
        log.warning("%s: completed an interrupted commit: %d listed files renamed into view",
                    root, len(done))
    return done


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
        self._pending = frozenset(self.manifest.get("pending") or ())
        #: Files this open renamed into view, completing a killed writer's commit.
        self.recovered: list[str] = ([] if self.filesystem is not None or not self._pending
                                     else complete_commit(self.path, self.manifest))
        self._known: tuple[frozenset[str], frozenset[str]] | None = None

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

    def files(self, dataset: str, *, channel: str | Collection[str] | None = None,
              inst: str | Collection[str] | None = None) -> list[dict[str, Any]]:
        """Manifest entries of one dataset, optionally of some channels / instruments (a
        name or a collection of names; :class:`UnknownStreamError` for a name the
        recording does not hold).

        >>> Recording("rec").files("raw", channel="books")[0]["path"]  # doctest: +SKIP
        'raw/channel=books/inst=BTC-USD-220527/date=2022-05-13/part-000000.parquet'
        """
        if dataset not in SCHEMAS:
            raise ValueError(f"dataset must be one of {sorted(SCHEMAS)}, got {dataset!r}")
        chs, insts = _names(channel, "channel"), _names(inst, "inst")
        self._check_known(chs, insts)
        return [f for f in self.manifest["files"] if f["dataset"] == dataset
                and (chs is None or f.get("channel") in chs)
                and (insts is None or f.get("inst") in insts)]

    def streams(self) -> tuple[frozenset[str], frozenset[str]]:
        """(channels, instruments) the recording holds: every partition value of its files
        and every stream its manifest counts (``_event``/``_malformed``/``_none`` included).

        >>> Recording("rec").streams()                                 # doctest: +SKIP
        (frozenset({'books', 'trades', '_event'}), frozenset({'BTC-USDT', '_none'}))
        """
        if self._known is None:
            m = self.manifest
            chs = {f.get("channel") for f in m["files"]} | set(m.get("channels") or {})
            insts = {f.get("inst") for f in m["files"]}
            for c in (m.get("channels") or {}).values():
                insts.update(c.get("instruments") or {})
            self._known = frozenset(chs - {None}), frozenset(insts - {None})
        return self._known

    def _check_known(self, chs: frozenset[str] | None, insts: frozenset[str] | None) -> None:
        if chs is None and insts is None:
            return
        known_chs, known_insts = self.streams()
        for what, asked, known in (("channel", chs, known_chs), ("instrument", insts,
                                                                  known_insts)):
            unknown = sorted((asked or set()) - known)
            if unknown:
                names = sorted(known)
                shown = ", ".join(names[:_SHOWN_NAMES]) + (", ..." if len(names) >
                                                           _SHOWN_NAMES else "")
                raise UnknownStreamError(
                    f"{what} {', '.join(map(repr, unknown))} is not in the recording "
                    f"{self.path}; it has {len(names)} {what}s: {shown or 'none'}")

    def _local(self, rel: str) -> Path:
        """The local file of a listed path (its hidden temporary while a killed writer's
        commit could not be completed); RecordingError when missing."""
        path = self.path / rel
        if path.is_file():
            return path
        if rel in self._pending and hidden(path).is_file():
            return hidden(path)
        raise RecordingError(f"{path}: listed in the manifest but missing")

    def _open(self, entry: dict[str, Any]) -> pq.ParquetFile:
        if self.filesystem is None:
            source: Any = self._local(entry["path"])
        else:
            source = self._open_remote(entry["path"])
        try:
            return pq.ParquetFile(source, page_checksum_verification=True)
        except (pa.ArrowException, OSError) as e:
            raise RecordingError(f"{self._where(entry['path'])}: not a readable Parquet file "
                                 f"({e})") from None

    def _open_remote(self, rel: str) -> Any:
        path = join_path(self.root, rel)
        try:
            try:
                return self.filesystem.open_input_file(path)
            except (FileNotFoundError, IsADirectoryError):
                if rel not in self._pending:
                    raise
                return self.filesystem.open_input_file(hidden(PurePosixPath(path)).as_posix())
        except (FileNotFoundError, IsADirectoryError):
            raise RecordingError(f"{self._where(rel)}: listed in the manifest but missing"
                                 ) from None
        except (pa.ArrowException, OSError) as e:
            raise RecordingError(f"{self._where(rel)}: cannot be opened ({e})") from None

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

    def table(self, dataset: str, *, channel: str | Collection[str] | None = None,
              inst: str | Collection[str] | None = None,
              columns: list[str] | None = None) -> pa.Table:
        """One dataset as a pyarrow Table sorted by arrival (rows of one frame keep their
        wire order), with ``channel`` and ``inst`` columns from the partitions. ``columns``
        reads only those (``arrival`` is always read); the partition columns are added.

        >>> Recording("rec").table("levels", inst="BTC-USDT", columns=["price"])  # doctest: +SKIP
        """
        entries = self.files(dataset, channel=channel, inst=inst)
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

    def stream_table(self, dataset: str, *, channel: str, inst: str, columns: list[str],
                     read_dictionary: list[str] | None = None) -> pa.Table:
        """The columns of one stream (one channel and instrument) in arrival order, read
        as fast as Parquet allows: no partition columns, string columns in
        ``read_dictionary`` as dictionary arrays, and no sort (a stream's part files hold
        disjoint, increasing arrival ranges; checked, and sorted only if not).

        >>> Recording("rec").stream_table("levels", channel="books", inst="BTC-USDT",
        ...                               columns=["price", "size"]).num_rows  # doctest: +SKIP
        4968
        """
        entries = sorted(self.files(dataset, channel=channel, inst=inst),
                         key=lambda e: (e.get("arrival_min", 0), e["path"]))
        cols = ["arrival"] + [c for c in columns if c != "arrival"]
        unknown = [c for c in cols if c not in SCHEMAS[dataset].names]
        if unknown:
            raise ValueError(f"columns {unknown} are not in the {dataset} table")
        if not entries:
            return pa.schema([SCHEMAS[dataset].field(c) for c in cols]).empty_table()
        import pyarrow.dataset as ds  # here: it imports pandas, which writers never need

        paths = self._existing([e["path"] for e in entries])
        fmt = ds.ParquetFileFormat(
            read_options=ds.ParquetReadOptions(dictionary_columns=read_dictionary or []),
            default_fragment_scan_options=ds.ParquetFragmentScanOptions(
                page_checksum_verification=True))
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
            return [str(self._local(rel)) for rel in rels]
        paths = [join_path(self.root, rel) for rel in rels]
        try:
            # one call for all files: one listing, not one request per file, on object stores
            infos = self.filesystem.get_file_info(paths)
        except (pa.ArrowException, OSError) as e:
            raise RecordingError(f"{self.path}: cannot list the recording's files ({e})"
                                 ) from None
        for i, (rel, info) in enumerate(zip(rels, infos, strict=True)):
            if info.type == FileType.File:
                continue
            tmp = hidden(PurePosixPath(paths[i])).as_posix()
            if rel in self._pending and self.filesystem.get_file_info(tmp).type == FileType.File:
                paths[i] = tmp  # a killed writer's commit, not completed: read the temporary
                continue
            raise RecordingError(f"{self._where(rel)}: listed in the manifest but missing")
        return paths

    def raw_table(self, *, channel: str | Collection[str] | None = None,
                  inst: str | Collection[str] | None = None) -> pa.Table:
        """Every raw frame: arrival, recv_ns, conn, payload, channel, inst.

        >>> Recording("rec").raw_table(channel="books").num_rows      # doctest: +SKIP
        1985
        """
        return self.table(RAW, channel=channel, inst=inst)

    def levels_table(self, *, channel: str | Collection[str] | None = None,
                     inst: str | Collection[str] | None = None) -> pa.Table:
        """Book level changes, one row per level, in arrival then wire order.

        >>> Recording("rec").levels_table(inst="BTC-USDT").num_rows    # doctest: +SKIP
        39347
        """
        return self.table(LEVELS, channel=channel, inst=inst)

    def trades_table(self, *, channel: str | Collection[str] | None = None,
                     inst: str | Collection[str] | None = None) -> pa.Table:
        """Trades, one row per trade, in arrival order.

        >>> Recording("rec").trades_table(inst="BTC-USDT").num_rows    # doctest: +SKIP
        74
        """
        return self.table(TRADES, channel=channel, inst=inst)

    def iter_raw(self, *, channel: str | Collection[str] | None = None,
                 inst: str | Collection[str] | None = None,
                 from_arrival: int = 0) -> Iterator[RawFrame]:
        """Stream raw frames in arrival order with bounded memory, from ``from_arrival`` on.

        Each part file is sorted by arrival; a k-way merge opens a file only once the merge
        reaches its first arrival, and reads it in batches.

        >>> next(Recording("rec").iter_raw(channel="books")).arrival   # doctest: +SKIP
        1
        """
        entries = sorted((e for e in self.files(RAW, channel=channel, inst=inst)
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


def _names(v: str | Collection[str] | None, what: str) -> frozenset[str] | None:
    if v is None:
        return None
    try:
        names = frozenset((v,) if isinstance(v, str) else v)
    except TypeError:  # not a collection: one name, refused below unless a str
        names = frozenset((v,))
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise TypeError(f"{what} must be a name or a collection of names (str), got "
                        f"{bad[0]!r}")
    return names


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
