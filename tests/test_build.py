"""The package as installed: the C core is optional for users, but not for CI; the build
rebuilds when any C file changes."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import simlab
from simlab import core
from simlab.book import IMPLS, L2Book, default_impl

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="only enforced in CI")
def test_c_core_is_built_in_ci():
    # a broken compile must not silently turn CI into a pure-Python run
    assert "c" in IMPLS
    assert default_impl() == "c"
    assert core.describe() == "C"


def test_pure_python_switch():
    # the variable is read once, when simlab starts: a fresh process
    env = {**os.environ, "SIMLAB_PURE_PYTHON": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(simlab.__file__).parents[1]),
                                          os.environ.get("PYTHONPATH", "")])}
    code = "from simlab.book import L2Book; print(L2Book().impl)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert out.strip() == "python"
    with pytest.raises(ValueError, match="impl must be one of"):
        L2Book(impl="fortran")


def test_make_rebuilds_when_any_c_file_changes():
    # `make test` reinstalls (and so recompiles) when one of BUILD_INPUTS is newer
    line = re.search(r"^BUILD_INPUTS :=(.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert line, "no BUILD_INPUTS line in the Makefile"
    words = line.group(1).replace("$(wildcard", " ").replace(")", " ").split()
    listed = {p.relative_to(ROOT) for w in words for p in ROOT.glob(w)}
    sources = {p.relative_to(ROOT) for p in (ROOT / "simlab").rglob("*.[ch]")}
    assert sources, "no C sources found"
    assert sources <= listed, sorted(map(str, sources - listed))
    assert {Path("setup.py"), Path("pyproject.toml")} <= listed
