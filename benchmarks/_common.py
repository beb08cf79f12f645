"""Shared helpers: locating the real capture, timing by medians, machine description."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "okx-real"
CAPTURE = SHARED / "cryptofeed" / "OKX.ws.1.0"


def capture_frames(path: Path = CAPTURE) -> list[bytes]:
    """The raw frames of a `<recv_seconds>: <json>` capture, skipping connect/request lines."""
    frames = []
    with open(path, "rb") as f:
        for line in f:
            if b" <-" in line or b"<->" in line:
                continue
            _, sep, payload = line.partition(b": ")
            if sep:
                frames.append(payload.rstrip(b"\r\n"))
    return frames


def repeat_to(frames: list[bytes], at_least: int) -> list[bytes]:
    reps = -(-at_least // len(frames))
    return frames * reps


def median_rate(fn: Callable[[], int | tuple[int, float]], runs: int = 5,
                warmup: int = 1) -> tuple[float, float]:
    """Run ``fn`` and return the median and the spread (max/min) of items per second over
    ``runs`` runs. ``fn`` returns the number of items it processed, or ``(items, seconds)``
    when it times the part that counts itself (e.g. excluding a server's start-up)."""
    for _ in range(warmup):
        fn()
    rates = []
    for _ in range(runs):
        t = time.perf_counter()
        res = fn()
        n, dt = res if isinstance(res, tuple) else (res, time.perf_counter() - t)
        rates.append(n / dt)
    return statistics.median(rates), max(rates) / min(rates)


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def today() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")


def table(rows: list[dict], cols: list[tuple[str, str]]) -> str:
    widths = [max(len(h), *(len(str(r[k])) for r in rows)) for k, h in cols]
    out = ["  ".join(h.ljust(w) for (k, h), w in zip(cols, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    for r in rows:
        out.append("  ".join(str(r[k]).ljust(w) for (k, _), w in zip(cols, widths, strict=True)))
    return "\n".join(out)
