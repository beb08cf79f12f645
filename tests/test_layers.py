"""Layers in one direction (issue 16): every module's imports, function-level and
TYPE_CHECKING ones included, parsed with ast (nothing is imported).

Ranks, lowest first; a package may import only from a lower rank (or itself). From README's
Layout and the data flow wire -> okx -> feed -> (sim | exec) -> (store/record | results |
widgets | report):

0 base: monitor, and the leaf modules (_version, units, progress, extras, jsonsafe, core, lazy, the
  C extension), which import nothing of simlab but each other
1 okx: the wire format and the live client
2 book, models: pure libraries (book takes the checksum from okx)
3 store: the recording format (feed's replay reads it, so it sits below feed)
4 feed, emulator (the exchange: protocol facts from okx, recordings from store)
5 sim
6 record (the live recorder application), sweep, widgets
6.5 demo (the library behind simlab demo: records, prices, reports)
7 cli, and the package facade simlab/__init__ (lazy public API)
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = {"monitor", "_version", "units", "progress", "extras", "jsonsafe", "core", "_native",
        "lazy"}
RANK = {**dict.fromkeys(BASE, 0), "okx": 1, "book": 2, "models": 2, "store": 3, "feed": 4,
        "emulator": 4, "sim": 5, "record": 6, "sweep": 6, "widgets": 6, "demo": 6.5, "cli": 7,
        "": 7}

#: Known exceptions to the flow, each with why (none since issue 16's redesign landed).
ALLOWED_EDGES: dict[tuple[str, str], str] = {}
ALLOWED_CYCLES: dict[frozenset, str] = {}


def modules() -> dict[str, Path]:
    out = {}
    for p in sorted((ROOT / "simlab").rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def imports(name: str, path: Path, mods: dict, type_checking: bool = True) -> set[str]:
    """The simlab modules ``name`` imports (``from pkg import mod`` names the module)."""
    tree = ast.parse(path.read_text())
    ispkg = path.name == "__init__.py"
    out: set[str] = set()

    def visit(node, tc: bool):
        for child in ast.iter_child_nodes(node):
            c_tc = tc or (isinstance(child, ast.If)
                          and "TYPE_CHECKING" in ast.unparse(child.test))
            if isinstance(child, ast.Import | ast.ImportFrom) and (type_checking or not c_tc):
                if isinstance(child, ast.Import):
                    targets = [a.name for a in child.names]
                else:
                    if child.level:
                        base = name.split(".") if ispkg else name.split(".")[:-1]
                        base = base[:len(base) - child.level + 1]
                        m = ".".join(base + ([child.module] if child.module else []))
                    else:
                        m = child.module or ""
                    subs = [f"{m}.{a.name}" for a in child.names]
                    found = [s for s in subs if s in mods or s.startswith("simlab._")]
                    if m == "simlab" and [a.name for a in child.names] == ["__version__"]:
                        found = ["simlab._version"]
                    targets = found if len(found) == len(subs) else [m, *found]
                for t in targets:
                    while t and t not in mods and not t.startswith("simlab._"):
                        t = t.rpartition(".")[0]
                    if t.startswith("simlab") and t != name:
                        out.add(t)
            visit(child, c_tc)

    visit(tree, False)
    return out


def package(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else ""


def edges(type_checking: bool = True) -> dict[str, set[str]]:
    mods = modules()
    return {n: imports(n, p, mods, type_checking) for n, p in mods.items()}


def upward() -> set[tuple[str, str]]:
    bad = set()
    for a, targets in edges().items():
        pa = package(a)
        for b in targets:
            pb = package(b)
            if pa != pb and (RANK.get(pa, 7) <= RANK.get(pb, 7)) and not (
                    RANK.get(pa) == 0 and pb in BASE and pb != "monitor"):
                bad.add((a, b))
    return bad


def cycles() -> list[frozenset]:
    g = edges(type_checking=False)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[frozenset] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in g:
                continue
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(frozenset(comp))

    for v in g:
        if v not in index:
            strong(v)
    return out


def test_monitor_imports_nothing_of_simlab_but_the_leaf_modules():
    for a, targets in edges().items():
        if package(a) == "monitor":
            assert all(package(b) in BASE for b in targets), (a, targets)


def test_every_package_has_a_rank():
    assert {package(m) for m in modules()} <= set(RANK)


def test_imports_go_down_the_layers():
    bad = sorted(e for e in upward() if (package(e[0]), package(e[1])) not in ALLOWED_EDGES)
    assert not bad, "imports against the layers:\n" + "\n".join(f"{a} -> {b}" for a, b in bad)


def test_no_import_cycles():
    bad = [sorted(c) for c in cycles() if c not in ALLOWED_CYCLES]
    assert not bad, f"import cycles: {bad}"


def test_the_parser_sees_function_level_and_relative_imports(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("from . import b\ndef f():\n    from ..okx import parse\n")
    mods = {"simlab.x.m": p, "simlab.x.b": p, "simlab.okx.parse": p}
    assert imports("simlab.x.m", p, mods) == {"simlab.x.b", "simlab.okx.parse"}
