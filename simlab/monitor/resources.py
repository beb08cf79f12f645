"""Process resource use over time: CPU, resident memory, threads (psutil).

:class:`ResourceSampler` samples this process (or another) every ``interval`` seconds from a
daemon thread, or on demand with :meth:`ResourceSampler.sample`. Each sample is a plain
tuple, so the recorder (which keeps pandas out of its process) can use it too; the table is
built only when asked for (:meth:`ResourceSampler.frame`).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psutil

#: The fields of one sample, in order.
FIELDS = ("t", "cpu_pct", "cpu_s", "rss_mb", "threads", "fds")


class ResourceSampler:
    """Sample a process's CPU %, CPU seconds, RSS (MB), threads and open files.

    ``cpu_pct`` is over the interval since the previous sample and counts every thread, so it
    can exceed 100 on several cores. ``max_samples`` bounds the memory (the oldest half is
    thinned out, keeping every other sample, when it is reached).

    >>> s = ResourceSampler(interval=0.05)
    >>> with s:
    ...     _ = sum(range(200_000))
    >>> len(s.samples) >= 2 and s.summary()["rss_mb_peak"] > 0
    True
    """

    def __init__(self, interval: float = 1.0, *, pid: int | None = None,
                 max_samples: int = 100_000) -> None:
        if not (isinstance(interval, int | float) and interval > 0):
            raise ValueError(f"interval must be a number of seconds > 0, got {interval!r}")
        if max_samples < 4:
            raise ValueError(f"max_samples must be >= 4, got {max_samples}")
        self.interval = float(interval)
        self.max_samples = max_samples
        self.proc = psutil.Process(pid)
        self.samples: list[tuple[float, float, float, float, int, int]] = []
        self._last: tuple[float, float] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def sample(self) -> tuple[float, float, float, float, int, int]:
        """Take one sample now (also what the thread does); returns it."""
        p = self.proc
        with p.oneshot():
            ct = p.cpu_times()
            cpu_s = ct.user + ct.system
            rss = p.memory_info().rss / 1e6
            threads = p.num_threads()
            try:
                fds = p.num_fds()
            except (AttributeError, psutil.Error):  # not on Windows
                fds = -1
        now = time.time()
        with self._lock:
            last = self._last
            pct = (100.0 * (cpu_s - last[1]) / (now - last[0])
                   if last is not None and now > last[0] else float("nan"))
            self._last = (now, cpu_s)
            s = (now, pct, cpu_s, rss, threads, fds)
            self.samples.append(s)
            if len(self.samples) >= self.max_samples:
                half = self.max_samples // 2
                self.samples[:half] = self.samples[:half:2]
        return s

    def start(self) -> ResourceSampler:
        """Start sampling in a daemon thread (a first sample is taken at once)."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self.sample()
        self._thread = threading.Thread(target=self._run, name="simlab-resources", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> ResourceSampler:
        """Stop the thread and take a last sample."""
        t = self._thread
        if t is not None:
            self._stop.set()
            t.join(timeout=5 * self.interval + 1)
            self._thread = None
            self.sample()
        return self

    @property
    def running(self) -> bool:
        """True while the sampling thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except psutil.Error:  # the process is gone
                return

    def __enter__(self) -> ResourceSampler:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def summary(self) -> dict[str, Any]:
        """Means, peaks and latest values over the samples: CPU % (mean, max, last), CPU
        seconds used, RSS (MB: first, last, peak), threads (last, max), open files (max),
        and how many samples."""
        with self._lock:
            s = list(self.samples)
        if not s:
            return {"samples": 0}
        pct = [x[1] for x in s if x[1] == x[1]]
        return {"samples": len(s), "span_s": s[-1][0] - s[0][0],
                "cpu_pct_mean": (100.0 * (s[-1][2] - s[0][2]) / (s[-1][0] - s[0][0])
                                 if s[-1][0] > s[0][0] else float("nan")),
                "cpu_pct_max": max(pct) if pct else float("nan"),
                "cpu_s": s[-1][2] - s[0][2],
                "rss_mb_first": s[0][3], "rss_mb_last": s[-1][3],
                "rss_mb_peak": max(x[3] for x in s),
                "cpu_pct_last": s[-1][1], "threads_last": s[-1][4],
                "threads_max": max(x[4] for x in s), "fds_max": max(x[5] for x in s)}

    def frame(self) -> Any:
        """The samples as a DataFrame (``time`` as UTC timestamps, then :data:`FIELDS`)."""
        import pandas as pd

        with self._lock:
            df = pd.DataFrame(list(self.samples), columns=list(FIELDS))
        df.insert(0, "time", pd.to_datetime(df["t"], unit="s", utc=True))
        df["elapsed_s"] = df["t"] - (df["t"].iloc[0] if len(df) else 0.0)
        return df
