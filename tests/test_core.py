"""Which core runs: one decision (simlab.core) for the book, the scanner and the replay kernel.

- in this process, the three take the C module from ``simlab.core.native()``;
- ``SIMLAB_PURE_PYTHON=1`` (a fresh process) selects pure Python for all three, silently,
  and gives the same results as the C core on the real capture;
- a C extension that fails to import (simulated: ``sys.modules["simlab._native"] = None``
  from a sitecustomize) gives one RuntimeWarning and the pure-Python core;
- ``simlab --version`` names the active core in each case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import capture_frames, real

import simlab
from simlab import core
from simlab.book import IMPLS, L2Book, batch, errors
from simlab.okx import messages, normalize, parse

ROOT = Path(simlab.__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
HAVE_C = "c" in IMPLS

BREAK_NATIVE = 'import sys\nsys.modules["simlab._native"] = None\n'

#: What a child process reports: which core each piece uses, and any warning at import.
PROBE = """
import json, sys, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from simlab import core
    from simlab.book import default_impl, batch
    from simlab.okx import parse, messages, normalize
print(json.dumps({
    "core": core.describe(), "book": default_impl(), "scanner": parse._scan is not None,
    "replay": batch._replay_books is not None, "scanned_type": messages.ScannedBook.__name__,
    "levels_view": normalize._Checked is not None, "native_loaded": "simlab._native" in
    sys.modules and sys.modules["simlab._native"] is not None,
    "warnings": [[w.category.__name__, str(w.message)] for w in caught],
}))
"""


def run_python(args: list[str], *, pure: bool = False, broken: Path | None = None,
               ) -> subprocess.CompletedProcess:
    """Run this interpreter on this checkout of simlab, with or without the variable, and
    with a sitecustomize that makes the C extension unimportable when ``broken`` is a dir."""
    env = {k: v for k, v in os.environ.items() if k != core.ENV_VAR}
    if pure:
        env[core.ENV_VAR] = "1"
    path = [str(ROOT), str(TESTS)]
    if broken is not None:
        broken.mkdir(exist_ok=True)
        (broken / "sitecustomize.py").write_text(BREAK_NATIVE)
        path.insert(0, str(broken))
    env["PYTHONPATH"] = os.pathsep.join([*path, env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=300, check=True)


def probe(**kw) -> dict:
    return json.loads(run_python(["-c", PROBE], **kw).stdout)


def digest(capture: str) -> dict:
    """What the active core computes on a capture: every book push parsed, normalized and
    applied to an L2Book (levels, checksum, top of book), and the columnar replay of the
    normalized rows (top of book, a walk, depth). Floats as hex, so equal means bitwise."""
    import numpy as np

    from simlab.book.batch import ASK, BID, NO_LEVEL, SNAPSHOT, Order, rebuild_books
    from simlab.okx.normalize import normalize as norm

    def h(xs) -> list[str]:
        return [float(x).hex() for x in np.asarray(xs, np.float64).ravel()]

    books: dict[str, L2Book] = {}
    states, types = [], set()
    start, stream, flags, side, px, sz = [0], [], [], [], [], []
    sides = {"bid": BID, "ask": ASK, None: NO_LEVEL}
    for f in capture_frames(Path(capture)):
        n = norm(f)
        if n.kind != "book":
            continue
        types.add(type(n.msg).__name__)
        b = books.setdefault(n.inst_id, L2Book(n.inst_id))
        (b.apply_snapshot if n.msg.is_snapshot else b.apply_update)(n.msg.bids, n.msg.asks)
        states.append([b.levels("bid", 5), b.levels("ask", 5), b.checksum(), b.impl,
                       h([b.best_bid, b.best_ask, b.depth("bid", bps=10)])])
        stream.append(list(books).index(n.inst_id))
        flags.append(SNAPSHOT if n.msg.is_snapshot else 0)
        for s, p, z in zip(n.rows["side"], n.rows["price"], n.rows["size"], strict=True):
            side.append(sides[s])
            px.append(np.nan if p is None else p)
            sz.append(np.nan if z is None else z)
        start.append(len(side))
    out = rebuild_books(start, stream, flags, side, px, sz, orders=[Order(True, 1.0)],
                        depth_n=5)
    return json.loads(json.dumps({
        "types": sorted(types), "states": states,
        "replay": h([out.bid_px, out.bid_sz, out.ask_px, out.ask_sz]) + h(out.walk)
        + h(out.depth)}))


DIGEST = "import json, sys, test_core; print(json.dumps(test_core.digest(sys.argv[1])))"


def test_the_three_take_the_module_core_chose():
    m = core.native()
    assert (m is None) == (not HAVE_C)
    assert parse._scan is getattr(m, "scan_okx_book", None)
    assert (m is not None) == parse.USE_SCANNER
    assert batch._replay_books is getattr(m, "replay_books", None)
    assert messages.ScannedBook is getattr(m, "ScannedBook", messages.BookMsg)
    assert normalize._Checked is getattr(m, "LevelsView", None)
    assert errors.BookError is getattr(m, "BookError", errors.BookError)
    assert (core.describe() == "C") == (m is not None)


def test_pure_python_switch_selects_python_for_all_three():
    got = probe(pure=True)
    assert got == {"core": "pure Python: SIMLAB_PURE_PYTHON=1", "book": "python",
                   "scanner": False, "replay": False, "scanned_type": "BookMsg",
                   "levels_view": False, "native_loaded": False, "warnings": []}


def test_default_is_the_c_core_when_built():
    got = probe()
    if not HAVE_C:
        pytest.skip("C core not active here")
    assert got == {"core": "C", "book": "c", "scanner": True, "replay": True,
                   "scanned_type": "ScannedBook", "levels_view": True, "native_loaded": True,
                   "warnings": []}


@pytest.mark.skipif(not HAVE_C, reason="C core not active here")
def test_pure_python_gives_the_c_results_on_the_real_capture():
    capture = str(real("cryptofeed", "OKX.ws.1.0"))
    c = digest(capture)
    py = json.loads(run_python(["-c", DIGEST, capture], pure=True).stdout)
    assert c["types"] == ["ScannedBook"] and py["types"] == ["BookMsg"]
    assert {s[3] for s in c["states"]} == {"c"} and {s[3] for s in py["states"]} == {"python"}
    assert len(c["states"]) == 290
    assert [s[:3] + s[4:] for s in py["states"]] == [s[:3] + s[4:] for s in c["states"]]
    assert py["replay"] == c["replay"]


def test_failed_build_warns_once_and_runs_on_python(tmp_path):
    got = probe(broken=tmp_path / "site")
    assert got["core"].startswith("pure Python: the C extension failed to import: ")
    assert "None in sys.modules" in got["core"]
    assert (got["book"], got["scanner"], got["replay"], got["scanned_type"],
            got["levels_view"], got["native_loaded"]) == ("python", False, False, "BookMsg",
                                                          False, False)
    [(category, message)] = got["warnings"]
    assert category == "RuntimeWarning"
    assert "C extension (simlab._native) failed to import" in message
    assert "10x slower" in message and "SIMLAB_PURE_PYTHON=1" in message


def test_asking_for_python_silences_the_failed_build_warning(tmp_path):
    got = probe(pure=True, broken=tmp_path / "site")
    assert got["core"] == "pure Python: SIMLAB_PURE_PYTHON=1" and got["warnings"] == []


@pytest.mark.parametrize("case", ["default", "pure", "broken"])
def test_version_names_the_active_core(case, tmp_path):
    r = run_python(["-m", "simlab.cli", "--version"], pure=case == "pure",
                   broken=tmp_path / "site" if case == "broken" else None)
    out = " ".join(r.stdout.split())  # argparse wraps a long version line
    head = f"simlab {simlab.__version__} (core: "
    assert out.startswith(head) and out.endswith(")"), out
    if case == "pure":
        assert out == head + "pure Python: SIMLAB_PURE_PYTHON=1)"
    elif case == "broken":
        assert out.startswith(head + "pure Python: the C extension failed to import: "), out
        assert r.stderr.count(": RuntimeWarning: ") == 1, r.stderr
    elif HAVE_C:
        assert out == head + "C)"
    if case != "broken":
        assert "RuntimeWarning" not in r.stderr, r.stderr
