"""Helpers shared by test modules (fixtures live in conftest.py).

Real OKX data is read from ``../shared/okx-real`` beside the repository, never copied in;
tests that need it skip when it is absent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from simlab.book import IMPLS, L2Book

REAL = Path(__file__).resolve().parents[2] / "shared" / "okx-real"


def real(*parts: str) -> Path:
    """A path under the real-data folder; skips the test when it is absent."""
    p = REAL.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real OKX data not available: {p}")
    return p


def capture_frames(path: Path) -> list[bytes]:
    """JSON frames of a cryptofeed capture: lines ``<recv_seconds>: <json>``, minus the
    client's own requests (``<-``) and the connect marker (``<->``)."""
    return [line.partition(b": ")[2] for line in path.read_bytes().splitlines()
            if line.strip() and b"<-" not in line]


def _factory(impl: str):
    def make(inst_id: str = "") -> L2Book:
        return L2Book(inst_id, impl=impl)

    make.__name__ = f"L2Book_{impl}"
    return make


#: Every book core built here, as factories: book tests run once per core.
BOOK_IMPLS = [_factory(i) for i in sorted(IMPLS)]


def assert_bitwise(arr, scalars) -> None:
    """``arr`` (from one array call) equals the per-element scalar calls bit for bit (any NaN
    matches any NaN); scalar calls returned Python floats."""
    import numpy as np

    assert isinstance(arr, np.ndarray) and arr.dtype == np.float64
    assert all(type(x) is float for x in scalars), [type(x) for x in scalars]
    s = np.array(scalars, dtype=np.float64).reshape(arr.shape)
    na, ns = np.isnan(arr), np.isnan(s)
    assert np.array_equal(na, ns)
    assert np.array_equal(arr[~na].view(np.int64), s[~ns].view(np.int64))


async def subscribe_requests(ws) -> AsyncIterator[dict]:
    """The subscribe requests a hand-written OKX server receives on ``ws`` (a websockets
    connection), answering ``ping`` with ``pong`` and skipping every other request."""
    async for text in ws:
        if text == "ping":
            await ws.send("pong")
            continue
        req = orjson.loads(text)
        if req.get("op") == "subscribe":
            yield req
