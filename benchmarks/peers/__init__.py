"""Peers measured on the same frames as simlab (issue 9): optional, `pip install -e .[bench]`.

Each module exposes ``NAME``, ``PIP``, ``version()`` (None when not installed) and
``run(frames, runs)`` returning rows for :mod:`benchmarks.bench_peers`.
"""
