"""The package as installed: the C core is optional for users, but not for CI."""

import os

import pytest

from simlab.book import IMPLS, L2Book, default_impl


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="only enforced in CI")
def test_c_core_is_built_in_ci():
    # a broken compile must not silently turn CI into a pure-Python run
    assert "c" in IMPLS
    assert default_impl() == "c"


def test_pure_python_switch(monkeypatch):
    monkeypatch.setenv("SIMLAB_PURE_PYTHON", "1")
    assert L2Book().impl == "python"
    with pytest.raises(ValueError, match="impl must be one of"):
        L2Book(impl="fortran")
