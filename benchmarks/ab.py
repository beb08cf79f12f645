"""Before/after: the whole package as of an earlier commit against the working tree, in one
process, alternating runs (so both see the same machine), medians.

    python -m benchmarks.ab [--before a1c46c8] [--rounds 7] [--only live,replay]

The earlier tree is taken with ``git archive``, renamed to the package ``simlab_before``
(its ``simlab`` imports and module-name strings rewritten; nothing else) and its C core
built into it, so both packages load side by side and each row runs the same work through
each, in turns: before, after, after, before ... The first round of each is a warm-up.

Rows (data: the BTC-USDT ``books`` frames of the real OKX capture, repeated):

- ``live per event``: frames through the live client's frame handling (the connection
  replaced by direct calls, no socket: what a frame costs the process) and the feed
  decoding to book ticks, then the per-event cost pipeline; the live code path. Events/s.
- ``live feed per event``: the same without the pipeline: what issue 16 changed (each frame
  parsed and applied once instead of twice), apart from the pricing that dominates the row
  above.
- ``live recorder per frame``: the live client as above, each frame it yields stored as the
  live recorder's writer thread stores it (without its monitor; rotating part files, closed
  at the end): before, the format writer parsed and checked it again; now the store stage
  takes the client's decoded frame. Frames/s.
- ``replay per event``: ``CostPipeline.run(ReplaySource(...))`` over a recording.
- ``columnar``: ``CostPipeline.run_recording`` over the same recording.
- ``price_recording``: the whole pricing run as ``simlab replay`` makes it (read, calibrate
  impact, price), ticks/s.
- ``record``: frames -> ``RecordingWriter`` (parse, check, store, Parquet), frames/s.
- ``verify``: ``simlab.store.verify`` of the recording (every file read in full), frames/s.

Each row needs only the public API both trees share; where the live client's internals
differ, :func:`live_before` and :func:`live_after` drive each tree's own frame handler.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from types import ModuleType
from typing import Any

from ._common import CAPTURE, REPO, capture_frames, machine, table, today

BEFORE = "a1c46c8"  # the last commit before issue 16 (the redesign)
PKG = "simlab_before"
_MOD_STRING = re.compile(r"""(["'])simlab((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\1""")
_IMPORT = re.compile(r"^(\s*)(from|import)\s+simlab\b", re.M)


def before_package(commit: str, root: Path) -> ModuleType:
    """The package as of ``commit``, importable as ``simlab_before`` (built under ``root``)."""
    tar = subprocess.run(["git", "archive", "--format=tar", commit, "simlab", "setup.py"],
                         cwd=REPO, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(tar)) as t:
        t.extractall(root, filter="data")
    (root / "simlab").rename(root / PKG)
    pkg = root / PKG
    modules = {".".join(p.relative_to(pkg).with_suffix("").parts).removesuffix(".__init__")
               for p in pkg.rglob("*.py")}

    def rename_string(m: re.Match) -> str:
        # only strings that name one of the package's modules ("simlab.okx"), never data
        # such as a schema name ("simlab.model")
        return f"{m[1]}{PKG}{m[2]}{m[1]}" if m[2][1:] in modules else m[0]

    for p in pkg.rglob("*.py"):
        src = p.read_text()
        src = _IMPORT.sub(lambda m: f"{m[1]}{m[2]} {PKG}", src)
        p.write_text(_MOD_STRING.sub(rename_string, src))
    sources = [str(p.relative_to(root)) for p in pkg.rglob("*.c")]
    if sources:
        setup = ("from setuptools import Extension, setup\n"
                 f"setup(name='{PKG}', ext_modules=[Extension('{PKG}._native', {sources!r}, "
                 "extra_compile_args=['-O2', '-std=c11', '-Wall', '-Wno-missing-braces'])])\n")
        (root / "setup.py").write_text(setup)
        subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=root,
                       check=True, capture_output=True)
    sys.path.insert(0, str(root))
    return importlib.import_module(PKG)


def imp(pkg: str, name: str) -> ModuleType:
    return importlib.import_module(f"{pkg}.{name}")


def book_frames(n: int) -> list[bytes]:
    """The capture's BTC-USDT book frames repeated to ``n``, given the sequence ids today's
    OKX sends (the 2022 capture predates them): ``prevSeqId``/``seqId`` chain through all
    repetitions (each starts with its snapshot, ``prevSeqId`` -1), so a live client takes
    every frame as a new message, not a repeat. Levels and checksums are untouched."""
    frames = [f for f in capture_frames()
              if b'"channel":"books"' in f and b'"instId":"BTC-USDT"' in f]
    out: list[bytes] = []
    seq = 1000
    while len(out) < n:
        for f in frames:
            prev = -1 if b'"action":"snapshot"' in f else seq
            seq += 1
            out.append(f.replace(b'"checksum":', b'"prevSeqId":%d,"seqId":%d,"checksum":'
                                 % (prev, seq), 1))
    return out[:n]


def order_and_ac(pkg: str) -> tuple[Any, Any]:
    order = imp(pkg, "sim.order").OrderSpec("BTC-USDT", "buy", 50_000.0, "quote",
                                            fee_tier="VIP1")
    ac = imp(pkg, "models.impact").ACParams(sigma=6.0, eta=5.0, gamma=0.1, epsilon=0.0,
                                            lam=1e-6, T=60.0, N=10)
    return order, ac


META = {"BTC-USDT": {"instType": "SPOT"}}


def make_recording(out: Path, frames: list[bytes]) -> None:
    from simlab.store import RecordingWriter

    t = 1_652_459_225_000_000_000
    with RecordingWriter(out, {"importer": "benchmark"}, flush_rows=200_000) as w:
        w.set_instrument("BTC-USDT", {"instType": "SPOT", "tickSz": "0.1"})
        for f in frames:
            t += 1_000_000
            w.add(f, t)


# -- the live path, driven through each tree's own frame handler ------------------------------
#: Frames received between two drains of the client's output (as a socket read delivers
#: several): the same for both trees.
BATCH = 64


def bare_client(pkg: str) -> tuple[Any, Any]:
    """A tree's OkxClient on BTC-USDT books and a connection object made by hand as the
    current one of its only slot (no socket: frames go to its handler directly)."""
    client_mod = imp(pkg, "okx.client")
    budget = imp(pkg, "okx.connection").RequestBudget(480, 3600.0)
    client = client_mod.OkxClient([("books", "BTC-USDT")], book_factory=imp(pkg, "book").L2Book)
    now = time.monotonic()
    c = client_mod._Conn(0, 0, None, "", budget, now, now)
    client._slots[0].current = c
    client._conns[0] = c
    return client, c


def live_before(pkg: str, frames: list[bytes], consume: Callable[[Any], int]) -> int:
    """a1c46c8's client: ``OkxClient._on_frame`` per frame (the connection object made by
    hand; that client parsed and applied each frame as it was received), each frame it
    yields handed to ``consume`` (what its consumer did with it: see :func:`consumers`).
    Returns the sum of what ``consume`` returned."""
    client, c = bare_client(pkg)
    RawFrame = imp(pkg, "okx.frames").RawFrame
    ready = client._ready
    n = 0
    recv = time.time_ns()
    for k in range(0, len(frames), BATCH):
        for f in frames[k:k + BATCH]:
            client._on_frame(c, f, recv)
        while ready:
            item = ready.popleft()
            if type(item) is RawFrame:
                n += consume(item)
    return n


def live_after(pkg: str, frames: list[bytes], consume: Callable[[Any], int]) -> int:
    """Today's client: its I/O-free ``FeedHandler.frame`` per frame (a connection opened
    in the handler, no socket), the client's own ``stream(decoded=True)`` (each frame parsed
    once on receipt, applied once as it is yielded), each frame it yields handed to
    ``consume``. Returns the sum of what ``consume`` returned."""
    import asyncio

    client = imp(pkg, "okx.client").OkxClient([("books", "BTC-USDT")],
                                              book_factory=imp(pkg, "book").L2Book)
    h = client.handler
    conn = h.opened(0, current=True)
    h.drain()  # the subscribe it asks for: no socket to send it on
    client._started = True  # no connections: frames are handed to the handler directly
    Decoded = imp(pkg, "okx.decoded").Decoded
    ready, frame = h.ready, h.frame
    mark = object()  # put behind each batch: the stream yields it when the batch is out

    async def main() -> int:
        stream = client.stream(decoded=True)
        n = 0
        recv = time.time_ns()
        for k in range(0, len(frames), BATCH):
            for f in frames[k:k + BATCH]:
                frame(conn, f, recv)
            ready.append(mark)
            while (item := await stream.__anext__()) is not mark:
                if type(item) is Decoded:
                    n += consume(item)
        await stream.aclose()
        return n

    return asyncio.run(main())


# -- rows -------------------------------------------------------------------------------------
def alternate(fns: dict[str, Callable[[], tuple[int, float]]], rounds: int
              ) -> dict[str, list[float]]:
    """Rates (items/s) of each function, run in turns; round 0 is a warm-up."""
    rate: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(rounds + 1):
        for k in (("before", "after") if i % 2 else ("after", "before")):
            n, dt = fns[k]()
            if i:
                rate[k].append(n / dt)
    return rate


def timed(fn: Callable[[], int]) -> Callable[[], tuple[int, float]]:
    def run() -> tuple[int, float]:
        t = time.perf_counter()
        n = fn()
        return n, time.perf_counter() - t
    return run


def rows_for(what: str, data: str, unit: str, rate: dict[str, list[float]]) -> list[dict]:
    b, a = (statistics.median(rate[k]) for k in ("before", "after"))
    spread = {k: max(v) / min(v) for k, v in rate.items()}
    return [{"what": what, "data": data, "before": f"{b:,.0f}", "after": f"{a:,.0f}",
             "ratio": f"{a / b:.2f}",
             "note": f"{unit}; max/min {spread['before']:.2f} / {spread['after']:.2f}"}]


class _NoPricing:
    """Stands in for the cost pipeline where a row times the feed alone: takes each event
    and does nothing with it."""

    def _price(self, ev: Any) -> None:
        pass


def feed_consumer(k: str, pkg: str, pipe: Any) -> Callable[[Any], int]:
    """What a tree's ``LiveSource`` does with each frame the client yields: its
    ``FrameDecoder`` (before: ``decode``, a second parse and apply; after: ``decoded``,
    events from the client's own parse and outcome), each event to ``pipe``. Returns the
    events."""
    dec = imp(pkg, "feed.decode").FrameDecoder()
    fn, on = (dec.decode if k == "before" else dec.decoded), pipe._price

    def consume(item: Any) -> int:
        n = 0
        for ev in fn(item):
            on(ev)
            n += 1
        return n
    return consume


def recorder_stage(k: str, pkg: str, dest: Path) -> tuple[Callable[[Any], int], Any]:
    """What a tree's live recorder's writer thread does with each frame the client yields
    (without its monitor), and the format writer to close: before, a
    ``RecordingWriter(check_books=True)`` (a second parse and apply); after, the
    ``DecodedStore`` around a ``RecordingWriter(check_books=False)`` (rows from the
    client's parsed message, its outcome's events)."""
    Writer = imp(pkg, "store.writer").RecordingWriter
    shutil.rmtree(dest, ignore_errors=True)
    w = Writer(dest, {"importer": "benchmark"}, check_books=(k == "before"), rotating=True)
    add = w.add_frame if k == "before" else imp(pkg, "record.decoded").DecodedStore(w).add_frame

    def consume(item: Any) -> int:
        add(item)
        return 1
    return consume, w


def bench_live(pkgs: dict[str, str], rounds: int, n: int, tmp: Path) -> list[dict]:
    frames = book_frames(n)
    drivers = {"before": live_before, "after": live_after}
    data = f"BTC-USDT books, {n:,} frames"

    def make(k: str, priced: bool) -> Callable[[], tuple[int, float]]:
        order, ac = order_and_ac(pkgs[k])
        pl = imp(pkgs[k], "sim.pipeline")

        def run() -> int:
            if not priced:
                return drivers[k](pkgs[k], frames, feed_consumer(k, pkgs[k], _NoPricing()))
            pipe = pl.CostPipeline(order, impact=ac, metadata=META)
            pipe.reset()
            return drivers[k](pkgs[k], frames, feed_consumer(k, pkgs[k], pipe))
        return timed(run)

    def record(k: str) -> Callable[[], tuple[int, float]]:
        def run() -> int:
            consume, w = recorder_stage(k, pkgs[k], tmp / f"live-rec-{k}")
            n = drivers[k](pkgs[k], frames, consume)
            w.close()
            return n
        return timed(run)

    return (rows_for("live per event: client + feed decode + cost pipeline", data,
                     "events/s", alternate({k: make(k, True) for k in pkgs}, rounds))
            + rows_for("live feed per event: client + feed decode (no pricing)", data,
                       "events/s", alternate({k: make(k, False) for k in pkgs}, rounds))
            + rows_for("live recorder per frame: client + writer thread's store (Parquet)",
                       data, "frames/s", alternate({k: record(k) for k in pkgs}, rounds)))


def bench_replay(pkgs: dict[str, str], rounds: int, rec: Path, n: int) -> list[dict]:
    out: list[dict] = []
    data = f"BTC-USDT books, {n:,} msgs"

    def per_event(k: str) -> Callable[[], tuple[int, float]]:
        order, ac = order_and_ac(pkgs[k])
        pipe = imp(pkgs[k], "sim.pipeline").CostPipeline(order, impact=ac, metadata=META)
        Replay = imp(pkgs[k], "feed.replay").ReplaySource
        return timed(lambda: len(pipe.run(Replay(rec, insts=["BTC-USDT"],
                                                 channels=["books"])).table))

    def columnar(k: str) -> Callable[[], tuple[int, float]]:
        order, ac = order_and_ac(pkgs[k])
        pipe = imp(pkgs[k], "sim.pipeline").CostPipeline(order, impact=ac, metadata=META)
        return timed(lambda: len(pipe.run_recording(rec).table))

    def pricing(k: str) -> Callable[[], tuple[int, float]]:
        order, _ = order_and_ac(pkgs[k])
        price = imp(pkgs[k], "sim.run").price_recording
        return timed(lambda: len(price(rec, order, monitor=False)[0].table))

    out += rows_for("replay per event: ReplaySource + cost pipeline", data, "ticks/s",
                    alternate({k: per_event(k) for k in pkgs}, rounds))
    out += rows_for("columnar: CostPipeline.run_recording", data, "ticks/s",
                    alternate({k: columnar(k) for k in pkgs}, rounds))
    out += rows_for("price_recording (impact calibrated, as simlab replay)", data, "ticks/s",
                    alternate({k: pricing(k) for k in pkgs}, rounds))
    return out


def bench_store(pkgs: dict[str, str], rounds: int, rec: Path, n: int, tmp: Path) -> list[dict]:
    frames = book_frames(n)
    out: list[dict] = []

    def record(k: str) -> Callable[[], tuple[int, float]]:
        Writer = imp(pkgs[k], "store").RecordingWriter

        def run() -> int:
            dest = tmp / f"w-{k}"
            shutil.rmtree(dest, ignore_errors=True)
            t = 1_652_459_225_000_000_000
            with Writer(dest, {"importer": "benchmark"}, flush_rows=200_000) as w:
                for f in frames:
                    t += 1_000_000
                    w.add(f, t)
            return len(frames)
        return timed(run)

    def verify(k: str) -> Callable[[], tuple[int, float]]:
        fn = imp(pkgs[k], "store.verify").verify
        return timed(lambda: fn(rec).frames)

    out += rows_for("record: frames -> RecordingWriter (parse, check, store)",
                    f"BTC-USDT books, {n:,} frames", "frames/s",
                    alternate({k: record(k) for k in pkgs}, rounds))
    out += rows_for("verify: every file read, books rebuilt", f"BTC-USDT books, {n:,} frames",
                    "frames/s", alternate({k: verify(k) for k in pkgs}, rounds))
    return out


GROUPS = ("live", "replay", "store")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default=BEFORE, help=f"the earlier commit (default {BEFORE})")
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    ap.add_argument("--only", default=",".join(GROUPS),
                    help=f"comma list of row groups (default all: {','.join(GROUPS)})")
    ap.add_argument("--frames", type=int, default=100_000,
                    help="book frames per run (default 100,000)")
    args = ap.parse_args(argv)
    only = [g.strip() for g in args.only.split(",") if g.strip()]
    bad = sorted(set(only) - set(GROUPS))
    if bad:
        ap.error(f"--only: unknown group(s) {bad}; expected some of {list(GROUPS)}")
    if not CAPTURE.exists():
        print(f"benchmarks.ab: the real capture {CAPTURE} is absent: nothing to measure",
              file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="simlab-ab-") as tmp_s:
        tmp = Path(tmp_s)
        before_package(args.before, tmp / "before")
        pkgs = {"before": PKG, "after": "simlab"}
        rec = tmp / "rec"
        make_recording(rec, book_frames(args.frames))
        rows: list[dict] = []
        if "live" in only:
            rows += bench_live(pkgs, args.rounds, args.frames, tmp)
        if "replay" in only:
            rows += bench_replay(pkgs, args.rounds, rec, args.frames)
        if "store" in only:
            rows += bench_store(pkgs, args.rounds, rec, args.frames, tmp)
    print(f"simlab before ({args.before}) / after (working tree), {today()}, {machine()}, "
          f"{args.rounds} alternating rounds, medians")
    print(table(rows, [("what", "what"), ("data", "data"), ("before", "before /s"),
                       ("after", "after /s"), ("ratio", "after/before"), ("note", "note")]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
