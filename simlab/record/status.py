"""The status line the live recorder prints while it runs: one line of counters, rewritten
in place on a terminal (:class:`StatusLine`, :func:`format_status`).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KB'``.

    >>> human_bytes(0), human_bytes(1536), human_bytes(3 * 2**30)
    ('0 B', '1.5 KB', '3.0 GB')
    """
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def format_status(s: dict[str, Any]) -> str:
    """One status line from the recorder's counters.

    >>> print(format_status({"elapsed_s": 75, "rate": 812.4, "frames": 60931,
    ...     "gaps": {"BTC-USDT": 1}, "reconnects": 0, "resyncs": 1, "files": 36,
    ...     "bytes": 4404019, "queue": 3, "dropped": 0, "rss": 88 * 2**20}))
    00:01:15  812 msg/s  60,931 msgs  gaps BTC-USDT 1  reconnects 0  resyncs 1  files 36 \
(4.2 MB)  queue 3  dropped 0  RSS 88 MB
    >>> format_status({"refused": ["books BTC-USTD"], "outages": 1,
    ...                "silent": ["books ETH-USDT"]}).split("MB")[-1]
    '  REFUSED books BTC-USTD  outages 1 (silent now: books ETH-USDT)'
    """
    t = int(s.get("elapsed_s", 0))
    alerts = ""
    if s.get("refused"):
        alerts += f"  REFUSED {', '.join(s['refused'][:4])}"
        if len(s["refused"]) > 4:
            alerts += f", +{len(s['refused']) - 4} more"
    if s.get("outages"):
        alerts += f"  outages {s['outages']}"
        if s.get("silent"):
            alerts += f" (silent now: {', '.join(s['silent'][:4])})"
    gaps = s.get("gaps") or {}
    g = ", ".join(f"{i} {n}" for i, n in sorted(gaps.items())[:6]) if gaps else "0"
    if len(gaps) > 6:
        g += f", +{len(gaps) - 6} more"
    return (f"{t // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}  {s.get('rate', 0):.0f} msg/s  "
            f"{s.get('frames', 0):,} msgs  gaps {g}  reconnects {s.get('reconnects', 0)}  "
            f"resyncs {s.get('resyncs', 0)}  files {s.get('files', 0)} "
            f"({human_bytes(s.get('bytes', 0))})  queue {s.get('queue', 0)}  "
            f"dropped {s.get('dropped', 0)}  RSS {s.get('rss', 0) / 2**20:.0f} MB{alerts}")


class StatusLine:
    """Prints the status on ``stream``: rewritten in place on a terminal, one line per
    update otherwise; :meth:`clear` makes room for a log message."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._shown = False
        self.last = 0.0

    def show(self, text: str) -> None:
        self.last = time.monotonic()
        try:
            if self.tty:
                self.stream.write("\r\x1b[K" + text)
                self._shown = True
            else:
                self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed terminal must not stop the recording

    def clear(self) -> None:
        self._leave("\r\x1b[K")

    def done(self) -> None:
        self._leave("\n")

    def _leave(self, text: str) -> None:
        """End the shown line with ``text`` (erase it, or keep it and start a new one)."""
        if self.tty and self._shown:
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a closed terminal must not stop the recording
            self._shown = False
