"""simlab beside its peers on the same real frames, in the same run (``pip install -e .[bench]``).

The frames are the real OKX capture (../shared/okx-real/cryptofeed/OKX.ws.1.0, 410 frames: 290
``books`` pushes with checksums over 3 instruments, plus trades, tickers and acks) repeated to
``PEER_FRAMES``. Every peer runs offline: its market metadata is injected, no network call is
made. Each peer module (:mod:`benchmarks.peers`) also checks, on the first cycle, that the
peer's book equals simlab's, and says so in its note.

simlab's rows, timed here on the same frames:

- ``frames -> book``: what ``LiveSource`` does per frame (parse, sequence check, checksum
  verification when on, C book update), as in :mod:`benchmarks.bench_book`;
- ``level rows -> books``: the replay kernel (:func:`simlab.book.batch.rebuild_books`, top
  of book per message) over the frames' level rows, as in :mod:`benchmarks.bench_replay`.

Each peer row's note starts with simlab's rate divided by the peer's for the matching simlab
row: frames/s rows against ``frames -> book`` with the same checksum setting, level-row
rows against ``level rows -> books``. Two rows at the end state the issue's targets: the
live path at least 5x cryptofeed's with checksum verification, and the replay path at least
as fast as hftbacktest's fastest depth.
"""

from __future__ import annotations

import importlib

from simlab.book import IMPLS
from simlab.book.l2 import default_impl
from simlab.okx import parse

from ._common import CAPTURE, capture_frames, median_rate, repeat_to
from .bench_book import feed
from .bench_replay import _timed, level_arrays

PEER_FRAMES = 41_000
PEERS = ("cryptofeed_okx", "ccxt_okx", "nautilus_book", "hftbacktest_depth")


def _row(what: str, data: str, n: int, rate: float, spread: float, unit: str,
         note: str = "") -> dict:
    return {"what": what, "data": data, "n": n, "rate": rate, "spread": spread, "unit": unit,
            "note": note}


def simlab_rows(frames: list[bytes], runs: int) -> dict[str, dict]:
    """simlab's reference rows on ``frames``: keys ``on``, ``off`` (frames -> book with and
    without checksum) and ``replay`` (level rows -> books, in level rows/s)."""
    data = f"OKX.ws.1.0 x{len(frames) // 410} ({len(frames):,} frames)"
    impl = "c" if "c" in IMPLS else "python"
    out = {}
    parse.USE_SCANNER = parse._scan is not None
    for key, checksum in (("on", True), ("off", False)):
        _, ok, bad = feed(frames, checksum, impl)
        rate, spread = median_rate(lambda c=checksum: feed(frames, c, impl)[0], runs)
        out[key] = _row(f"simlab frames -> book, seq check, checksum {key} ({impl} core)", data,
                        len(frames), rate, spread, "frames/s",
                        f"{ok:,} verified, {bad} failed" if checksum else "")
    arrays = level_arrays(frames)
    n_rows, n_msgs = len(arrays["row_px"]), len(arrays["msg_stream"])
    rate, spread = median_rate(lambda: (n_rows, _timed(arrays, impl=default_impl())[1]), runs)
    out["replay"] = _row("simlab level rows -> books, top of book (replay kernel)",
                         f"{data}: {n_msgs:,} book msgs, {n_rows:,} level rows", n_rows, rate,
                         spread, "level rows/s", f"= {rate * n_msgs / n_rows:,.0f} book msgs/s")
    return out


def _reference(row: dict, ref: dict[str, dict]) -> dict | None:
    if row.get("unit") == "level rows/s":
        return ref["replay"]
    if row.get("unit") == "frames/s":
        return ref["on"] if "checksum on" in row["what"] else ref["off"]
    return None


def run(runs: int = 5, peers: tuple[str, ...] = PEERS) -> list[dict]:
    if not CAPTURE.exists():
        return [_row("peers", f"{CAPTURE} absent: skipped", 0, "-", "-", "")]
    frames = repeat_to(capture_frames(), PEER_FRAMES)
    ref = simlab_rows(frames, runs)
    rows = list(ref.values())
    found: dict[str, list[dict]] = {}
    for name in peers:
        mod = importlib.import_module(f"benchmarks.peers.{name}")
        ver = mod.version()
        if ver is None:
            rows.append(_row(f"{mod.NAME}: not installed", f"pip install '{mod.PIP}' (or "
                             "pip install -e .[bench])", 0, "-", "-", ""))
            continue
        try:
            peer_rows = mod.run(frames, runs)
        except Exception as e:  # one broken peer must not hide the others
            rows.append(_row(f"{mod.NAME} {ver}: FAILED", f"{type(e).__name__}: {e}"[:120],
                             0, "-", "-", ""))
            continue
        for r in peer_rows:
            base = _reference(r, ref)
            if base is not None and isinstance(r["rate"], float) and r["rate"] > 0:
                r["ratio"] = base["rate"] / r["rate"]
                r["note"] = f"simlab x{r['ratio']:.1f}; {r['note']}"
        found[mod.NAME] = peer_rows
        rows += peer_rows
    rows += _targets(ref, found)
    return rows


def _targets(ref: dict[str, dict], found: dict[str, list[dict]]) -> list[dict]:
    out = []
    cf = [r for r in found.get("cryptofeed", []) if "checksum on" in r["what"]]
    if cf:
        x = ref["on"]["rate"] / cf[0]["rate"]
        out.append(_row("target: simlab live path >= 5x cryptofeed (checksum on)",
                        "same frames, same run", 0, "-", "-", "",
                        f"{'MET' if x >= 5 else 'NOT MET'}: x{x:.1f}"))
    hb = [r for r in found.get("hftbacktest", []) if isinstance(r["rate"], float)]
    if hb:
        best = max(hb, key=lambda r: r["rate"])
        x = ref["replay"]["rate"] / best["rate"]
        out.append(_row("target: simlab replay >= hftbacktest's fastest depth",
                        "same level events, same run", 0, "-", "-", "",
                        f"{'MET' if x >= 1 else 'NOT MET'}: x{x:.2f} against "
                        f"{best['what'].removeprefix('hftbacktest ')}"))
    return out


if __name__ == "__main__":
    for row in run(3):
        print(row)
