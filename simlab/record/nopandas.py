"""Keep pandas out of the recorder's process (``simlab record`` calls :func:`without_pandas`)."""

from __future__ import annotations

import importlib.abc
import sys
from typing import Any


class _NoPandas(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is kept out of the recorder process")
        return None


def without_pandas() -> bool:
    """Keep pandas out of this process (the ``simlab record`` command calls it): pyarrow
    imports pandas (~35 MB resident) the first time it converts Python lists, only to ask
    whether they are pandas objects, and a recorder never has any. Returns False (and does
    nothing) when pandas is already imported.

    >>> without_pandas()  # doctest: +SKIP
    True
    """
    if "pandas" in sys.modules:
        return False
    if not any(isinstance(f, _NoPandas) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoPandas())
    return True
