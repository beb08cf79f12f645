"""`simlab serve`: prints its URLs, serves, stops on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request

import orjson
import pytest

from simlab.cli import build_parser, main
from simlab.emulator.testing import client, recv, run, subscribe
from simlab.okx import parse_frame


def test_serve_prints_urls_serves_and_stops_on_ctrl_c():
    proc = subprocess.Popen(
        [sys.executable, "-m", "simlab.cli", "serve", "--port", "0", "--rest-port", "0",
         "--speed", "5", "--checksum", "off", "--seed", "3", "--instruments", "ETH-USDT",
         "--fault", "reset:inst=ETH-USDT,at=0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        assert "speed 5, checksum off, snapshot on" in lines[0]
        ws_url = lines[1].split()[1]
        rest_url = lines[2].split()[1]
        assert ws_url.startswith("ws://127.0.0.1:") and ws_url.endswith("/ws/v5/public")
        assert rest_url.startswith("http://127.0.0.1:")

        async def main():
            async with client(ws_url) as ws:
                got = await subscribe(ws, ("books", "ETH-USDT"))
                # the scheduled maintenance reset (--fault reset:...,at=0.2) comes through
                while '"action":"update"' not in got[-1] or (
                        parse_frame(got[-1]).seq_id >= parse_frame(got[-1]).prev_seq_id):
                    got.append(await recv(ws))
                return got

        got = run(main(), 20)
        books = [parse_frame(m) for m in got if m.startswith('{"arg"')]
        assert books[0].action == "snapshot" and {b.checksum for b in books} == {0}
        assert books[-1].prev_seq_id == books[-2].seq_id  # the reset continues the chain
        with urllib.request.urlopen(f"{rest_url}/api/v5/public/instruments?instType=SPOT") as r:
            assert [d["instId"] for d in orjson.loads(r.read())["data"]] == ["ETH-USDT"]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_serve_options_and_bad_input():
    a = build_parser().parse_args(["serve", "--speed", "max", "--snapshot", "off", "--fault",
                                   "gap", "--fault", "reset", "--fault", "drop:after=3",
                                   "--recording", "rec"])
    assert (a.speed, a.snapshot, a.recording) == ("max", "off", "rec")
    assert a.fault == ["gap", "reset", "drop:after=3"]
    assert main(["serve", "--fault", "explode"]) == 2
    assert main(["serve", "--speed", "-1"]) == 2
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--checksum", "maybe"])


def test_serve_comma_instruments_public_warning_and_wall_clock():
    proc = subprocess.Popen(
        [sys.executable, "-m", "simlab.cli", "serve", "--port", "0", "--rest-port", "0",
         "--instruments", "ETH-USDT,BTC-USDT", "--public", "--latency", "5ms"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        assert "clock wall, latency 5 ms" in lines[0]
        rest_url = lines[2].split()[1]
        with urllib.request.urlopen(f"{rest_url}/api/v5/public/instruments?instType=SPOT") as r:
            got = sorted(d["instId"] for d in orjson.loads(r.read())["data"])
        assert got == ["BTC-USDT", "ETH-USDT"]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "warning: --public" in err


def test_serve_instruments_take_a_comma_list(capsys):
    p = build_parser()
    assert p.parse_args(["serve", "--instruments", "A,B"]).instruments == ["A", "B"]
    assert p.parse_args(["serve", "--inst", "A,B", "--inst", "C"]).instruments == ["A", "B", "C"]
    with pytest.raises(SystemExit):  # one list dialect: the space-separated form is gone
        p.parse_args(["serve", "--instruments", "A", "B"])
    assert "unrecognized arguments: B" in capsys.readouterr().err


@pytest.mark.parametrize("argv, words", [
    (["--host", ""], ["--host ''", "--public"]),
    (["--host", "0.0.0.0"], ["--host '0.0.0.0'", "--public"]),
    (["--host", "10.1.2.3"], ["not a loopback address"]),
    (["--start", "2026-01-01T00:00Z"], ["--clock sim"]),
    (["--clock", "sim", "--start", "soon"], ["--start", "ISO-8601"]),
    (["--clock", "wall", "--speed", "5"], ["--speed 1"]),
    (["--speed", "5", "--latency", "5ms"], ["--latency", "--clock wall"]),
    (["--speed", "fast"], ["--speed 'fast'"]),
])
def test_serve_refuses_bad_options_before_binding(argv, words, capsys):
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    for w in words:
        assert w in err, err


_FAILING_SERVE = r"""
import sys
import simlab.emulator
from simlab.cli import main
from simlab.emulator.testing import RandomMarket

class Failing(RandomMarket):
    calls = 0
    def advance(self, until_ms):
        Failing.calls += 1
        if Failing.calls > 20:
            raise ZeroDivisionError("price walked to 0")
        return super().advance(until_ms)

simlab.emulator.default_market = lambda seed, insts=None: Failing(seed, ["BTC-USDT"])
sys.exit(main(["serve", "--port", "0", "--rest-port", "0"]))
"""


def test_serve_whose_market_failed_does_not_exit_0():
    """The feed stopped (the market raised): Ctrl-C then ends serve with 1, not 0."""
    proc = subprocess.Popen([sys.executable, "-c", _FAILING_SERVE], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines[1].startswith("ws "), lines
        time.sleep(1.0)  # 20 clock steps of 10 ms, then the market raises
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    assert "the market failed" in err, err
    assert proc.returncode == 1, err
    assert "feed stopped" in err.splitlines()[-1], err
