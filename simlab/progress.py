"""Progress bars that stay out of logs.

A bar is drawn only where a person watches it: on a terminal, or as a widget in a Jupyter
kernel. When stderr is a file or a pipe (a log, CI, ``nohup``) a bar would write a line per
update, so ``enabled=None`` (the default everywhere) turns it off there.
"""

from __future__ import annotations

import sys
from typing import Any


def wanted(enabled: bool | None = None) -> bool:
    """Whether to draw a progress bar: ``enabled`` if given, else only when stderr is a
    terminal or the code runs in a Jupyter kernel.

    >>> wanted(False), wanted(True)
    (False, True)
    """
    if enabled is not None:
        return bool(enabled)
    if _in_kernel():
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # closed or replaced stderr
        return False


def _in_kernel() -> bool:
    ipy = sys.modules.get("IPython")
    if ipy is None:
        return False
    try:
        shell = ipy.get_ipython()
    except Exception:
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def bar(enabled: bool | None = None, **kwargs: Any):
    """A tqdm bar (a widget in a notebook), disabled unless :func:`wanted` says otherwise.

    >>> with bar(False, total=3, desc="cells") as b:
    ...     b.update(3)
    """
    from tqdm.auto import tqdm

    return tqdm(disable=not wanted(enabled), **kwargs)
