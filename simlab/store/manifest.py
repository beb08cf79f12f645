"""The recording's ``manifest.json``: create, write atomically, read and validate.

The manifest is a plain JSON object (described in ``docs/recording-format.md``); it is the
only list of the recording's data files. It is rewritten with write-to-temporary, fsync and
rename, so a reader sees either the old or the new version, never a torn one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyarrow.fs import FileSystem, FileType

from simlab import __version__
from simlab.okx.normalize import WIRE_FORMATS, WIRE_WS

from .atomic import atomic_write
from .schema import DATASETS, FORMAT_NAME, FORMAT_VERSION, MANIFEST


class RecordingError(Exception):
    """A recording that cannot be used: missing, not a recording, or a damaged file.

    The message names the directory or file concerned.
    """


def utc_now() -> str:
    """Current UTC time as ISO 8601 with a ``Z`` (e.g. ``2026-05-14T09:30:00.123456Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ns_to_iso(ns: int | None) -> str | None:
    """A time in ns since the epoch as ISO 8601 UTC, or None.

    >>> ns_to_iso(1652459225503749100)
    '2022-05-13T16:27:05.503749Z'
    """
    if ns is None:
        return None
    t = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_manifest(source: dict[str, Any] | None, wire_format: str) -> dict[str, Any]:
    """A fresh manifest for an empty recording.

    >>> m = new_manifest({"importer": "okx-capture"}, "okx-ws")
    >>> m["format_version"], m["complete"], m["files"]
    (1, False, [])
    """
    now = utc_now()
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "simlab_version": __version__,
        "created": now,
        "updated": now,
        "complete": False,
        "source": dict(source or {}),
        "wire_format": wire_format,
        "arrivals": 0,
        "first_recv_ns": None,
        "last_recv_ns": None,
        "rows": {d: 0 for d in DATASETS},
        "instruments": {},
        "channels": {},
        "control": {},
        "malformed": {"count": 0, "reasons": {}, "examples": []},
        "events": [],
        "events_dropped": 0,
        "integrity": {},
        "files": [],
        "history": [],
    }


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Write ``root/manifest.json`` atomically (temporary file, fsync, rename)."""
    manifest["updated"] = utc_now()
    data = json.dumps(manifest, indent=1, sort_keys=False).encode()
    atomic_write(Path(root) / MANIFEST, lambda f: f.write(data))


def read_manifest(root: Path | str, filesystem: FileSystem | None = None,
                  name: str | None = None) -> dict[str, Any]:
    """Read and check ``root/manifest.json``; :class:`RecordingError` naming the path if
    the directory or manifest is missing or is not a simlab manifest.

    With ``filesystem`` (a :mod:`pyarrow.fs` filesystem), ``root`` is a path inside it and
    ``name`` (default ``root``) is how errors name the recording, e.g. its URI.

    >>> import pyarrow.fs
    >>> read_manifest("no/such/rec", pyarrow.fs.LocalFileSystem(), name="file:///no/such/rec")
    Traceback (most recent call last):
    ...
    simlab.store.manifest.RecordingError: file:///no/such/rec: no such recording directory
    """
    if filesystem is not None:
        return _read_manifest_fs(str(root), filesystem, str(root) if name is None else name)
    root = Path(root)
    if not root.exists():
        raise RecordingError(f"{root}: no such recording directory")
    if not root.is_dir():
        raise RecordingError(f"{root}: not a directory; a recording is a directory with "
                             f"{MANIFEST}")
    path = root / MANIFEST
    if not path.is_file():
        raise RecordingError(f"{root}: no {MANIFEST}; not a simlab recording (or its writer "
                             "never started)")
    try:
        m = json.loads(path.read_bytes())
    except (ValueError, OSError) as e:
        raise RecordingError(f"{path}: unreadable manifest ({e})") from None
    _check(m, path)
    return m


def _read_manifest_fs(root: str, fs: FileSystem, name: str) -> dict[str, Any]:
    where = f"{name.rstrip('/')}/{MANIFEST}"
    try:
        # open first: on object storage every metadata call is a round trip
        with fs.open_input_stream(join_path(root, MANIFEST)) as f:
            data = f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        kind = fs.get_file_info(root).type
        if kind == FileType.NotFound:
            raise RecordingError(f"{name}: no such recording directory") from None
        if kind != FileType.Directory:
            raise RecordingError(f"{name}: not a directory; a recording is a directory with "
                                 f"{MANIFEST}") from None
        raise RecordingError(f"{name}: no {MANIFEST}; not a simlab recording (or its writer "
                             "never started)") from None
    except (pa.ArrowException, OSError) as e:
        raise RecordingError(f"{where}: unreadable manifest ({e})") from None
    try:
        m = json.loads(data)
    except ValueError as e:
        raise RecordingError(f"{where}: unreadable manifest ({e})") from None
    _check(m, where)
    return m


def join_path(root: str, rel: str) -> str:
    """``rel`` inside ``root`` in a pyarrow filesystem's ``/``-separated paths (an empty
    root is the filesystem's own root, as in a ``SubTreeFileSystem``).

    >>> join_path("bucket/recs/day1/", "raw/part-0.parquet"), join_path("", "manifest.json")
    ('bucket/recs/day1/raw/part-0.parquet', 'manifest.json')
    """
    if root in ("", "."):
        return rel
    return f"{root.rstrip('/')}/{rel}"


def _check(m: Any, path: Path | str) -> None:
    if not isinstance(m, dict) or m.get("format") != FORMAT_NAME:
        raise RecordingError(f"{path}: not a simlab manifest (expected \"format\": "
                             f"\"{FORMAT_NAME}\")")
    v = m.get("format_version")
    if not isinstance(v, int) or v > FORMAT_VERSION:
        raise RecordingError(f"{path}: format_version {v!r} is not supported (this simlab "
                             f"reads up to {FORMAT_VERSION})")
    wire = m.get("wire_format", WIRE_WS)
    if wire not in WIRE_FORMATS:
        raise RecordingError(f"{path}: wire_format {wire!r} is not one of {list(WIRE_FORMATS)}")
    files = m.get("files")
    if not isinstance(files, list):
        raise RecordingError(f"{path}: \"files\" must be a list")
    for f in files:
        if not (isinstance(f, dict) and f.get("dataset") in DATASETS
                and isinstance(f.get("path"), str) and isinstance(f.get("rows"), int)):
            raise RecordingError(f"{path}: bad file entry {f!r} (expected dataset, path, rows)")
        p = f["path"]
        if p.startswith("/") or ".." in p.split("/"):
            raise RecordingError(f"{path}: file path {p!r} must stay inside the recording")
