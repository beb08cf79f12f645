"""The package's lazy public API: every exported name resolves, and the recorder's process
does not load pandas, scikit-learn or matplotlib (tens of MB over a night)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import simlab
import simlab.store


@pytest.mark.parametrize("pkg", [simlab, simlab.store], ids=["simlab", "simlab.store"])
def test_every_exported_name_resolves(pkg):
    for name in pkg.__all__:
        assert getattr(pkg, name) is not None, name
    assert set(pkg.__all__) <= set(dir(pkg))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pkg.nope  # noqa: B018


def test_verify_is_the_function_not_the_module():
    import simlab.store.verify  # the submodule of the same name

    assert callable(simlab.store.verify)


def test_the_recorder_process_stays_light():
    code = ("import sys, simlab.cli\n"
            "from simlab.record import Recorder, without_pandas\n"
            "assert without_pandas()\n"
            "heavy = [m for m in ('pandas', 'sklearn', 'matplotlib', 'scipy', 'dask',\n"
            "                     'pyarrow.dataset') if m in sys.modules]\n"
            "print(heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
