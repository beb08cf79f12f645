"""A connection's queue holds what its byte count says: the frames the server writes itself
(acks, errors, pongs) are kept at their own size, not in orjson's 4 KB block, so a client
that sends many bad requests and never reads stays within ``max_queue_bytes``."""

from __future__ import annotations

import tracemalloc

from simlab.emulator import Emulator
from simlab.emulator.server import Connection
from simlab.emulator.testing import RandomMarket


def test_queued_error_frames_hold_no_more_than_the_queue_counts():
    emu = Emulator(RandomMarket(seed=1, instruments=["BTC-USDT"]), paused=True)
    c = Connection(emu, None, 0, "0000")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2000):
            emu._request(c, f"not json {i}")  # answered with a 60012 error each
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(c.queue) == 2000 and c.queued_bytes > 0
    # Before: ~4 KB a frame held against ~230 counted (8 MB against 0.5 MB).
    assert held <= c.queued_bytes, (held, c.queued_bytes)
