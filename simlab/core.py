"""Which core runs simlab's hot path: the C extension ``simlab._native``, or pure Python.

Three pieces have a C and a pure-Python implementation that give the same results: the book
(:class:`simlab.book.L2Book`), the frame scanner (:func:`simlab.okx.parse_frame`) and the
replay kernel (:func:`simlab.book.batch.rebuild_books`). Each takes the C module from
:func:`native`, which decides once, when this module is first imported:

- the environment variable ``SIMLAB_PURE_PYTHON`` set (to anything but ``""`` or ``"0"``)
  selects pure Python for all three, and the C extension is not even imported;
- otherwise the C extension, when it imports;
- otherwise pure Python, about 10x slower, and a :class:`RuntimeWarning` says so: the C
  build is optional at install time (no compiler, no Python headers), so a failed build
  would otherwise go unnoticed.

``simlab --version`` names the active core (:func:`version_line`).
"""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType

from ._version import __version__

#: The environment variable that selects the pure-Python core.
ENV_VAR = "SIMLAB_PURE_PYTHON"


def _choose() -> tuple[ModuleType | None, str, str | None]:
    """(the C module or None, what :func:`describe` says, the warning to give or None)."""
    asked = os.environ.get(ENV_VAR, "")
    if asked not in ("", "0"):
        return None, f"pure Python: {ENV_VAR}={asked}", None
    try:
        return importlib.import_module("simlab._native"), "C", None
    except ImportError as e:
        return None, f"pure Python: the C extension failed to import: {e}", (
            f"simlab's C extension (simlab._native) failed to import ({e}); running on the "
            f"pure-Python core, about 10x slower. Reinstall with a C compiler and the Python "
            f"headers (`pip install -v .` shows the build), or set {ENV_VAR}=1 to choose "
            f"the pure-Python core without this warning.")


_NATIVE, _DESCRIPTION, _WARNING = _choose()
if _WARNING is not None:
    warnings.warn(_WARNING, RuntimeWarning, stacklevel=1)


def native() -> ModuleType | None:
    """The C extension module when the C core is active, else None (pure Python).

    >>> m = native()
    >>> m is None or hasattr(m, "Book") and hasattr(m, "scan_okx_book")
    True
    """
    return _NATIVE


def describe() -> str:
    """The active core, in words: ``"C"``, or ``"pure Python: "`` and the reason.

    >>> describe() == "C" or describe().startswith("pure Python: ")
    True
    """
    return _DESCRIPTION


def version_line() -> str:
    """What ``simlab --version`` prints: the version and the active core.

    >>> version_line().startswith(f"simlab {__version__} (core: ")
    True
    """
    return f"simlab {__version__} (core: {_DESCRIPTION})"


__all__ = ["ENV_VAR", "describe", "native", "version_line"]
