"""Slow consumers, bad requests and the bind address: the emulator's memory stays bounded
whatever a client does, and it never echoes a request whole.

A client that never reads is a real socket on loopback with a small SO_RCVBUF that connects,
subscribes at full rate and never calls recv: its queue must stay within the bounds, and it
must be closed with 4005, the connection aborted when the close frame cannot drain.
"""

from __future__ import annotations

import asyncio
import socket
import time

import orjson
import pytest
from websockets.exceptions import ConnectionClosed

from simlab.emulator import Emulator
from simlab.emulator.server import EXCERPT, SLOW_CODE, check_host
from simlab.emulator.testing import RandomMarket, RawClient, client, recv, request, run

INSTS = ["BTC-USDT", "ETH-USDT", "BTC-USDT-SWAP"]
#: Every book channel of every instrument, and its trades: the fullest feed there is.
HEAVY = [(ch, i) for i in INSTS for ch in ("books-l2-tbt", "bbo-tbt", "books5", "trades")]
LIMIT = 256 * 1024


def wait_for(pred, timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def heavy_market() -> RandomMarket:
    return RandomMarket(seed=3, instruments=INSTS, rate=500.0)


@pytest.mark.parametrize("speed", [10.0, None], ids=["speed-10", "speed-max"])
def test_a_client_that_never_reads_is_closed_with_4005_and_aborted(emulator_factory, speed):
    """At 10x the queue overflows its byte bound; at full speed (the clock waits for slow
    readers) the socket takes nothing for send_timeout. Either way: 4005, then an abort,
    and the queue never held more than its bound."""
    emu = emulator_factory(heavy_market(), speed=speed, max_queue_bytes=LIMIT,
                           send_timeout=1.0, close_timeout=0.5).emulator
    with RawClient(emu.ws_url, rcvbuf=4096) as dead:
        dead.send_text(request("subscribe", *HEAVY))
        assert wait_for(lambda: emu.closed, 8), "the dead client was never closed"
        closed = emu.closed[0]
        assert (closed.code, closed.aborted) == (SLOW_CODE, True)
        assert emu.slow_closes == 1 and not emu.connections
        # One frame may land past the bound (it is what crosses it), no more.
        assert closed.peak_bytes <= LIMIT + 64 * 1024, closed.peak_bytes
        # The server is free of it: the abort reached the client's socket.
        dead.sock.settimeout(5)
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            dead.read_messages()
            dead.send_text("ping")  # a graceful end would let this through; an abort does not


def test_a_dead_client_does_not_stop_the_feed_for_the_others(emulator_factory):
    """At full speed the clock paces itself to the slowest reader; a reader that never reads
    is closed after send_timeout, and the others' feed goes on."""
    emu = emulator_factory(heavy_market(), speed=None, send_timeout=0.5,
                           close_timeout=0.3).emulator
    with RawClient(emu.ws_url, rcvbuf=4096) as dead:
        dead.send_text(request("subscribe", *HEAVY))

        async def healthy() -> int:
            async with client(emu.ws_url) as ws:
                await ws.send(request("subscribe", ("books", "BTC-USDT")))
                n = 0
                end = asyncio.get_running_loop().time() + 3.0
                while asyncio.get_running_loop().time() < end:
                    await recv(ws, timeout=3)
                    n += 1
                return n

        assert run(healthy()) > 20
        assert emu.slow_closes == 1 and emu.closed[0].code == SLOW_CODE


def test_a_slow_client_that_reads_again_sees_the_4005_close(emulator_factory):
    """A websockets client that stops reading until the server gave up on it, then reads:
    what was on the wire, then the close frame with OKX's code and reason."""
    emu = emulator_factory(heavy_market(), speed=10, max_queue_bytes=LIMIT,
                           close_timeout=10.0).emulator

    async def main():
        sock = socket.create_connection(("127.0.0.1", int(emu.ws_url.split(":")[2].split("/")[0])))
        # Small enough that the server's writes back up soon, big enough to read back fast.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        async with client(emu.ws_url, sock=sock, max_queue=2) as ws:
            await ws.send(request("subscribe", *HEAVY))
            loop = asyncio.get_running_loop()
            end = loop.time() + 8
            while not emu.slow_closes and loop.time() < end:
                await asyncio.sleep(0.05)  # not reading: the server's queue fills up
            assert emu.slow_closes == 1
            with pytest.raises(ConnectionClosed) as e:
                while True:
                    await recv(ws, timeout=5)
            return e.value.rcvd

    rcvd = run(main())
    assert rcvd is not None and (rcvd.code, rcvd.reason) == (4005,
                                                             "Buffer is full, cannot write data")
    assert wait_for(lambda: emu.closed, 3) and not emu.closed[0].aborted


def test_a_fast_reader_is_never_cut(emulator_factory):
    emu = emulator_factory(heavy_market(), speed=5).emulator

    async def main() -> int:
        async with client(emu.ws_url) as ws:
            await ws.send(request("subscribe", *HEAVY))
            n = 0
            end = asyncio.get_running_loop().time() + 1.5
            while asyncio.get_running_loop().time() < end:
                await recv(ws)
                n += 1
            return n

    assert run(main()) > 100
    assert emu.slow_closes == 0


@pytest.mark.parametrize("bad", [
    "x" * 20_000,  # not JSON
    "[" + "1," * 10_000 + "1]",  # JSON, not an object
    orjson.dumps({"op": "y" * 20_000}).decode(),  # an unknown op
    orjson.dumps({"op": "subscribe", "args": "z" * 20_000}).decode(),  # args not a list
    orjson.dumps({"op": "subscribe", "id": "9" * 5000,
                  "args": [{"channel": "c" * 20_000, "instId": "BTC-USDT"}]}).decode(),
])
def test_a_bad_request_is_quoted_not_echoed(emulator_factory, bad):
    emu = emulator_factory(RandomMarket(seed=1), paused=True)

    async def main() -> dict:
        async with client(emu.ws_url) as ws:
            await ws.send(bad)
            return orjson.loads(await recv(ws))

    err = run(main())
    assert err["event"] == "error" and err["code"] in ("60012", "60018", "60019")
    assert len(err["msg"]) < EXCERPT + 300, len(err["msg"])
    assert len(err.get("id", "")) <= 32
    assert "chars)" in err["msg"]  # says how long the request was


@pytest.mark.parametrize("host", ["", "0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_a_non_loopback_host_is_refused_unless_public(host):
    with pytest.raises(ValueError, match="loopback only"):
        check_host(host)
    with pytest.raises(ValueError, match="loopback only"):
        Emulator(RandomMarket(seed=1), host=host)
    check_host(host, public=True)  # allowed when asked for (not bound here: tests stay local)


def test_loopback_hosts_are_fine():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        check_host(host)
