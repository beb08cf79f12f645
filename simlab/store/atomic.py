"""Durable, all-or-nothing file writes: a reader sees the old file or the whole new one.

The recorder runs for a whole night and may be killed at any moment; every file it
produces is written under a hidden temporary name (:func:`hidden`) and renamed into view.

:data:`_crash_at` is a fault hook for crash tests: when set, it is called with the name of
each step of a commit (:data:`COMMIT_STEPS`, see ``docs/recording-format.md``), so a test
can kill the process (or copy the directory) exactly there. Unset, a step costs one
global lookup.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import BinaryIO, TypeVar

_P = TypeVar("_P", bound=PurePath)

#: The steps of a commit, in order, as passed to :data:`_crash_at`: ``rows-written`` (a
#: dataset's buffered rows are in its hidden part files), ``file-finished`` (one part file
#: closed and fsync'd, still hidden), ``manifest-temp`` (the new manifest is fsync'd under
#: its temporary name, not yet renamed), ``manifest-written`` (the new manifest, listing
#: the files, is in place), ``file-renamed`` (one listed file renamed into view),
#: ``committed`` (every file renamed, directories fsync'd).
COMMIT_STEPS = ("rows-written", "file-finished", "manifest-temp", "manifest-written",
                "file-renamed", "committed")

#: Fault hook (tests only): called with each step name of :data:`COMMIT_STEPS`.
_crash_at: Callable[[str], object] | None = None


def crash_point(step: str) -> None:
    """Call the fault hook :data:`_crash_at` with ``step``, if one is set."""
    if _crash_at is not None:
        _crash_at(step)


def hidden(path: _P) -> _P:
    """The hidden temporary name of ``path`` while it is written: ``.<name>.tmp``. The
    leading dot makes pyarrow/pandas dataset discovery skip it, the ``.tmp`` suffix keeps
    it out of ``*.parquet`` globs (DuckDB, polars).

    >>> hidden(Path("raw/part-000001.parquet")).as_posix()
    'raw/.part-000001.parquet.tmp'
    """
    return path.with_name(f".{path.name}.tmp")


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (no-op where directories cannot be fsync'd)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[BinaryIO], object],
                 step: str | None = None) -> None:
    """Write ``path`` through ``write(f)``: into hidden ``.<name>.tmp``, fsync, rename.

    The temporary name starts with a dot, so pyarrow/pandas dataset discovery skips it even
    while it is being written; on any error it is removed and the old file is untouched.
    ``step``: the name passed to :func:`crash_point` once the temporary is durable, just
    before the rename.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x.json"
    >>> atomic_write(p, lambda f: f.write(b"{}"))
    >>> p.read_bytes(), sorted(q.name for q in p.parent.iterdir())
    (b'{}', ['x.json'])
    """
    tmp = hidden(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if step is not None:
            crash_point(step)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def rename_into_view(path: Path) -> bool:
    """Rename the finished hidden temporary of ``path`` (:func:`hidden`) to ``path``.

    True when this call did it; False when ``path`` was already in view and the temporary
    gone (a reader completing an interrupted commit may race the writer: either may win).
    Other errors (a read-only disk) are raised.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "part-000000.parquet"
    >>> _ = hidden(p).write_bytes(b"PAR1")
    >>> rename_into_view(p), rename_into_view(p), p.read_bytes()
    (True, False, b'PAR1')
    """
    try:
        os.replace(hidden(path), path)
    except FileNotFoundError:
        if path.exists():
            return False
        raise
    return True
