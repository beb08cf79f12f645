"""The live recorder's account of the feed: every break with how it was repaired
(:class:`FeedLog`, written to the manifest's ``live`` section), and the status line it
prints while it runs (:class:`StatusLine`).

:class:`FeedLog` reads the live client's events (``ClientEvent.as_dict()``, with arrival
numbers already those of the recording) in stream order and keeps:

- ``breaks``: one entry per incident: a sequence ``gap``, ``checksum_failed``, ``rejected``
  or ``buffer_overflow`` of a stream, with the repair (``resubscribe`` / ``rest``, its
  steps, the arrival and time of the snapshot that restored the book, the duration and the
  updates kept meanwhile); a ``disconnect`` with how long data was missing until the
  ``reconnect``; a ``switchover`` (64008); a ``silence``; and ``queue_overflow``, frames the
  recorder itself had to drop (what, when, how many per stream);
- ``summary``: counts per event kind and per stream (gaps, checksum failures, resyncs and
  their total time, bootstraps, duplicates, seqId resets), disconnects, total time data was
  missing, frames dropped, refusals and outages;
- ``refused``: subscriptions the server refused (``channel``, ``inst``, OKX's ``code`` and
  ``msg``, ``time``);
- ``outages``: streams silent for longer than their threshold (``channel``, ``inst``,
  ``start``: the stream's last message, ``end``: its next one or None while still silent at
  the end, ``seconds``), found by :class:`Outages` on an injected clock.

A ``disconnect`` break lists the ``streams`` it cut and, under ``resumed``, what the first
message of each on the next connection proved (``lossless`` and why).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from simlab.units import parse_duration as parse_duration  # the one parser, re-exported

from .manifest import ns_to_iso

#: Incidents kept in the manifest; later ones are only counted (``breaks_dropped``).
MAX_BREAKS = 10_000
STREAM_BREAKS = ("gap", "checksum_failed", "rejected", "buffer_overflow")
SYNC_DONE = ("synced", "resync_done")
REPAIR_STEPS = ("snapshot_timeout", "bootstrap", "rest_error", "bootstrap_retry")
_STEP_LIMIT = 20


def _key(ev: dict[str, Any]) -> str:
    return f"{ev.get('channel')}:{ev.get('inst')}"


def _stream() -> dict[str, Any]:
    return {"gaps": 0, "checksum_failed": 0, "rejected": 0, "buffer_overflow": 0,
            "resyncs": 0, "resync_s": 0.0, "bootstraps": 0, "rest_errors": 0,
            "duplicates": 0, "seq_resets": 0, "initial": None}


class FeedLog:
    """Breaks and their repairs, from the client's events (see the module docstring).

    >>> log = FeedLog()
    >>> log.event({"kind": "gap", "recv_ns": 10**18, "conn": 0, "channel": "books",
    ...            "inst": "BTC-USDT", "arrival": 7, "seq_id": 9, "prev_seq_id": 8})
    >>> log.event({"kind": "resync_started", "recv_ns": 10**18, "channel": "books",
    ...            "inst": "BTC-USDT", "how": "resubscribe", "why": "gap"})
    >>> log.event({"kind": "synced", "recv_ns": 10**18 + 5 * 10**6, "channel": "books",
    ...            "inst": "BTC-USDT", "how": "resubscribe", "arrival": 12,
    ...            "stale_arrivals": [9, 11], "duration_s": 0.005})
    >>> b = log.breaks[0]
    >>> b["kind"], b["arrival"], b["repair"]["how"], b["repair"]["arrival"]
    ('gap', 7, 'resubscribe', 12)
    >>> log.summary()["streams"]["books:BTC-USDT"]["gaps"], log.summary()["unrepaired"]
    (1, 0)
    """

    def __init__(self, max_breaks: int = MAX_BREAKS) -> None:
        self.max_breaks = max_breaks
        self.breaks: list[dict[str, Any]] = []
        self.breaks_dropped = 0
        self.kinds: Counter = Counter()
        self.streams: dict[str, dict[str, Any]] = {}
        self._open_stream: dict[str, dict[str, Any]] = {}
        self._open_conn: dict[int, dict[str, Any]] = {}
        self._switched: dict[int, dict[str, Any]] = {}
        self._initial_steps: dict[str, list[dict[str, Any]]] = {}
        self.disconnects = 0
        self.reconnects = 0
        self.switchovers = 0
        self.missing_s = 0.0
        self.dropped_frames = 0
        self.drop_episodes = 0
        self.client: dict[str, Any] = {}
        self.refused: list[dict[str, Any]] = []
        self.outages: list[dict[str, Any]] = []
        self._conn_breaks: dict[Any, dict[str, Any]] = {}

    # -- input ------------------------------------------------------------------------------
    def event(self, ev: dict[str, Any]) -> None:
        """Account for one client event (a dict as ``ClientEvent.as_dict()`` gives)."""
        kind = ev.get("kind", "?")
        self.kinds[kind] += 1
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(ev)
        elif kind in STREAM_BREAKS:
            self._stream_break(ev)
        elif kind in SYNC_DONE:
            self._synced(ev)
        elif kind in REPAIR_STEPS:
            self._step(ev)

    def outage(self, entry: dict[str, Any]) -> None:
        """Account for an outage :class:`Outages` found (or its end: the same stream's
        open entry is updated)."""
        for o in reversed(self.outages):
            if (o["channel"], o["inst"], o["start"]) == (entry["channel"], entry["inst"],
                                                         entry["start"]):
                o.update(entry)
                return
        if len(self.outages) < self.max_breaks:
            self.outages.append(dict(entry))

    def drop(self, episode: dict[str, Any]) -> None:
        """Account for frames the recorder dropped (its queue was full)."""
        self.dropped_frames += episode.get("frames", 0)
        self.drop_episodes += 1
        self._add({"kind": "queue_overflow", **episode})

    # -- events -----------------------------------------------------------------------------
    def _st(self, ev: dict[str, Any]) -> dict[str, Any]:
        k = _key(ev)
        st = self.streams.get(k)
        if st is None:
            st = self.streams[k] = _stream()
        return st

    def _base(self, ev: dict[str, Any], *fields: str) -> dict[str, Any]:
        b = {"kind": ev["kind"], "time": ns_to_iso(ev.get("recv_ns")),
             "recv_ns": ev.get("recv_ns")}
        for f in ("conn", "channel", "inst", "arrival", *fields):
            if f in ev:
                b[f] = ev[f]
        if ev.get("detail"):
            b["detail"] = ev["detail"]
        b["repair"] = None
        return b

    def _add(self, b: dict[str, Any]) -> None:
        if len(self.breaks) < self.max_breaks:
            self.breaks.append(b)
        else:
            self.breaks_dropped += 1

    def _stream_break(self, ev: dict[str, Any]) -> None:
        st = self._st(ev)
        st["gaps" if ev["kind"] == "gap" else ev["kind"]] += 1
        b = self._base(ev, "seq_id", "prev_seq_id", "expected_prev", "ts", "held")
        self._add(b)
        self._open_stream[_key(ev)] = b

    def _on_resync_started(self, ev: dict[str, Any]) -> None:
        st = self._st(ev)
        st["resyncs"] += 1
        b = self._open_stream.get(_key(ev))
        if b is not None:
            b["repair"] = {"how": ev.get("how"), "started": ns_to_iso(ev.get("recv_ns")),
                           "done": False, "steps": []}

    def _step(self, ev: dict[str, Any]) -> None:
        st = self._st(ev)
        if ev["kind"] == "bootstrap":
            st["bootstraps"] += 1
        elif ev["kind"] == "rest_error":
            st["rest_errors"] += 1
        b = self._open_stream.get(_key(ev))
        if b is not None and b["repair"] is not None:
            steps = b["repair"]["steps"]
        elif b is None and st["initial"] is None:
            steps = self._initial_steps.setdefault(_key(ev), [])  # the first sync
        else:
            return
        if len(steps) < _STEP_LIMIT:
            step = {"kind": ev["kind"], "time": ns_to_iso(ev.get("recv_ns"))}
            for f in ("seq_id", "status", "code", "attempt"):
                if ev.get(f) is not None:
                    step[f] = ev[f]
            steps.append(step)

    def _synced(self, ev: dict[str, Any]) -> None:
        st = self._st(ev)
        done = {"how": ev.get("how"), "arrival": ev.get("arrival"),
                "time": ns_to_iso(ev.get("recv_ns")), "seq_id": ev.get("seq_id"),
                "duration_s": ev.get("duration_s"), "stale_arrivals": ev.get("stale_arrivals")}
        b = self._open_stream.pop(_key(ev), None)
        if b is not None:
            rep = b["repair"] or {"steps": []}
            rep.update(done, done=True)
            b["repair"] = rep
            st["resync_s"] = round(st["resync_s"] + (ev.get("duration_s") or 0.0), 3)
        elif st["initial"] is None:
            st["initial"] = {**done, "steps": self._initial_steps.pop(_key(ev), [])}
        else:
            st["resync_s"] = round(st["resync_s"] + (ev.get("duration_s") or 0.0), 3)

    def _on_duplicate(self, ev: dict[str, Any]) -> None:
        self._st(ev)["duplicates"] += 1

    def _on_seq_reset(self, ev: dict[str, Any]) -> None:
        self._st(ev)["seq_resets"] += 1

    def _on_disconnect(self, ev: dict[str, Any]) -> None:
        conn = ev.get("conn")
        sw = self._switched.pop(conn, None)
        if sw is not None or ev.get("expected"):
            if sw is not None:
                sw["old_closed"] = ns_to_iso(ev.get("recv_ns"))
            return  # a planned close: no data missing
        self.disconnects += 1
        b = self._base(ev, "code", "expected", "since_data_s", "lived_s", "streams")
        self._add(b)
        self._open_conn[conn] = b
        self._conn_breaks[conn] = b

    def _on_resumed(self, ev: dict[str, Any]) -> None:
        b = self._conn_breaks.get(ev.get("previous_conn"))
        if b is not None:
            b.setdefault("resumed", {})[_key(ev)] = {
                "lossless": bool(ev.get("lossless")), "detail": ev.get("detail"),
                "conn": ev.get("conn"), "time": ns_to_iso(ev.get("recv_ns"))}

    def _on_refused(self, ev: dict[str, Any]) -> None:
        self.refused.append({"channel": ev.get("channel"), "inst": ev.get("inst"),
                             "code": ev.get("code"), "msg": ev.get("msg"),
                             "time": ns_to_iso(ev.get("recv_ns"))})

    def _on_reconnect(self, ev: dict[str, Any]) -> None:
        self.reconnects += 1
        missing = ev.get("missing_s") or 0.0
        self.missing_s = round(self.missing_s + missing, 3)
        b = self._open_conn.pop(ev.get("previous_conn"), None)
        if b is not None:
            b["repair"] = {"how": "reconnect", "conn": ev.get("conn"),
                           "arrival": ev.get("arrival"), "time": ns_to_iso(ev.get("recv_ns")),
                           "missing_s": missing, "done": True}

    def _on_switchover(self, ev: dict[str, Any]) -> None:
        self.switchovers += 1
        b = self._base(ev, "old_conn", "joined", "streams", "overlap_s", "duplicates_dropped")
        b["repair"] = {"how": "switchover", "conn": ev.get("conn"), "missing_s": 0.0,
                       "done": True}
        self._add(b)
        if ev.get("old_conn") is not None:
            self._switched[ev["old_conn"]] = b

    def _on_silence(self, ev: dict[str, Any]) -> None:
        b = self._base(ev, "silent_s")
        b["repair"] = {"how": "data flows again", "done": True}
        self._add(b)

    def _on_closed(self, ev: dict[str, Any]) -> None:
        self.client = {k: v for k, v in ev.items() if k not in ("kind", "recv_ns", "detail",
                                                                 "arrival")}

    # -- output -----------------------------------------------------------------------------
    def unrepaired(self) -> int:
        return sum(1 for b in self.breaks if b["kind"] in (*STREAM_BREAKS, "disconnect")
                   and not (b["repair"] or {}).get("done"))

    def gaps_by_inst(self) -> dict[str, int]:
        """Sequence breaks (gaps, checksum failures, rejections) per instrument."""
        out: Counter = Counter()
        for k, st in self.streams.items():
            n = st["gaps"] + st["checksum_failed"] + st["rejected"]
            if n:
                out[k.partition(":")[2]] += n
        return dict(out)

    def summary(self) -> dict[str, Any]:
        return {
            "breaks": len(self.breaks) + self.breaks_dropped,
            "unrepaired": self.unrepaired(),
            "disconnects": self.disconnects, "reconnects": self.reconnects,
            "switchovers": self.switchovers, "missing_s": self.missing_s,
            "resyncs": sum(st["resyncs"] for st in self.streams.values()),
            "dropped_frames": self.dropped_frames, "drop_episodes": self.drop_episodes,
            "refused": len(self.refused), "outages": len(self.outages),
            "events": dict(sorted(self.kinds.items())),
            "streams": {k: dict(v) for k, v in sorted(self.streams.items())},
        }

    def section(self) -> dict[str, Any]:
        """The manifest's ``live`` section (without the recorder's own fields)."""
        return {"summary": self.summary(), "breaks": self.breaks,
                "breaks_dropped": self.breaks_dropped, "client": self.client,
                "refused": self.refused, "outages": self.outages}


# -- outages -----------------------------------------------------------------------------------
@dataclass
class Outages:
    """Streams silent for longer than their threshold, on an injected clock (ns).

    ``streams`` maps ``(channel, inst)`` to its threshold in seconds (None: never an
    outage); ``start_ns`` is when the recording started (a stream that never sent anything
    is silent since then). Call :meth:`data` for every message of a stream and
    :meth:`check` now and then; both return outage entries that started or ended.

    >>> o = Outages({("books", "BTC-USDT"): 60.0}, start_ns=0)
    >>> o.data(("books", "BTC-USDT"), 1_000_000_000)
    >>> o.check(30 * 10**9), o.check(62 * 10**9)[0]["seconds"]
    ([], 61.0)
    >>> o.data(("books", "BTC-USDT"), 75 * 10**9)["end"]
    '1970-01-01T00:01:15.000000Z'
    """

    streams: dict[tuple[str, str], float | None]
    start_ns: int
    last: dict[tuple[str, str], int] = field(default_factory=dict)
    open: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    count: int = 0

    def data(self, key: tuple[str, str], now_ns: int) -> dict[str, Any] | None:
        """A message of ``key`` at ``now_ns``; returns the outage it ends, if any."""
        self.last[key] = now_ns
        if not self.open:
            return None
        o = self.open.pop(key, None)
        if o is not None:
            o["end"] = ns_to_iso(now_ns)
            o["seconds"] = round((now_ns - o["start_ns"]) / 1e9, 3)
        return o

    def check(self, now_ns: int) -> list[dict[str, Any]]:
        """Outages that began: streams silent for longer than their threshold."""
        out = []
        for key, limit in self.streams.items():
            if limit is None or key in self.open:
                continue
            since = self.last.get(key, self.start_ns)
            if now_ns - since > limit * 1e9:
                o = {"channel": key[0], "inst": key[1], "start": ns_to_iso(since),
                     "end": None, "seconds": round((now_ns - since) / 1e9, 3),
                     "threshold_s": limit, "start_ns": since}
                self.open[key] = o
                self.count += 1
                out.append(o)
        return out

    def drop(self, keys: Iterable[tuple[str, str]]) -> None:
        """Stop watching ``keys`` (e.g. refused subscriptions)."""
        for k in keys:
            self.streams.pop(k, None)
            self.open.pop(k, None)

    def close(self, now_ns: int) -> list[dict[str, Any]]:
        """The outages still open at the end (``end`` stays None, ``seconds`` so far)."""
        for o in self.open.values():
            o["seconds"] = round((now_ns - o["start_ns"]) / 1e9, 3)
        return list(self.open.values())


def outage_thresholds(subscriptions: Iterable[tuple[str, str]], books: float | None,
                      other: float | None,
                      is_book: Callable[[str], bool]) -> dict[tuple[str, str], float | None]:
    """Each stream's outage threshold: ``books`` for book channels, ``other`` for the rest.

    >>> outage_thresholds([("books", "X"), ("trades", "X")], 90.0, None,
    ...                   lambda ch: ch.startswith("books"))
    {('books', 'X'): 90.0, ('trades', 'X'): None}
    """
    return {(ch, inst): books if is_book(ch) else other for ch, inst in subscriptions}


# -- status line --------------------------------------------------------------------------------
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
        if self.tty and self._shown:
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self._shown = False

    def done(self) -> None:
        if self.tty and self._shown:
            try:
                self.stream.write("\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self._shown = False
