"""The two dashboards in a real browser: JupyterLab from the venv, Debian's Chromium driven by
Playwright. Notebooks 05 (trade simulator) and 02 (impact explorer) are opened and run as a
user would (Run > Run All Cells); then an input is changed and the displayed numbers must move
the way the cost models say they should.

Skips when Chromium (``/usr/bin/chromium``) or Playwright is missing, except under CI=true,
where CI installs both and a skip would hide a broken dashboard. The server runs on a copy of
``notebooks/`` with its Jupyter config, data and runtime dirs in tmp, so nothing in the repo or
in ``~/.jupyter`` is written. Screenshots go to ``$SIMLAB_SCREENSHOTS`` (e.g. ``docs/images``,
relative to the repo) when it is set, else to pytest's tmp dir.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SAMPLE = REPO / "data" / "sample"
CHROMIUM = Path("/usr/bin/chromium")
# This machine's network is closed: without these Chromium waits on connections it will never get.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 900}
SHOT_MAX_HEIGHT = 1500  # px; the README images stay small
IN_CI = os.environ.get("CI", "").lower() == "true"

# Seconds. Kernel start plus simlab's first import take 10-20 s on 2 cores.
SERVER_START = 60
KERNEL_START = 60
CELLS_RUN = 60
OUTPUT_UPDATE = 20


def unavailable(reason: str) -> None:
    """Skip, or under CI=true fail: CI installs everything this test needs."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: CI must provide it)", pytrace=False)
    pytest.skip(reason)


# --- the JupyterLab server ----------------------------------------------------------------


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: its base URL (ending in ``/``), token and root dir."""

    url: str
    token: str
    root: Path

    def notebook_url(self, notebook: str, workspace: str) -> str:
        # A workspace per notebook so each page opens only its own notebook (and kernel).
        return f"{self.url}lab/workspaces/{workspace}/tree/{notebook}?token={self.token}"

    def api(self, path: str, method: str = "GET") -> bytes:
        req = urllib.request.Request(f"{self.url}api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.read()


def lab_settings(config: Path) -> None:
    """User settings that keep JupyterLab quiet: no news or update checks (offline machine;
    their toasts would cover the page)."""
    d = config / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    d.mkdir(parents=True, exist_ok=True)
    (d / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))


def start_lab(root: Path, work: Path, data: Path) -> tuple[subprocess.Popen, Lab]:
    """Start ``jupyter lab`` (this interpreter's) on 127.0.0.1, a free port, serving ``root``;
    return once it answers. Its log is ``work/lab.log``."""
    for d in ("config", "data", "runtime", "ipython"):
        (work / d).mkdir(parents=True, exist_ok=True)
    lab_settings(work / "config")
    token = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_")}
    env.update(JUPYTER_CONFIG_DIR=str(work / "config"), JUPYTER_DATA_DIR=str(work / "data"),
               JUPYTER_RUNTIME_DIR=str(work / "runtime"), IPYTHONDIR=str(work / "ipython"),
               SIMLAB_DATA=str(data), PYDEVD_DISABLE_FILE_VALIDATION="1")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
           "--ip=127.0.0.1", "--port=0",  # port 0: the server picks a free one, no race
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = (work / "lab.log").open("wb")
    # Own session: if the polite shutdown fails, the whole group can be signalled.
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    info = work / "runtime" / f"jpserver-{proc.pid}.json"
    deadline = time.monotonic() + SERVER_START
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n"
                               f"{log_tail(work / 'lab.log')}")
        if info.is_file():
            try:
                lab = Lab(json.loads(info.read_text())["url"], token, root)
                json.loads(lab.api("status"))
                return proc, lab
            except (ValueError, KeyError, OSError):
                pass  # file half written, or the server not listening yet
        time.sleep(0.25)
    stop_lab(proc, None)
    raise RuntimeError(f"jupyter lab did not answer within {SERVER_START} s:\n"
                       f"{log_tail(work / 'lab.log')}")


def stop_lab(proc: subprocess.Popen, lab: Lab | None) -> None:
    """Shut the server down through its API (which stops its kernels), else by signals."""
    if lab is not None and proc.poll() is None:
        with contextlib.suppress(OSError):  # already gone: the signals below make sure
            lab.api("shutdown", method="POST")
    for sig, wait in ((None, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if sig is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- driving JupyterLab -------------------------------------------------------------------


def run_notebook(page, lab: Lab, notebook: str, workspace: str) -> None:
    """Open ``notebook`` and run all its cells; return when none is still running. Fails
    with the traceback text if a cell raised."""
    page.goto(lab.notebook_url(notebook, workspace))
    page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for(timeout=SERVER_START * 1000)
    # The toolbar says "idle" before the notebook even has a kernel, and "Run All" then
    # silently runs nothing: ask the server instead.
    wait_kernel(lab, notebook)
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
        state="attached", timeout=KERNEL_START * 1000)
    page.keyboard.press("Control+b")  # hide the file browser: more room for the dashboard
    # Saved outputs would show [n] prompts before anything ran: clear them first.
    menu(page, "Edit", "editmenu:clear-all")
    menu(page, "Run", "runmenu:run-all")
    # Each input prompt shows [*] while its cell waits or runs, then [n].
    page.wait_for_function(
        """() => {
            const p = [...document.querySelectorAll('.jp-Notebook .jp-InputPrompt')];
            return p.length > 0 && p.every(e => !e.textContent.includes('*'))
                && p.some(e => /\\d/.test(e.textContent));
        }""", timeout=CELLS_RUN * 1000)
    # JupyterLab renders an error like stderr; only a traceback tells them apart
    stderr = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    tracebacks = [t for t in stderr.all_text_contents() if "Traceback (most recent call" in t]
    assert not tracebacks, f"{notebook} raised:\n" + "\n".join(tracebacks)


def wait_kernel(lab: Lab, notebook: str) -> None:
    """Wait until ``notebook``'s kernel is idle with a browser connected to it."""
    deadline = time.monotonic() + KERNEL_START
    while time.monotonic() < deadline:
        for s in json.loads(lab.api("sessions")):
            k = s.get("kernel") or {}
            if (s.get("path") == notebook and k.get("execution_state") == "idle"
                    and k.get("connections", 0) > 0):
                return
        time.sleep(0.25)
    raise AssertionError(f"no idle kernel connected for {notebook} after {KERNEL_START} s; "
                         f"sessions: {lab.api('sessions').decode()}")


def menu(page, title: str, command: str) -> None:
    """Click ``title`` in the menu bar, then the item that runs ``command``."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{title}$")).click()
    page.locator(f".lm-Menu-item[data-command='{command}']").first.click()


def text(page, css: str) -> str:
    """The text of the first element matching ``css`` (waits for it to exist)."""
    loc = page.locator(css).first
    loc.wait_for(state="attached", timeout=OUTPUT_UPDATE * 1000)
    # textContent, not innerText: JupyterLab skips rendering cells out of view, and then an
    # element's innerText is empty
    return (loc.text_content() or "").strip()


def shown(page, key: str) -> float:
    """The number the output widget ``simlab-out-<key>`` shows; NaN for ``-`` (unknown)."""
    t = text(page, f".simlab-out-{key}")
    if t == "-":
        return math.nan
    try:
        return float(t)
    except ValueError:
        raise AssertionError(f"simlab-out-{key} shows {t!r}, not a number") from None


def wait_shown(page, key: str, ok: Callable[[float], bool], what: str) -> float:
    """Poll output ``key`` until ``ok(value)``; return the value. Fails naming ``what``."""
    deadline = time.monotonic() + OUTPUT_UPDATE
    while True:
        v = shown(page, key)
        if ok(v):
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"simlab-out-{key} shows {v!r} after {OUTPUT_UPDATE} s, "
                                 f"expected {what}")
        page.wait_for_timeout(100)


def wait_changed(page, key: str, old: float) -> float:
    """Wait until output ``key`` shows a number other than ``old``; return it."""
    return wait_shown(page, key, lambda v: math.isfinite(v) and v != old, f"a change from {old}")


def type_into(page, name: str, value: float) -> None:
    """Type ``value`` into the text input ``simlab-in-<name>`` and press Enter."""
    box = page.locator(f".simlab-in-{name} input").first
    box.fill(f"{value:g}")
    box.press("Enter")


def readout(page, name: str) -> float:
    """The value shown in the readout of slider ``simlab-in-<name>``."""
    return float(text(page, f".simlab-in-{name} .widget-readout"))


def slide_to(page, name: str, value: float) -> None:
    """Set slider ``simlab-in-<name>`` by typing into its readout, as a user can."""
    box = page.locator(f".simlab-in-{name} .widget-readout").first
    box.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(f"{value:g}")
    page.keyboard.press("Enter")


def nudge(page, name: str, key: str, presses: int) -> None:
    """Move slider ``simlab-in-<name>`` by ``presses`` steps with the keyboard (``key``:
    ArrowRight / ArrowLeft) on its handle."""
    handle = page.locator(f".simlab-in-{name} .noUi-handle").first
    handle.focus()
    for _ in range(presses):
        handle.press(key)


def screenshot(page, anchor: str, path: Path) -> Path:
    """A PNG of JupyterLab with the dashboard ``anchor`` at the top of the notebook: the
    usual 1400 px wide, and tall enough for the whole dashboard, charts included (up to
    ``SHOT_MAX_HEIGHT``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dash = page.locator(anchor).first
    dash.evaluate("e => e.scrollIntoView({block: 'start'})")
    box = dash.bounding_box()
    # the notebook's top in the page is the dashboard's top after the scroll
    need = int(box["y"] + box["height"]) + 40 if box else VIEWPORT["height"]
    height = min(max(VIEWPORT["height"], need), SHOT_MAX_HEIGHT)
    page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
    try:
        dash.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(500)  # let the notebook's lazy rendering catch up
        page.screenshot(path=str(path))
    finally:
        page.set_viewport_size(VIEWPORT)
    return path


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sync_api():
    try:
        from playwright import sync_api
    except ImportError as exc:
        unavailable(f"playwright cannot be imported: {exc}")
    return sync_api


@pytest.fixture(scope="module")
def browser(sync_api):
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"{CHROMIUM} not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def lab(browser, tmp_path_factory) -> Iterator[Lab]:
    if not SAMPLE.is_dir():
        unavailable(f"sample recording {SAMPLE} absent (make sample-data)")
    work = tmp_path_factory.mktemp("lab")
    root = work / "notebooks"
    # copy2 keeps mtimes: jupytext compares a pair's .py and .ipynb by them
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    proc, server = start_lab(root, work, SAMPLE)
    try:
        yield server
    finally:
        stop_lab(proc, server)


@pytest.fixture
def page(browser, lab):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where screenshots go: ``$SIMLAB_SCREENSHOTS`` (relative to the repo) or tmp."""
    target = os.environ.get("SIMLAB_SCREENSHOTS")
    return REPO / target if target else tmp_path


# --- the dashboards -----------------------------------------------------------------------

# OKX's published spot fees for regular users (Lv1) and VIP1, taker side, in bps
# (../shared/docs/okx-v5-public-feed.md: 0.100 % and 0.050 %).
TAKER_LV1_BPS, TAKER_VIP1_BPS = 10.0, 5.0


def test_trade_simulator_dashboard(page, lab, shots):
    """Notebook 05: the replay runs in the browser; paused, a 100x larger market buy costs
    more slippage, impact and net; the fee is OKX's published taker rate, Lv1 then VIP1."""
    run_notebook(page, lab, "05_live_dashboard.ipynb", "simulator")
    # the notebook starts the replay: ticks keep arriving while nobody touches anything
    ticks = wait_shown(page, "ticks", lambda v: v > 0, "ticks priced")
    wait_shown(page, "ticks", lambda v: v > ticks, f"more than {ticks:g} ticks (replaying)")
    screenshot(page, ".simlab-trade-simulator", shots / "dashboard_simulator.png")

    status = page.locator(".simlab-status").first
    if "running" in text(page, ".simlab-status"):  # else it has already ended
        page.locator("button.simlab-pause").first.click()
    status.filter(has_text=re.compile("paused|ended")).wait_for(timeout=OUTPUT_UPDATE * 1000)
    # The default order: a market buy of 10,000 USDT at the Lv1 fee tier.
    assert page.locator(".simlab-in-quantity input").first.input_value() == "10000"
    assert text(page, ".simlab-in-side .mod-active") == "buy"
    assert text(page, ".simlab-in-order_type .mod-active") == "market"
    assert page.locator(".simlab-in-fee_tier select").first.input_value() == "Lv1"
    keys = ("slippage_bps", "impact_bps", "fee_bps", "net_bps")
    before = {k: shown(page, k) for k in keys}
    assert all(math.isfinite(v) for v in before.values()), before
    # fee_bps is the fee over the mid: the rate times avg price / mid, a hair above the rate
    assert TAKER_LV1_BPS <= before["fee_bps"] < TAKER_LV1_BPS * 1.001, before

    # Paused, the book stays put: only the order changes. Each number arrives in its own
    # widget message, so wait for each.
    type_into(page, "quantity", 1_000_000)
    grew = ("slippage_bps", "impact_bps", "net_bps")  # net_bps is sent last of all four
    after = {k: wait_changed(page, k, before[k]) for k in grew}
    after["fee_bps"] = shown(page, "fee_bps")
    for k in grew:
        assert after[k] > before[k], (k, before, after)

    page.locator(".simlab-in-fee_tier select").first.select_option("VIP1")
    fee = wait_shown(page, "fee_bps", lambda v: v < TAKER_LV1_BPS, "the VIP1 rate")
    assert TAKER_VIP1_BPS <= fee < TAKER_VIP1_BPS * 1.001, fee
    # the same fill and impact, only the fee rate changed: net falls by the fee difference
    fee_cut = after["fee_bps"] - fee
    assert fee_cut == pytest.approx(TAKER_LV1_BPS - TAKER_VIP1_BPS, abs=0.01)
    wait_shown(page, "net_bps", lambda v: v == pytest.approx(after["net_bps"] - fee_cut,
                                                             abs=2e-4),
               f"net cost {after['net_bps']} - {fee_cut} bps")
    assert text(page, ".simlab-error") == ""


def ac_kappa(sigma: float, eta: float, gamma: float, lam: float, tau: float) -> float:
    """Almgren-Chriss (2000) discrete-time kappa (../shared/docs/cost-models.md):
    arccosh(kappa_tilde^2 tau^2 / 2 + 1) / tau, kappa_tilde^2 = lam sigma^2 / eta_tilde,
    eta_tilde = eta - gamma tau / 2.

    >>> round(ac_kappa(0.95, 2.5e-6, 2.5e-7, 1e-6, 1.0), 2)  # the paper's example, per day
    0.61
    """
    eta_tilde = eta - gamma * tau / 2
    return math.acosh(lam * sigma**2 / eta_tilde * tau**2 / 2 + 1) / tau


def test_impact_explorer_dashboard(page, lab, shots):
    """Notebook 02: kappa shown is Almgren-Chriss's for the sliders shown; more volatility
    with lam > 0 trades faster (larger kappa), so E and SD rise; a larger order costs more."""
    run_notebook(page, lab, "02_impact_explorer.ipynb", "impact")

    def params() -> dict[str, float]:
        return {n: readout(page, n) for n in ("sigma", "eta", "gamma", "lam", "T", "N")}

    p = params()
    assert p["lam"] > 0, p
    tau = shown(page, "tau")
    assert tau == pytest.approx(p["T"] / p["N"], rel=1e-3)
    kappa = shown(page, "kappa")
    # readouts have 4 significant digits, so the check is to about 1e-3
    assert kappa == pytest.approx(
        ac_kappa(p["sigma"], p["eta"], p["gamma"], p["lam"], tau), rel=2e-3)
    screenshot(page, ".simlab-impact-explorer", shots / "dashboard_impact.png")

    e0, sd0 = shown(page, "expected_cost"), shown(page, "std_cost")
    slide_to(page, "sigma", p["sigma"] * 3)
    kappa3 = wait_changed(page, "kappa", kappa)
    assert readout(page, "sigma") == pytest.approx(p["sigma"] * 3, rel=1e-3)
    assert kappa3 > kappa
    assert kappa3 == pytest.approx(
        ac_kappa(readout(page, "sigma"), p["eta"], p["gamma"], p["lam"], tau), rel=2e-3)
    e1 = wait_changed(page, "expected_cost", e0)
    sd1 = wait_changed(page, "std_cost", sd0)
    assert e1 > e0 and sd1 > sd0, (e0, e1, sd0, sd1)

    # the order size, moved with the keyboard on the slider's handle
    x0 = readout(page, "X")
    nudge(page, "X", "ArrowRight", 10)
    e2 = wait_changed(page, "expected_cost", e1)
    assert readout(page, "X") > x0
    assert e2 > e1, (e1, e2)
    assert text(page, ".simlab-error") == ""
