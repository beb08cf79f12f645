"""A market that raises must not leave an emulator that silently stops pushing: the error
is logged and kept, and connected clients are closed with 1011."""

from __future__ import annotations

import logging

import pytest
from websockets.exceptions import ConnectionClosed

from simlab.emulator.testing import RandomMarket, client, recv, run, subscribe


class FailingMarket(RandomMarket):
    """A RandomMarket whose clock step raises once it has run ``steps`` times."""

    def __init__(self, steps: int, **kw) -> None:
        super().__init__(**kw)
        self.steps = steps

    def advance(self, until_ms: int):
        self.steps -= 1
        if self.steps < 0:
            raise ZeroDivisionError("price walked to 0")
        return super().advance(until_ms)


def test_a_failing_market_closes_clients_and_is_reported(emulator_factory, caplog):
    emu = emulator_factory(FailingMarket(40, seed=1, instruments=["BTC-USDT"]))
    caplog.set_level(logging.ERROR, logger="simlab.emulator.server")

    async def main():
        async with client(emu.ws_url) as ws:
            await subscribe(ws, ("books", "BTC-USDT"))
            with pytest.raises(ConnectionClosed) as closed:
                for _ in range(10_000):
                    await recv(ws, timeout=5)
            return closed.value.rcvd

    rcvd = run(main())
    assert rcvd is not None and rcvd.code == 1011 and "market error" in rcvd.reason
    assert isinstance(emu.emulator.clock_error, ZeroDivisionError)
    assert "the market failed at simulated time" in caplog.text
