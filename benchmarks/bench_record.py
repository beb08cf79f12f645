"""Recorder throughput: frames -> Parquet dataset, alone and live from the emulator.

- ``writer``: :class:`simlab.store.RecordingWriter` (rotating part files, as the recorder
  uses it) fed the real capture (../shared/okx-real/cryptofeed/OKX.ws.1.0, 410 frames: book
  pushes with checksums, trades, tickers, acks) repeated to at least 41,000 frames: every
  frame normalised (parsed into level and trade rows), sequence- and checksum-checked and
  written (raw + levels + trades). Frames/s over the whole run, files closed included.
- ``live``: ``simlab record`` in its own process recording the emulator (in this process,
  a ``RandomMarket``, 10 instruments x books + trades at 10x OKX's push cadence) for
  ``LIVE_S`` seconds: the rate it kept up with, messages lost (sent minus recorded, must be
  0) and CPU seconds per 1,000 messages (the load is set by the emulator, so the CPU cost
  is the figure to compare). The long version is ``python -m benchmarks.soak_record``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from simlab.store import RecordingWriter

from ._common import CAPTURE, capture_frames, median_rate, repeat_to

MIN_FRAMES = 41_000
LIVE_S = 20.0


def write_all(frames: list[bytes], out: Path) -> int:
    """Write every frame into a new rotating recording; returns the frames written."""
    t = 1_652_459_225_000_000_000
    with RecordingWriter(out, {"importer": "benchmark"}, rotating=True) as w:
        for f in frames:
            t += 1_000_000
            w.add(f, t)
    return len(frames)


def run(runs: int = 5) -> list[dict]:
    rows = []
    if CAPTURE.exists():
        frames = repeat_to(capture_frames(), MIN_FRAMES)
        data = f"OKX.ws.1.0 x{len(frames) // 410} ({len(frames):,} frames)"
        tmp = Path(tempfile.mkdtemp(prefix="bench-record-"))
        k = iter(range(10**6))
        try:
            def once() -> int:
                out = tmp / f"rec{next(k)}"
                n = write_all(frames, out)
                shutil.rmtree(out)
                return n

            rate, spread = median_rate(once, max(1, runs // 2))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        rows.append({"what": "recorder writer: frames -> Parquet (parse, check, write)",
                     "data": data, "n": len(frames), "rate": rate, "spread": spread,
                     "note": "frames/s; raw + levels + trades, checksums verified"})
    else:
        rows.append({"what": "recorder writer", "data": f"{CAPTURE} absent: skipped", "n": "-",
                     "rate": "-", "spread": "-", "note": ""})
    rows.append(live())
    return rows


def live(seconds: float = LIVE_S, n_inst: int = 10, speed: float = 10.0) -> dict:
    """``simlab record`` against the emulator for ``seconds`` (one run)."""
    from .soak_record import soak

    res = {r["what"]: r["value"] for r in soak(seconds / 60, n_inst, speed, 50.0, "5m", False)}
    return {"what": "simlab record <- emulator (live, loopback, own process)",
            "data": f"RandomMarket, {n_inst} instruments x books,trades at x{speed:g}, "
                    f"{seconds:g} s",
            "n": res["messages recorded"], "rate": res["message rate"].removesuffix(" /s"),
            "spread": "-",
            "note": f"lost {res['messages lost']}, dropped {res['dropped by the recorder']}; "
                    f"CPU {res['CPU'].split('= ')[1]}; RSS peak "
                    f"{res['RSS start / peak / end'].split(' / ')[1]} MB"}


if __name__ == "__main__":
    for row in run(3):
        print(row)
