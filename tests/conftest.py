"""Shared fixtures: paths to the real OKX data (skipped when absent) and small builders of
OKX wire frames with correct seqId chains and checksums."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
from support import BOOK_IMPLS, real

from simlab.book import L2Book

T0_MS = 1_652_459_225_000  # 2022-05-13 16:27:05 UTC, the time of the real capture


@pytest.fixture(scope="session")
def okxreal() -> Path:
    """The shared folder of real OKX messages (``../shared/okx-real``)."""
    return real()


@pytest.fixture(scope="session")
def okx_capture() -> Path:
    """cryptofeed's raw capture of the OKX public feed, 2022-05-13 (``OKX.ws.1.0``)."""
    return real("cryptofeed", "OKX.ws.1.0")


@pytest.fixture(scope="session")
def okx_rest() -> Path:
    """The same session's REST instrument responses (``OKX.0``)."""
    return real("cryptofeed", "OKX.0")


@pytest.fixture(scope="session")
def capture_recording(okx_capture, tmp_path_factory) -> Path:
    """``OKX.ws.1.0`` imported once per session; tests must not modify it."""
    from simlab.store.importers import import_okx_capture

    out = tmp_path_factory.mktemp("capture") / "rec"
    import_okx_capture(okx_capture, out, progress=False)
    return out


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to reach the network fails the test instead of hanging (peers' tests)."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def dumps(obj) -> bytes:
    """Compact JSON as OKX sends it."""
    return json.dumps(obj, separators=(",", ":")).encode()


class BookFeed:
    """Frames of one instrument's ``books`` channel with a valid seqId chain and checksums.

    Each method returns the frame (bytes) and advances the chain; ``bad_checksum`` /
    ``gap`` produce the corresponding faults.
    """

    def __init__(self, inst: str = "BTC-USDT", channel: str = "books", seq: int = 100,
                 ts: int = T0_MS):
        self.inst, self.channel, self.seq, self.ts = inst, channel, seq, ts
        self.book = L2Book(inst)

    def _frame(self, action: str, bids, asks, prev: int, seq: int, checksum: int) -> bytes:
        self.ts += 100
        return dumps({"arg": {"channel": self.channel, "instId": self.inst}, "action": action,
                      "data": [{"asks": asks, "bids": bids, "ts": str(self.ts),
                                "checksum": checksum, "prevSeqId": prev, "seqId": seq}]})

    def snapshot(self, bids, asks) -> bytes:
        self.book.apply_snapshot(bids, asks)
        self.seq += 10
        return self._frame("snapshot", bids, asks, -1, self.seq, self.book.checksum())

    def update(self, bids, asks, *, step: int = 7, bad_checksum: bool = False,
               gap: bool = False) -> bytes:
        self.book.apply_update(bids, asks)
        prev = self.seq + (3 if gap else 0)
        self.seq += step + (3 if gap else 0)
        cks = self.book.checksum() + (1 if bad_checksum else 0)
        return self._frame("update", bids, asks, prev, self.seq, cks)

    def heartbeat(self) -> bytes:
        return self._frame("update", [], [], self.seq, self.seq, self.book.checksum())

    def reset(self, new_seq: int) -> bytes:
        prev, self.seq = self.seq, new_seq
        return self._frame("update", [], [], prev, new_seq, self.book.checksum())


def lv(px: str, sz: str, count: int = 1) -> list[str]:
    """A wire level ``[price, size, "0", count]``."""
    return [px, sz, "0", str(count)]


def trade_frame(inst: str, trade_id: str, px: str, sz: str, side: str, ts: int) -> bytes:
    return dumps({"arg": {"channel": "trades", "instId": inst},
                  "data": [{"instId": inst, "tradeId": trade_id, "px": px, "sz": sz,
                            "side": side, "ts": str(ts)}]})


def subscribe_frame(channel: str, inst: str) -> bytes:
    return dumps({"event": "subscribe", "arg": {"channel": channel, "instId": inst}})


@pytest.fixture
def wire() -> SimpleNamespace:
    """Builders of OKX frames: ``wire.BookFeed``, ``wire.lv``, ``wire.trade``,
    ``wire.subscribe``, ``wire.dumps``, ``wire.T0_MS``."""
    return SimpleNamespace(BookFeed=BookFeed, lv=lv, trade=trade_frame,
                           subscribe=subscribe_frame, dumps=dumps, T0_MS=T0_MS)


@pytest.fixture(params=BOOK_IMPLS, ids=lambda make: make.__name__)
def make_book(request):
    """A factory ``make_book(inst_id)`` for each book core (C and pure Python)."""
    return request.param


# The OKX exchange emulator: `emulator_factory` and `okx_emulator` (simlab/emulator/testing.py).
from simlab.emulator.testing import emulator_factory, okx_emulator  # noqa: E402, F401
