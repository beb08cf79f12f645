"""A writer killed at every step of a commit: pandas, DuckDB, pyarrow and simlab read exactly
the rows the manifest lists (issue 15: part files used to be renamed into view before the
manifest listed them, so ``pandas.read_parquet("rec/raw")`` read rows the manifest did not).

In process, the fault hook (``simlab.store.atomic._crash_at``) copies the directory at the
step (what a kill -9 there leaves on disk) and stops the writer; in a subprocess it sends
the writer SIGKILL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.dataset as pads
import pyarrow.fs
import pytest

import simlab.store.atomic as atomic
from simlab.store import Recording, RecordingWriter, verify
from simlab.store.atomic import COMMIT_STEPS

duckdb = pytest.importorskip("duckdb")

T0 = 1_652_459_225 * 10**9
DATASETS = ("raw", "levels", "trades")


class Killed(BaseException):
    """Stands for the process dying: nothing after the step runs."""


def batches(wire) -> tuple[list[bytes], list[bytes]]:
    """Two commits' worth of frames over several partitions of every dataset."""
    x, y = wire.BookFeed("BTC-USDT"), wire.BookFeed("ETH-USDT", seq=5)
    first = [wire.subscribe("books", "BTC-USDT"), wire.subscribe("trades", "BTC-USDT"),
             x.snapshot([wire.lv("100", "1"), wire.lv("99", "2")], [wire.lv("101", "1")]),
             y.snapshot([wire.lv("10", "1")], [wire.lv("11", "1")]),
             x.update([wire.lv("100", "3")], []),
             wire.trade("BTC-USDT", "1", "101", "0.5", "buy", wire.T0_MS + 10),
             b"pong", b'{"arg":{"channel":"books"']
    second = [x.update([], [wire.lv("101", "2")]), y.update([wire.lv("10", "0")], []),
              wire.trade("BTC-USDT", "2", "100", "0.1", "sell", wire.T0_MS + 20),
              x.heartbeat(), y.update([], [wire.lv("12", "1", 2)]),
              wire.trade("BTC-USDT", "3", "100", "0.2", "sell", wire.T0_MS + 30),
              b"pong", x.update([wire.lv("98", "1")], [])]
    return first, second


def scenario(path: Path, first: list[bytes], second: list[bytes], rotating: bool,
             hook=None) -> RecordingWriter:
    """Commit ``first``, then add and commit ``second`` with the fault hook set."""
    w = RecordingWriter(path, {"importer": "test"}, rotating=rotating,
                        flush_rows=4 if rotating else 10**6)
    for i, p in enumerate(first):
        w.add(p, T0 + i)
    w.rotate()
    atomic._crash_at = hook
    try:
        for i, p in enumerate(second, len(first)):
            w.add(p, T0 + i)
        w.rotate()
    finally:
        atomic._crash_at = None
    return w


def listed(path: Path) -> dict[str, dict]:
    m = json.loads((path / "manifest.json").read_text())
    return {f["path"]: f for f in m["files"]}


def visible(path: Path, dataset: str) -> list[str]:
    """The files pandas / pyarrow dataset discovery reads from ``path/dataset``."""
    if not (path / dataset).exists():
        return []
    d = pads.dataset(path / dataset, format="parquet", partitioning="hive")
    return sorted(Path(f).relative_to(path).as_posix() for f in d.files)


def pandas_arrivals(path: Path, dataset: str) -> Counter:
    if not (path / dataset).exists():
        return Counter()
    return Counter(pd.read_parquet(path / dataset, columns=["arrival"])["arrival"].tolist())


def duckdb_arrivals(path: Path, dataset: str) -> Counter:
    if not list((path / dataset).rglob("*.parquet")):
        return Counter()
    rows = duckdb.sql(f"SELECT arrival FROM read_parquet('{path}/{dataset}/**/*.parquet', "
                      "hive_partitioning=true)").fetchall()
    return Counter(r[0] for r in rows)


def simlab_arrivals(rec: Recording, dataset: str) -> Counter:
    return Counter(rec.table(dataset, columns=["arrival"])["arrival"].to_pylist())


def check_crashed(path: Path, step: str, arrivals: tuple[int, int]) -> None:
    """What a reader of ``path`` sees after the writer died at ``step``."""
    files = listed(path)
    m = json.loads((path / "manifest.json").read_text())
    before_listing = COMMIT_STEPS.index(step) < COMMIT_STEPS.index("manifest-written")
    assert m["arrivals"] == (arrivals[0] if before_listing else arrivals[1]), step
    unrenamed = set(files)
    for ds in DATASETS:
        # before anything repairs it: no reader sees a file the manifest does not list
        shown = visible(path, ds)
        assert set(shown) <= set(files), (step, ds, set(shown) - set(files))
        unrenamed -= set(shown)
        if before_listing or step == "committed":
            assert shown == sorted(p for p, f in files.items() if f["dataset"] == ds), step
        # simlab through a pyarrow filesystem (no repair: reads the hidden temporaries)
        remote = Recording(str(path), filesystem=pyarrow.fs.LocalFileSystem())
        assert sum(simlab_arrivals(remote, ds).values()) == m["rows"][ds], (step, ds)
    rec = Recording(path)  # completes an interrupted commit
    assert set(rec.recovered) == unrenamed, step
    assert not unrenamed or step in ("manifest-written", "file-renamed"), step
    for ds in DATASETS:
        want = simlab_arrivals(rec, ds)
        assert sum(want.values()) == m["rows"][ds] == sum(
            f["rows"] for f in files.values() if f["dataset"] == ds), (step, ds)
        assert pandas_arrivals(path, ds) == want, (step, ds)
        assert duckdb_arrivals(path, ds) == want, (step, ds)
        assert visible(path, ds) == sorted(p for p, f in files.items() if f["dataset"] == ds)
    raw = set(simlab_arrivals(rec, "raw"))
    assert raw == set(range(m["arrivals"])), step
    assert set(simlab_arrivals(rec, "levels")) | set(simlab_arrivals(rec, "trades")) <= raw
    rep = verify(path)
    assert rep.ok, (step, rep.problems)
    assert rep.frames == m["arrivals"]


@pytest.mark.parametrize("rotating", [True, False], ids=["rotating", "import"])
def test_killed_at_every_step_of_a_commit(tmp_path, wire, rotating):
    first, second = batches(wire)
    steps: list[str] = []
    scenario(tmp_path / "dry", first, second, rotating, hook=steps.append).close()
    assert set(steps) == set(COMMIT_STEPS), steps  # every kind of step is exercised
    assert steps.count("file-renamed") >= 5
    n = (len(first), len(first) + len(second))
    for i, step in enumerate(steps):
        at = tmp_path / f"crash{i}"
        seen: list[str] = []

        def hook(s, i=i, at=at, seen=seen):
            seen.append(s)
            if len(seen) == i + 1:
                shutil.copytree(tmp_path / "r", at)  # the disk as a kill -9 here leaves it
                raise Killed(s)

        shutil.rmtree(tmp_path / "r", ignore_errors=True)
        with pytest.raises(Killed):
            scenario(tmp_path / "r", first, second, rotating, hook=hook)
        check_crashed(at, step, n)


CHILD = textwrap.dedent("""
    import json, os, signal, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from test_rotation_crash import scenario
    first, second = ([f.encode("latin-1") for f in b] for b in json.loads(sys.argv[3]))
    target, calls = sys.argv[4], []

    def hook(step):
        calls.append(step)
        if step == target and calls.count(step) == int(sys.argv[5]):
            os.kill(os.getpid(), signal.SIGKILL)

    scenario(Path(sys.argv[2]), first, second, rotating=True, hook=hook)
    sys.exit(3)  # not killed: the step never came
""")


@pytest.mark.parametrize("step,nth", [("file-finished", 2), ("manifest-temp", 1),
                                      ("file-renamed", 3)])
def test_sigkilled_recorder_process(tmp_path, wire, step, nth):
    first, second = batches(wire)
    frames = json.dumps([[f.decode("latin-1") for f in b] for b in (first, second)])
    proc = subprocess.run([sys.executable, "-c", CHILD, str(Path(__file__).parent),
                           str(tmp_path / "r"), frames, step, str(nth)],
                          capture_output=True, timeout=60, env={**os.environ})
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    check_crashed(tmp_path / "r", step, (len(first), len(first) + len(second)))


def test_a_reader_completing_a_commit_does_not_break_the_writer(tmp_path, wire):
    # a Recording opened while the writer is between its manifest and its renames (a live
    # recording read in place) renames the files itself; the writer must carry on
    first, second = batches(wire)
    opened: list[Recording] = []

    def hook(step):
        if step == "manifest-written" and not opened:
            opened.append(Recording(tmp_path / "r"))

    w = scenario(tmp_path / "r", first, second, rotating=True, hook=hook)
    assert opened and opened[0].recovered  # the reader did the renames
    w.close()
    rec = Recording(tmp_path / "r")
    assert rec.recovered == [] and rec.manifest["complete"]
    assert simlab_arrivals(rec, "raw") == pandas_arrivals(tmp_path / "r", "raw")
    assert sum(pandas_arrivals(tmp_path / "r", "raw").values()) == len(first) + len(second)
    assert verify(tmp_path / "r").ok
