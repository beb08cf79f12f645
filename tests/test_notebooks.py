"""The notebooks (issue 7): each one runs headless from top to bottom on the sample
recording, and the committed files are what they should be: every ``.ipynb`` paired with
its ``py:percent`` source (the reviewed file) and agreeing with it cell for cell, without
outputs, opening with a markdown cell and with a cell tagged ``parameters`` for papermill.

Also the sample recording itself: it verifies cleanly and is what ``data/make_sample.py``
(``make sample-data``) writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbformat = pytest.importorskip("nbformat")
papermill = pytest.importorskip("papermill")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SAMPLE = ROOT / "data" / "sample"
NAMES = ["01_record_and_replay", "02_impact_explorer", "03_maker_taker",
         "04_parameter_sweeps", "05_live_dashboard", "06_performance_monitor"]
#: Short settings for the executed runs (on top of DATA = the sample). The others are the
#: notebooks' defaults, which are already quick on the sample.
PARAMETERS = {
    "01_record_and_replay": {"SECONDS": 3.0},
    "05_live_dashboard": {"WARM_UP_EVENTS": 300},
}


def _cells(nb) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", [])))
            for c in nb.cells]


# -- the committed files ---------------------------------------------------------------------


def test_every_notebook_is_committed_as_a_pair():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == NAMES
    assert sorted(p.stem for p in NOTEBOOKS.glob("[0-9]*.py")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_the_ipynb_agrees_with_its_py_percent_source(name):
    ipynb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    py = jupytext.read(NOTEBOOKS / f"{name}.py")
    assert ipynb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent"
    assert py.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent"
    a, b = _cells(ipynb), _cells(py)
    assert len(a) == len(b), f"{name}: {len(a)} cells in the .ipynb, {len(b)} in the .py"
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert x == y, (f"{name}: cell {i} differs between .ipynb and .py; regenerate with "
                        f"`jupytext --to ipynb notebooks/{name}.py`")


@pytest.mark.parametrize("name", NAMES)
def test_the_ipynb_is_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    for c in code:
        assert c.outputs == [] and c.execution_count is None, c.source[:80]
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", NAMES)
def test_it_opens_with_markdown_then_parameters(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [1], f"{name}: the cell tagged 'parameters' must be the second, got {tagged}"
    params = nb.cells[1].source
    assert 'DATA = os.environ.get("SIMLAB_DATA", ' in params
    # every short setting the run below passes is a parameter of the notebook
    for key in PARAMETERS.get(name, {}):
        assert f"\n{key} = " in params, f"{name} has no parameter {key}"


# -- the sample recording --------------------------------------------------------------------


def test_the_sample_recording_verifies_cleanly():
    from simlab.store import verify

    r = verify(SAMPLE)
    assert r.ok and r.complete and not r.problems
    books = r.channels["books"]["instruments"]["BTC-USDT"]
    # 600 simulated seconds, one books push every 100 ms after the snapshot (data/README.md)
    assert (books["snapshots"], books["updates"], books["gaps"]) == (1, 6000, 0)
    assert r.channels["trades"]["instruments"]["BTC-USDT"]["messages"] > 1000
    size = sum(f.stat().st_size for f in SAMPLE.rglob("*") if f.is_file())
    assert size < 3_000_000


def test_the_sample_is_what_make_sample_data_writes(tmp_path):
    """Regenerated, every table holds the same rows (compared as data, not bytes, so that
    another pyarrow version's file metadata does not matter), and the manifest matches
    except for the wall-clock times it was written at."""
    from simlab.store import Recording

    out = tmp_path / "sample"
    subprocess.run([sys.executable, str(ROOT / "data" / "make_sample.py"), "--out", str(out)],
                   check=True, capture_output=True)
    old, new = Recording(SAMPLE), Recording(out)
    for table in ("raw_table", "levels_table", "trades_table"):
        assert getattr(old, table)().equals(getattr(new, table)()), (
            f"data/sample's {table} differs from what data/make_sample.py writes: "
            "run `make sample-data`")
    m_old, m_new = (json.loads((p / "manifest.json").read_text()) for p in (SAMPLE, out))
    for m in (m_old, m_new):
        del m["created"], m["updated"]
    assert m_old == m_new


# -- executed headless -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory):
    """``python3`` when it starts this interpreter (the venv's ipykernel); otherwise a
    kernelspec for it in a temporary JUPYTER_PATH (nothing registered globally)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    v = sys.version_info
    names = {"python", f"python{v[0]}", f"python{v[0]}.{v[1]}"}
    try:
        argv0 = KernelSpecManager().get_kernel_spec("python3").argv[0]
    except NoSuchKernel:
        argv0 = None
    # jupyter_client runs a bare "python" as sys.executable
    if argv0 in names or (argv0 and Path(argv0).resolve() == Path(sys.executable).resolve()):
        yield "python3"
        return
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "simlab-venv"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "simlab venv", "language": "python"}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(root))
        yield "simlab-venv"


@pytest.mark.parametrize("name", NAMES)
def test_the_notebook_runs_headless(name, kernel_name, tmp_path, monkeypatch):
    monkeypatch.setenv("SIMLAB_DATA", str(SAMPLE))
    out = tmp_path / f"{name}.ipynb"
    # raises PapermillExecutionError, naming the cell, on any error
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"), str(out), kernel_name=kernel_name,
        parameters={"DATA": str(SAMPLE), **PARAMETERS.get(name, {})}, cwd=str(NOTEBOOKS),
        progress_bar=False, start_timeout=120, execution_timeout=180)
    nb = nbformat.read(out, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors
