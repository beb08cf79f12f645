"""Build the optional C core (simlab._native). Metadata lives in pyproject.toml.

The extension is optional: without a C compiler simlab installs and runs on its pure-Python
core (simlab/book/_pybook.py and friends), only slower; ``import simlab`` then warns, and
``simlab --version`` says which core is active (simlab/core.py).

One module from one C file per concern (simlab/_csrc/native.h lists them); the headers are
``depends``, so that changing one rebuilds the module and ships in the sdist.
"""

from pathlib import Path

from setuptools import Extension, setup

CSRC = Path("simlab/_csrc")

setup(
    ext_modules=[
        Extension("simlab._native", sorted(str(p) for p in CSRC.glob("*.c")),
                  depends=sorted(str(p) for p in CSRC.glob("*.h")), optional=True,
                  extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wno-missing-braces"]),
    ]
)
