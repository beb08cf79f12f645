"""The recording's ``manifest.json``: create, write atomically, read and validate.

The manifest is a plain JSON object (described in ``docs/recording-format.md``); it is the
only list of the recording's data files. It is rewritten with write-to-temporary, fsync and
rename, so a reader sees either the old or the new version, never a torn one.
"""

from __future__ import annotations

import json
import re
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
        "pending": [],
        "history": [],
    }


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Write ``root/manifest.json`` atomically (temporary file, fsync, rename)."""
    manifest["updated"] = utc_now()
    data = json.dumps(manifest, indent=1, sort_keys=False).encode()
    atomic_write(Path(root) / MANIFEST, lambda f: f.write(data), step="manifest-temp")


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


#: Fields every manifest has (:func:`new_manifest` writes them all).
REQUIRED = ("format", "format_version", "complete", "arrivals", "rows", "files")


def _bad(path: Path | str, name: str, expected: str, got: Any) -> RecordingError:
    shown = repr(got)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return RecordingError(f"{path}: manifest field {name!r} must be {expected}, got {shown}")


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _counts(m: dict[str, Any], name: str, path: Path | str, label: str = "") -> None:
    """``m[name]``, if present, is an object of counts (non-negative integers); ``label``
    is how the field is named (default ``name``)."""
    d, label = m.get(name), label or name
    if d is None:
        return
    if not isinstance(d, dict):
        raise _bad(path, label, "an object", d)
    for k, v in d.items():
        if not _count(v):
            raise _bad(path, f"{label}.{k}", "an integer >= 0", v)


def _iso(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    try:
        datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _check(m: Any, path: Path | str) -> None:
    """Validate a manifest: :class:`RecordingError` naming the file and the first field
    that is missing or of the wrong type or range."""
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
    for i, f in enumerate(files):
        _check_file(f, i, path)
    if isinstance(v, bool) or v < 1:
        raise _bad(path, "format_version", f"an integer from 1 to {FORMAT_VERSION}", v)
    for name in REQUIRED:
        if name not in m:
            raise RecordingError(f"{path}: manifest field {name!r} is missing (every simlab "
                                 "manifest has it)")
    if not isinstance(m["complete"], bool):
        raise _bad(path, "complete", "true or false", m["complete"])
    if not _count(m["arrivals"]):
        raise _bad(path, "arrivals", "an integer >= 0", m["arrivals"])
    rows = m["rows"]
    if not isinstance(rows, dict):
        raise _bad(path, "rows", "an object of row counts per dataset", rows)
    for d in rows:
        if d not in DATASETS:
            raise _bad(path, f"rows.{d}", f"one of the datasets {list(DATASETS)}", d)
    _counts(m, "rows", path)
    _counts(m, "control", path)
    for name in ("created", "updated"):
        if name in m and not _iso(m[name]):
            raise _bad(path, name, "an ISO 8601 time (e.g. 2026-05-14T09:30:00Z)", m[name])
    for name in ("first_recv_ns", "last_recv_ns"):
        if m.get(name) is not None and not _count(m[name]):
            raise _bad(path, name, "ns since the epoch (an integer >= 0) or null", m[name])
    if (m.get("first_recv_ns") is not None and m.get("last_recv_ns") is not None
            and m["last_recv_ns"] < m["first_recv_ns"]):
        raise _bad(path, "last_recv_ns", f">= first_recv_ns ({m['first_recv_ns']})",
                   m["last_recv_ns"])
    for name in ("source", "instruments", "channels", "integrity", "malformed", "live"):
        if name in m and not isinstance(m[name], dict):
            raise _bad(path, name, "an object", m[name])
    for name in ("events", "history"):
        if name in m and not isinstance(m[name], list):
            raise _bad(path, name, "a list", m[name])
    if "events_dropped" in m and not _count(m["events_dropped"]):
        raise _bad(path, "events_dropped", "an integer >= 0", m["events_dropped"])
    if "error" in m and not isinstance(m["error"], str):
        raise _bad(path, "error", "a string", m["error"])
    _check_details(m, path)


def _check_details(m: dict[str, Any], path: Path | str) -> None:
    for ch, c in (m.get("channels") or {}).items():
        if not (isinstance(c, dict) and _count(c.get("messages"))
                and isinstance(c.get("instruments"), dict)):
            raise _bad(path, f"channels.{ch}", "an object with messages (an integer >= 0) "
                       "and instruments", c)
        for inst, n in c["instruments"].items():
            if not _count(n):
                raise _bad(path, f"channels.{ch}.instruments.{inst}", "an integer >= 0", n)
    mal = m.get("malformed")
    if mal is not None:
        if not _count(mal.get("count")):
            raise _bad(path, "malformed.count", "an integer >= 0", mal.get("count"))
        _counts(mal, "reasons", path, "malformed.reasons")
    listed = {f["path"] for f in m["files"]}
    pending = m.get("pending", [])
    if not isinstance(pending, list):
        raise _bad(path, "pending", "a list of file paths", pending)
    for i, p in enumerate(pending):
        if p not in listed:
            raise _bad(path, f"pending[{i}]", "the path of a listed file", p)
    req = m.get("requested")
    if req is not None:
        if not isinstance(req, list):
            raise _bad(path, "requested", "a list of {\"channel\", \"inst\"} objects", req)
        for i, r in enumerate(req):
            for k in ("channel", "inst"):
                if not (isinstance(r, dict) and isinstance(r.get(k), str) and r[k]):
                    raise _bad(path, f"requested[{i}].{k}", "a non-empty string",
                               r.get(k) if isinstance(r, dict) else r)


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _check_file(f: Any, i: int, path: Path | str) -> None:
    if not (isinstance(f, dict) and f.get("dataset") in DATASETS
            and isinstance(f.get("path"), str) and isinstance(f.get("rows"), int)):
        raise RecordingError(f"{path}: bad file entry {f!r} (expected dataset, path, rows)")
    p = f["path"]
    if p.startswith("/") or ".." in p.split("/"):
        raise RecordingError(f"{path}: file path {p!r} must stay inside the recording")
    if not _count(f["rows"]):
        raise _bad(path, f"files[{i}].rows", "an integer >= 0", f["rows"])
    for k in ("channel", "inst"):
        if not (isinstance(f.get(k), str) and f[k]):
            raise _bad(path, f"files[{i}].{k}", "a non-empty string", f.get(k))
    if "date" in f and not (isinstance(f["date"], str) and _DATE.fullmatch(f["date"])):
        raise _bad(path, f"files[{i}].date", "a date YYYY-MM-DD", f["date"])
    lo, hi = f.get("arrival_min"), f.get("arrival_max")
    for k, a in (("arrival_min", lo), ("arrival_max", hi)):
        if a is not None and not _count(a):
            raise _bad(path, f"files[{i}].{k}", "an integer >= 0", a)
    if lo is not None and hi is not None and hi < lo:
        raise _bad(path, f"files[{i}].arrival_max", f">= arrival_min ({lo})", hi)
