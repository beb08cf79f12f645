"""Build the optional C core (simlab._native). Metadata lives in pyproject.toml.

The extension is optional: without a C compiler simlab installs and runs on its pure-Python
core (simlab/book/_pybook.py), only slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("simlab._native", ["simlab/_native.c"], optional=True,
                  extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wno-missing-braces"]),
    ]
)
