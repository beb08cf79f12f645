"""Durable, all-or-nothing file writes: a reader sees the old file or the whole new one.

The recorder (a later issue) runs for a whole night and may be killed at any moment; every
file it produces goes through :func:`atomic_write`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


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


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through ``write(f)``: into hidden ``.<name>.tmp``, fsync, rename.

    The temporary name starts with a dot, so pyarrow/pandas dataset discovery skips it even
    while it is being written; on any error it is removed and the old file is untouched.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x.json"
    >>> atomic_write(p, lambda f: f.write(b"{}"))
    >>> p.read_bytes(), sorted(q.name for q in p.parent.iterdir())
    (b'{}', ['x.json'])
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
