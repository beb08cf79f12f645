"""Dependencies by use: the core install records, verifies, imports and replays; a feature
whose extra is missing says which extra to install (simlab.extras).

The core install is simulated: a sitecustomize on PYTHONPATH makes every optional module
unimportable in the subprocesses (as in an environment where they were never installed).
With ``SIMLAB_CORE_PYTHON`` set to the interpreter of a real ``pip install .`` (no extras:
.ci/run makes one), the commands run there instead, without the blocker.
"""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from simlab.extras import EXTRAS, MissingExtra, available, require

ROOT = Path(__file__).resolve().parents[1]
#: every optional top-level module (what pyproject.toml's extras bring, not the core)
OPTIONAL = sorted({*EXTRAS, "IPython"})

BLOCKER = f"""
import sys

BLOCKED = {OPTIONAL!r}


class _Blocker:
    # a meta path finder first in line: the blocked packages look uninstalled
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
        return None


sys.meta_path.insert(0, _Blocker())
"""


@pytest.fixture(scope="module")
def core(tmp_path_factory):
    """(argv prefix of ``python -m simlab.cli``, env) of a core-only environment."""
    real = os.environ.get("SIMLAB_CORE_PYTHON")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if real:
        return [real, "-m", "simlab.cli"], env
    site = tmp_path_factory.mktemp("core-site")
    (site / "sitecustomize.py").write_text(BLOCKER)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])
    return [sys.executable, "-m", "simlab.cli"], env


def simlab(core, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    cmd, env = core
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


def test_the_blocker_blocks(core):
    cmd, env = core
    code = ("import importlib, sys\n"
            f"for m in {OPTIONAL!r}:\n"
            "    try:\n"
            "        importlib.import_module(m)\n"
            "    except ImportError:\n"
            "        continue\n"
            "    sys.exit(f'{m} imported')\n")
    r = subprocess.run([cmd[0], "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr


def test_record_verify_import_replay_without_any_extra(core, tmp_path):
    # simlab serve: the emulator, on loopback ports chosen by the system
    cmd, env = core
    serve = subprocess.Popen([*cmd, "serve", "--port", "0", "--rest-port", "0", "--speed", "20",
                              "--instruments", "BTC-USDT"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = [serve.stdout.readline() for _ in range(3)]
        assert serve.poll() is None, serve.communicate()
        ws_url, rest_url = lines[1].split()[1], lines[2].split()[1]
        rec = tmp_path / "rec"
        r = simlab(core, "record", "--inst", "BTC-USDT", "--channels", "books,trades",
                   "--out", str(rec), "--duration", "3s", "--rotate", "1s",
                   "--ws-url", ws_url, "--rest-url", rest_url)
        assert r.returncode == 0, r.stderr
    finally:
        serve.send_signal(signal.SIGINT)
        _, serve_err = serve.communicate(timeout=15)
    assert serve.returncode == 0, serve_err
    assert "Traceback" not in serve_err

    r = simlab(core, "verify", str(rec))
    assert r.returncode == 0, r.stdout + r.stderr

    # the recording's frames as a capture, imported into a second recording
    from simlab.store import Recording

    capture = tmp_path / "capture.txt"
    with open(capture, "wb") as f:
        for fr in Recording(rec).iter_raw():
            if fr.conn >= 0:  # the WebSocket frames (REST bodies are not capture lines)
                f.write(b"%d.%09d: %s\n" % (fr.recv_ns // 10**9, fr.recv_ns % 10**9,
                                            bytes(fr.payload)))
    r = simlab(core, "import", "okx-capture", str(capture), "--out", str(tmp_path / "imp"),
               "--no-progress")
    assert r.returncode == 0, r.stderr
    r = simlab(core, "verify", str(tmp_path / "imp"), "--json")
    assert r.returncode == 0, r.stdout + r.stderr

    for mode in ("columnar", "events"):
        r = simlab(core, "replay", str(rec), "--inst", "BTC-USDT", "--side", "buy",
                   "--notional", "100", "--mode", mode, "--out", str(tmp_path / f"{mode}.pq"))
        assert r.returncode == 0, (mode, r.stdout, r.stderr)
        assert "net" in r.stdout and "Traceback" not in r.stderr
    assert (tmp_path / "events.pq").stat().st_size > 0


def test_train_without_ml_names_the_extra(core, tmp_path):
    r = simlab(core, "train", "maker-taker", str(tmp_path / "nowhere"), "--inst", "BTC-USDT",
               "--quantity", "0.01", "--out", str(tmp_path / "m.json"))
    assert r.returncode == 2, r.stderr
    assert "scikit-learn is needed for simlab train: pip install 'simlab[ml]'" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "m.json").exists()


def test_require_and_missing_extra():
    assert require("json", feature="x").dumps([]) == "[]"
    with pytest.raises(MissingExtra) as ei:
        require("no_such_module_anywhere", feature="a test", extra="sweep")
    assert isinstance(ei.value, ImportError)
    assert str(ei.value) == ("no_such_module_anywhere is needed for a test: "
                             "pip install 'simlab[sweep]'")
    with pytest.raises(ValueError, match="give extra="):
        MissingExtra("no_such_module_anywhere", feature="a test")
    assert available("json") and not available("no_such_module_anywhere")


def test_a_missing_simlab_module_is_not_a_missing_extra():
    # a bug inside simlab must not be reported as "install an extra"
    with pytest.raises(ModuleNotFoundError) as ei:
        require("simlab.no_such_module", feature="x", extra="ml")
    assert not isinstance(ei.value, MissingExtra)


def _pyproject_extras() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]


def _names(reqs: list[str]) -> set[str]:
    out = set()
    for r in reqs:
        name = r.split(";")[0]
        for sep in "<>=!~ ":
            name = name.split(sep)[0]
        out.add(name.lower())
    return out


def test_the_table_agrees_with_pyproject():
    extras = _pyproject_extras()
    for module, (package, extra) in EXTRAS.items():
        assert package.lower() in _names(extras[extra]), (module, package, extra)
    # all = ml + sweep + notebook, dev = all + the test tools, and none of them in the core
    assert extras["all"] == ["simlab[ml,sweep,notebook]"]
    assert "simlab[all]" in extras["dev"]
    core = _names(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "dependencies"])
    optional = {p.lower() for p, _ in EXTRAS.values()}
    assert not core & optional, core & optional
    assert {"numpy", "pandas", "pyarrow", "orjson", "tqdm", "websockets", "aiohttp", "psutil",
            "zstandard"} <= core


def test_environment_yml_lists_every_dependency():
    text = (ROOT / "environment.yml").read_text()
    conda = {"dask[distributed]": "distributed", "matplotlib": "matplotlib-base",
             "duckdb": "python-duckdb"}
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = data["optional-dependencies"]
    reqs = [*data["dependencies"], *(r for k in ("ml", "sweep", "notebook", "dev")
                                     for r in extras[k] if not r.startswith("simlab["))]
    listed = {line.strip()[2:].split(">")[0].split("<")[0].split("=")[0].strip()
              for line in text.splitlines() if line.strip().startswith("- ")}
    for name in _names(reqs):
        assert conda.get(name, name) in listed, name


#: Imports of optional modules that do not (yet) go through simlab.extras.require, with the
#: helper expected to change each (issue 16). A function that imports an optional module
#: must call require() first; module-level imports of one are allowed only under
#: TYPE_CHECKING.
NOT_YET_REQUIRED = {
    "simlab/sim/train.py": "F: TrainResult.plot: require('matplotlib.pyplot', ...)",
    "simlab/monitor/report.py": "G/E: the plot_* functions: require('matplotlib.pyplot', ...)",
    "simlab/emulator/plot.py": "G: require('matplotlib') at its top",
}


def _optional_imports(tree: ast.AST) -> list[tuple[int, str, bool]]:
    """(line, module, guarded) of each import of an optional module; guarded: under
    TYPE_CHECKING, or in a function that calls require()."""
    out = []

    def visit(node, guarded: bool):
        for child in ast.iter_child_nodes(node):
            g = guarded
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                g = True
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                g = guarded or any(isinstance(n, ast.Call) and "require" in ast.unparse(n.func)
                                   for n in ast.walk(child))
            if isinstance(child, ast.Import | ast.ImportFrom):
                names = ([a.name for a in child.names] if isinstance(child, ast.Import)
                         else [child.module or ""] if not child.level else [])
                for n in names:
                    if n.partition(".")[0] in OPTIONAL:
                        out.append((child.lineno, n, g))
            visit(child, g)

    visit(tree, False)
    return out


def test_every_optional_import_goes_through_require():
    bad = []
    for path in sorted((ROOT / "simlab").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "simlab/extras.py" or rel in NOT_YET_REQUIRED:
            continue
        for line, module, guarded in _optional_imports(ast.parse(path.read_text())):
            if not guarded:
                bad.append(f"{rel}:{line}: import {module}")
    assert not bad, "import these through simlab.extras.require:\n" + "\n".join(bad)


def test_the_allow_list_holds_only_real_exceptions():
    # an entry whose file now imports correctly must go (the list only shrinks)
    stale = [rel for rel in NOT_YET_REQUIRED
             if (ROOT / rel).exists()
             and all(g for _, _, g in _optional_imports(ast.parse((ROOT / rel).read_text())))]
    assert not stale, f"remove from NOT_YET_REQUIRED: {stale}"
