"""The Python snippets of README.md and docs/*.md run (issue 15, item 11).

Every ```python block runs, in order, one namespace per document, in a folder that holds
the recordings the snippets name (``rec``, ``night``, ``night1``, ``night2``,
``data/sample``), written offline by ``simlab synth``. A block that cannot run here (it
needs the internet, an object store or a client of the reader's own) says so on the line
before it, ``<!-- snippet: no-run (why) -->``; the test requires the reason and keeps such
blocks few.
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
NO_RUN = re.compile(r"<!--\s*snippet:\s*no-run\s*\(([^)]+)\)\s*-->\s*$")


def snippets(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, code, reason it may not run or None) for each python block of ``path``."""
    text = path.read_text()
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        why = NO_RUN.search(before)
        out.append((line, m.group(1), why.group(1).strip() if why else None))
    return out


def test_snippet_extraction_sees_the_markers(tmp_path):
    doc = tmp_path / "d.md"
    doc.write_text("x\n```python\na = 1\n```\n<!-- snippet: no-run (needs S3) -->\n"
                   "```python\nb = 2\n```\n")
    assert [(c, w) for _, c, w in snippets(doc)] == [("a = 1\n", None), ("b = 2\n", "needs S3")]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    from simlab.emulator.offline import write_synthetic_recording

    d = tmp_path_factory.mktemp("snippets")
    write_synthetic_recording(d / "rec", seconds=60, instruments=["BTC-USDT", "ETH-USDT"],
                              seed=1)
    write_synthetic_recording(d / "night", seconds=600, instruments=["BTC-USDT"],
                              imbalance=0.9, seed=2)
    # two nights of docs/replay-and-costs.md, inside its --start/--end
    for i, start in ((1, "2026-11-24T22:00:00Z"), (2, "2026-11-25T05:00:00Z")):
        ms = int(pd.Timestamp(start).value // 1_000_000)
        write_synthetic_recording(d / f"night{i}", seconds=30, instruments=["BTC-USDT"],
                                  seed=10 + i, start_ms=ms)
    (d / "data").mkdir()
    (d / "data" / "sample").symlink_to(ROOT / "data" / "sample")
    return d


def _run(code: str, ns: dict, where: str) -> None:
    tree = compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(tree, ns)  # the repository's own documentation
    if asyncio.iscoroutine(result):
        asyncio.run(result)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_python_snippets_run(doc: Path, workdir: Path, monkeypatch):
    blocks = snippets(doc)
    skipped = [(line, why) for line, _, why in blocks if why is not None]
    assert len(skipped) <= max(1, len(blocks) // 2), f"{doc.name}: most blocks do not run"
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    ns: dict = {"__name__": f"snippets_{doc.stem}"}
    for line, code, why in blocks:
        if why is None:
            _run(code, ns, f"{doc.relative_to(ROOT)}:{line}")
    if not any(why is None for _, _, why in blocks):
        pytest.skip(f"{doc.name}: no runnable python snippet")
    assert os.getcwd() == str(workdir)
