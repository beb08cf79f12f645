"""Optional dependencies: the one place that says which extra installs which module.

The core install (``pip install simlab``) records, verifies, imports and replays. Training
needs ``simlab[ml]``, sweeps ``simlab[sweep]``, figures and dashboards ``simlab[notebook]``
(``pyproject.toml`` lists each extra's packages; ``tests/test_extras.py`` checks that this
table agrees with it). Code that uses an optional module imports it through :func:`require`,
so a missing one is an error that names the extra to install, not a bare
``ModuleNotFoundError`` from deep inside a run:

>>> require("json", feature="the doctest").__name__  # any module imports the same way
'json'

This module imports nothing of simlab: every layer, the monitor included, may use it.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

__all__ = ["EXTRAS", "MissingExtra", "available", "install_hint", "require"]

#: top-level import name -> (the package pip installs, the simlab extra that brings it)
EXTRAS: dict[str, tuple[str, str]] = {
    "sklearn": ("scikit-learn", "ml"),
    "dask": ("dask[distributed]", "sweep"),
    "distributed": ("dask[distributed]", "sweep"),
    "yaml": ("pyyaml", "sweep"),
    "ipywidgets": ("ipywidgets", "notebook"),
    "matplotlib": ("matplotlib", "notebook"),
    "jupyterlab": ("jupyterlab", "notebook"),
    "ipympl": ("ipympl", "notebook"),
}


class MissingExtra(ImportError):
    """An optional dependency is not installed: says what needs it and which extra to
    install. An :class:`ImportError`, so code that already tolerates a missing module keeps
    doing so; the command line prints it and exits 2.

    >>> e = MissingExtra("sklearn", feature="simlab train")
    >>> str(e)
    "scikit-learn is needed for simlab train: pip install 'simlab[ml]'"
    >>> e.extra, e.package, e.name
    ('ml', 'scikit-learn', 'sklearn')
    """

    def __init__(self, module: str, *, feature: str, extra: str | None = None) -> None:
        self.package, self.extra = _lookup(module, extra)
        self.feature = feature
        super().__init__(f"{self.package} is needed for {feature}: {install_hint(self.extra)}",
                         name=module.partition(".")[0])


def install_hint(extra: str) -> str:
    """The command that installs ``extra``.

    >>> install_hint("notebook")
    "pip install 'simlab[notebook]'"
    """
    return f"pip install 'simlab[{extra}]'"


def require(module: str, *, feature: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` (e.g. ``"sklearn.linear_model"``, ``"matplotlib.figure"``) and return
    it; :class:`MissingExtra` naming ``feature`` and the extra when it is not installed.

    ``extra`` defaults to the one :data:`EXTRAS` gives the module's top-level package; give
    it for a module the table does not list (``IPython.display`` comes with ipywidgets).

    >>> require("no_such_module", feature="a doctest", extra="ml")
    Traceback (most recent call last):
    simlab.extras.MissingExtra: no_such_module is needed for a doctest: pip install 'simlab[ml]'
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        # only the optional package itself (or one of its own dependencies) being absent;
        # a module missing inside simlab is a bug and stays what it is
        if e.name is not None and e.name.partition(".")[0] == "simlab":
            raise
        raise MissingExtra(module, feature=feature, extra=extra) from e


def available(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (for optional output that is
    skipped with a warning rather than refused).

    >>> available("json"), available("sklearn_is_not_a_module")
    (True, False)
    """
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _lookup(module: str, extra: str | None) -> tuple[str, str]:
    top = module.partition(".")[0]
    package, default = EXTRAS.get(top, (top, None))
    extra = extra or default
    if extra is None:
        raise ValueError(f"{module!r} is not an optional dependency simlab.extras knows: "
                         f"give extra=")
    return package, extra
