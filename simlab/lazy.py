"""Public names of a package imported on first use (PEP 562), so importing the package
loads none of its heavy modules until a name is asked for.

>>> import types, sys
>>> pkg = types.ModuleType("pkg"); sys.modules["pkg"] = pkg
>>> pkg.__getattr__, pkg.__dir__ = lazy_api("pkg", {"parse_duration": "simlab.units"})
>>> pkg.parse_duration("2m"), "parse_duration" in dir(pkg)
(120.0, True)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_api(package: str, api: dict[str, str]
             ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose names ``api`` maps to the
    module each lives in: a submodule's name (``"importers"``: ``package.importers``) or a
    module's full name (``"simlab.book"``). A name, once imported, is kept in the package.

    >>> get, _ = lazy_api("pkg", {})
    >>> get("nope")
    Traceback (most recent call last):
    ...
    AttributeError: module 'pkg' has no attribute 'nope'
    """

    def __getattr__(name: str) -> Any:
        mod = api.get(name)
        if mod is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        full = mod if mod.startswith("simlab") else f"{package}.{mod}"
        value = getattr(importlib.import_module(full), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *api})

    return __getattr__, __dir__
