"""A recording made through every fault of the emulator's catalogue reports exactly the
injected fault, once, and nothing else: one short real-time recording per fault (books and
trades of two instruments), then everything the manifest and ``simlab verify`` report is
reduced to a few comparable facts and compared with what that fault must produce.

Exchange-wide silences (``burst``, ``stall``) cut every book at once: each book stream gets
its outage entry in the manifest, and verify reports the overlapping outages as one
incident (one problem naming both streams)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from simlab.emulator import Fault, FaultSpec
from simlab.emulator.testing import RandomMarket, run
from simlab.record import Recorder
from simlab.store import Recording, verify

BTC, ETH = INSTS = ("BTC-USDT", "ETH-USDT")
SUBS = [(ch, i) for i in INSTS for ch in ("books", "trades")]
FAST = {"snapshot_timeout": 0.5, "backoff_base": 0.05, "backoff_max": 0.2,
        "ping_interval": 10.0, "pong_timeout": 10.0, "close_timeout": 0.5,
        "open_timeout": 2.0, "splice_wait": 1.0, "rest_retry_base": 0.05,
        "rest_retry_max": 0.2, "rest_timeout": 0.5, "silence_s": 30.0}
#: Books push every 10 ms at 10x: 1.5 s without one is an outage here (Case.outage_after,
#: with room for a loaded machine), and the silences injected last twice that.
SILENCE_S = 3.0
#: Client events that are incidents (everything else is routine or a repair step).
INCIDENTS = ("gap", "checksum_failed", "rejected", "duplicate", "seq_reset", "malformed",
             "rest_error", "bootstrap_retry", "buffer_overflow", "notice", "switchover",
             "ping_timeout", "silence", "refused", "error", "connect_failed")


@dataclass
class Case:
    options: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    breaks: list[str] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)
    outages: int = 0
    rest: bool = False  # an emulator without in-band snapshots, the fault armed at start
    #: A REST bootstrap holds a book's updates until its snapshot comes: a slow one is a
    #: silence of that stream, so these cases use a threshold above the fault's delay.
    outage_after: float = 1.5


CATALOGUE = {
    Fault.DROP: Case({"after": 40}, problems=["disconnect"], breaks=["disconnect"],
                     events={"disconnect": 1}),
    Fault.GAP: Case({"inst": BTC}, problems=["gap BTC-USDT"], breaks=["gap"],
                    events={"gap": 1}),
    Fault.CHECKSUM: Case({"inst": BTC}, problems=["checksum BTC-USDT"],
                         breaks=["checksum_failed"], events={"checksum_failed": 1}),
    Fault.MALFORMED: Case({"inst": ETH, "channel": "books"}, warnings=["malformed"],
                          events={"malformed": 1}),
    Fault.DUPLICATE: Case({"inst": ETH}, events={"duplicate": 1}),
    Fault.REORDER: Case({"inst": BTC}, problems=["gap BTC-USDT"], breaks=["gap"],
                        events={"gap": 1}),
    Fault.NOTICE: Case({"delay": 0.3}, breaks=["switchover"],
                       events={"notice": 1, "switchover": 1}),
    Fault.BURST: Case({"duration": SILENCE_S}, problems=["outage"], outages=2),
    Fault.RESET: Case({"inst": BTC}, events={"seq_reset": 1}),
    Fault.STALL: Case({"duration": SILENCE_S}, problems=["outage"], outages=2),
    Fault.REST_SLOW: Case({"count": 1, "delay": 1.5}, rest=True, events={"rest_error": 1},
                          outage_after=5.0),
    Fault.REST_ERROR: Case({"count": 1}, rest=True, events={"rest_error": 1},
                           outage_after=5.0),
}


def _category(text: str) -> str:
    """A verify problem or warning as a short comparable fact (unknown text stays whole)."""
    for key, name in (("sequence gaps", "gap"), ("checksum failures", "checksum")):
        if key in text:
            return f"{name} {text.split(':')[0].split()[1]}"
    for start, name in (("disconnect of connection", "disconnect"), ("outage from", "outage")):
        if text.startswith(start):
            return name
    if "malformed frames" in text:
        return "malformed"
    return text


def report(out) -> Case:
    """Everything the recording reports, as a :class:`Case`."""
    m = Recording(out).manifest
    rep = verify(out)
    live = m["live"]
    events = Counter()
    for e in m["events"]:
        if "recv_ns" not in e:
            continue  # the writer's own book check (verify reports it as a problem)
        k = e["kind"]
        if k in INCIDENTS or (k == "disconnect" and not e.get("expected")):
            events[k] += 1
    assert live["refused"] == [] and live["summary"]["dropped_frames"] == 0
    return Case(m.get("source", {}).get("fault_options", {}),
                sorted(_category(p) for p in rep.problems),
                sorted(_category(w) for w in rep.warnings
                       if not w.startswith("disconnect of connection")),
                sorted(b["kind"] for b in live["breaks"]), dict(events),
                len(live["outages"]))


@pytest.mark.parametrize("fault", list(Fault), ids=[f.value for f in Fault])
def test_every_fault_is_reported_once_and_nothing_else(emulator_factory, tmp_path, fault):
    case = CATALOGUE[fault]  # a new fault in the catalogue needs its expectation here
    market = RandomMarket(seed=21, rate=300, instruments=list(INSTS))
    if case.rest:
        emu = emulator_factory(market, speed=10, snapshot=False,
                               faults=(FaultSpec(fault, **case.options),))
    else:
        emu = emulator_factory(market, speed=10)
    out = tmp_path / "rec"

    async def main():
        rec = Recorder(out, SUBS, ws_url=emu.ws_url, rest_url=emu.rest_url, rotate=0.5,
                       outage_after=case.outage_after, **FAST)
        task = asyncio.create_task(rec.run())
        await rec.until(lambda: rec.client is not None and all(
            rec.client.mode("books", i) == "live" and rec.per_stream[("books", i)] > 0
            for i in INSTS), timeout=10, what="both books synced")
        await asyncio.sleep(0.5)
        if not case.rest:
            await asyncio.to_thread(emu.emulator.inject, fault, **case.options)
        await asyncio.sleep(SILENCE_S + 1.0 if case.outages else 1.5)
        rec.stop("test done")
        return await task

    run(main(), timeout=40)
    got = report(out)
    want = Case(got.options, sorted(case.problems), sorted(case.warnings),
                sorted(case.breaks), case.events, case.outages, got.rest, got.outage_after)
    assert got == want
    if case.outages:
        outs = Recording(out).manifest["live"]["outages"]
        assert sorted(o["inst"] for o in outs) == list(INSTS)
        assert all(o["channel"] == "books" and o["end"] is not None for o in outs)
        assert all(case.outage_after < o["seconds"] < SILENCE_S + 1.0 for o in outs)
