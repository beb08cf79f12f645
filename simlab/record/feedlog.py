"""The live recorder's account of the feed: every break with how it was repaired
(:class:`FeedLog`, written to the manifest's ``live`` section).

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
  the end, ``seconds``), found by :class:`~simlab.record.outages.Outages` on an injected
  clock.

A ``disconnect`` break lists the ``streams`` it cut and, under ``resumed``, what the first
message of each on the next connection proved (``lossless`` and why).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from simlab.store.manifest import ns_to_iso

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
