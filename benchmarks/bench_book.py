"""Raw OKX JSON frames -> L2 books with the sequence check, with and without checksum.

The data is the real OKX capture (../shared/okx-real/cryptofeed/OKX.ws.1.0: 410 frames,
290 of them `books` pushes averaging 20 levels, plus trades, tickers and acks) repeated to
at least 140,000 frames; every frame goes through `parse_frame`, and book pushes through
`BookSync(L2Book)`, exactly as `simlab verify` does. The pure-Python fallback core runs on
the first 20,000 of them (it is ~10x slower).
"""

from __future__ import annotations

import orjson

from simlab.book import IMPLS, L2Book
from simlab.okx import BookSync, is_book, parse
from simlab.okx import parse_frame as _parse_frame

from ._common import CAPTURE, capture_frames, median_rate, repeat_to

MIN_FRAMES = 140_000
PY_FRAMES = 20_000  # the pure-Python fallback runs on the first this many frames


def feed(frames: list[bytes], checksum: bool, impl: str) -> tuple[int, int, int]:
    """Feed all frames; return (frames, checksums verified, checksums failed)."""
    syncs: dict[tuple[str, str], BookSync] = {}
    for f in frames:
        m = _parse_frame(f)
        if is_book(m):
            key = (m.channel, m.inst_id)
            s = syncs.get(key)
            if s is None:
                s = syncs[key] = BookSync(L2Book(m.inst_id, impl=impl), verify_checksum=checksum)
            s.apply(m)
    ok = sum(s.stats.checksum_verified for s in syncs.values())
    bad = sum(s.stats.checksum_failed for s in syncs.values())
    return len(frames), ok, bad


def run(runs: int = 5) -> list[dict]:
    if not CAPTURE.exists():
        return [{"what": "frames -> book", "data": f"{CAPTURE} absent: skipped",
                 "n": "-", "rate": "-", "spread": "-", "note": ""}]
    frames = repeat_to(capture_frames(), MIN_FRAMES)
    data = f"OKX.ws.1.0 x{len(frames) // 410} ({len(frames):,} frames)"
    rows = []
    rate, spread = median_rate(lambda: sum(1 for f in frames if orjson.loads(f)), runs)
    rows.append({"what": "orjson.loads alone (reference)", "data": data, "n": len(frames),
                 "rate": rate, "spread": spread, "note": ""})
    configs = [("c", True, False), ("c", True, True)]
    if "c" in IMPLS:
        configs.append(("python", False, False))
        configs.append(("python", False, True))
    for impl, scanner, checksum in configs:
        if impl not in IMPLS:
            continue
        parse.USE_SCANNER = scanner and parse._scan is not None
        fr = frames if impl == "c" else frames[:PY_FRAMES]
        try:
            n, ok, bad = feed(fr, checksum, impl)
            rate, spread = median_rate(lambda c=checksum, i=impl, fr=fr: feed(fr, c, i)[0], runs)
        finally:
            parse.USE_SCANNER = parse._scan is not None
        core = "C core + scanner" if impl == "c" else "pure Python + orjson"
        rows.append({
            "what": f"frames -> book, seq check, {'with' if checksum else 'no'} checksum ({core})",
            "data": data if impl == "c" else f"OKX.ws.1.0, first {len(fr):,} frames",
            "n": n, "rate": rate, "spread": spread,
            "note": f"{ok:,} verified, {bad} failed" if checksum else ""})
    return rows
