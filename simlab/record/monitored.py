"""The live recorder's store stage with each stage of each frame timed for a
:class:`~simlab.monitor.Monitor` (the writer thread's).

:class:`MonitoredStage` runs a frame through a :class:`~simlab.record.decoded.DecodedStore`
and reports, per frame: ``parse`` (turning the payload into its message and table rows: the
live client's parse, ``Decoded.parse_ns``, plus deriving the rows here; a frame the client
passed on unparsed, a pong or a malformed one, is parsed here), ``check`` (the client's
application of a book frame to its book, ``Decoded.decode_ns - parse_ns``; book frames
only), ``store`` (:meth:`RecordingWriter.store
<simlab.store.writer.RecordingWriter.store>`: buffering and counting, and keeping the
frame's integrity events) and ``write`` (each Parquet write the writer reports through
``on_write``: a flush of full buffers, or a rotation's sealing); ``queue`` is how long
frames waited before they got here, appended by the caller to :attr:`queue_times`. So
``parse`` and ``check`` are measured where they happen, once, on the client's thread.
It also counts every data frame of a stream with its receive and exchange times (feed
latency, message rates). All of it is buffered in plain lists (no container allocated per
frame: that would wake the garbage collector more often, which costs more than the
measuring) and handed to the monitor every few thousand frames and by
:meth:`flush_monitor`.
"""

from __future__ import annotations

import logging
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from simlab.jsonsafe import json_safe
from simlab.okx.frames import RawFrame
from simlab.store.schema import MALFORMED_CHANNEL, utc_date
from simlab.store.writer import partition_of

if TYPE_CHECKING:
    from simlab.monitor import Monitor

    from .decoded import DecodedStore

#: The stages a :class:`MonitoredStage` times, in order.
MONITOR_STAGES = ("queue", "parse", "check", "store", "write")
#: Frames whose stage times are buffered before they are handed to the monitor.
MONITOR_EVERY = 8192
#: Frames of no stream (not counted per stream by the monitor, as not in the manifest's
#: ``channels``).
_NOT_STREAMS = frozenset(("malformed", "event", "pong"))

Key = tuple[str, str, str]  # channel, inst, date

log = logging.getLogger("simlab.record")


class _StageTimes:
    """What was measured since it was last handed to the monitor: a list of ns per stage
    and, per partition, receive and exchange times."""

    __slots__ = ("check", "parse", "queue", "store", "streams", "write")

    def __init__(self) -> None:
        self.queue: list[int] = []
        self.parse: list[int] = []
        self.check: list[int] = []
        self.store: list[int] = []
        self.write: list[int] = []
        # (channel, inst, date) -> (kind, receive ns, exchange ms or -1)
        self.streams: dict[Key, tuple[str, list[int], list[int]]] = {}

    def hand_over(self, m: Monitor) -> None:
        for name in MONITOR_STAGES:
            values = getattr(self, name)
            if values:
                m.add_many(name, values)
                values.clear()
        for (channel, inst, _), (kind, recv, ts) in self.streams.items():
            if recv:
                m.observe_arrays(kind, channel, inst, recv, ts)
                recv.clear()
                ts.clear()


class MonitoredStage:
    """Feed ``store`` frames with every stage timed into ``monitor`` (see the module
    docstring).

    >>> import tempfile
    >>> from simlab.monitor import Monitor
    >>> from simlab.store.writer import RecordingWriter
    >>> from .decoded import DecodedStore
    >>> m = Monitor(resources=False)
    >>> w = RecordingWriter(tempfile.mkdtemp() + "/r", check_books=False)
    >>> stage = MonitoredStage(DecodedStore(w), m)
    >>> stage.add_frame(RawFrame(0, 10**18, 0, "_event", "_none", b"pong"))
    0
    >>> sorted(stage.flush_monitor().stages)
    ['parse', 'store']
    """

    def __init__(self, store: DecodedStore, monitor: Monitor) -> None:
        self.store = store
        self.writer = store.writer
        self.monitor = monitor
        self._times = _StageTimes()
        #: Append how long each frame waited before it was added (ns; e.g. in the
        #: recorder's queue): the ``queue`` stage.
        self.queue_times: list[int] = self._times.queue
        self.writer.on_write = self._times.write.append

    def add_frame(self, frame: RawFrame) -> int:
        """Store a frame as :meth:`DecodedStore.add_frame
        <simlab.record.decoded.DecodedStore.add_frame>` does, timing each stage."""
        store, times = self.store, self._times
        t0 = perf_counter_ns()
        norm = store.normalized(frame)
        t1 = perf_counter_ns()
        # the client's parse_ns is its own only for a frame it parsed (one with a message)
        msg = getattr(frame, "msg", None)
        times.parse.append(t1 - t0 + (frame.parse_ns if msg is not None else 0))
        a = store.keep(frame, norm)
        times.store.append(perf_counter_ns() - t1)
        if getattr(frame, "outcome", None) is not None:
            times.check.append(frame.decode_ns - frame.parse_ns)
        if norm.kind not in _NOT_STREAMS:
            recv_ns = frame.recv_ns
            channel, inst = partition_of(norm)
            if channel != MALFORMED_CHANNEL:  # stored as malformed (an unusable name)
                key = (channel, inst, utc_date(recv_ns))
                st = times.streams.get(key)
                if st is None:
                    st = times.streams[key] = (norm.kind, [], [])
                st[1].append(recv_ns)
                st[2].append(-1 if norm.ts_ms is None else norm.ts_ms)
        if len(times.store) >= MONITOR_EVERY:
            times.hand_over(self.monitor)
        self.writer.write_if_full()
        return a

    def flush_monitor(self) -> Monitor:
        """Hand the stage times measured since the last call to :attr:`monitor` (done every
        few thousand frames; call it before reading the monitor); returns the monitor."""
        self._times.hand_over(self.monitor)
        return self.monitor

    def into_manifest(self, manifest: dict[str, Any]) -> None:
        """A manifest hook: the monitor's summary into ``live.monitor`` (if the manifest has
        a ``live`` section), just before the manifest is written, so it includes the
        rotation's own write."""
        live = manifest.get("live")
        if not isinstance(live, dict):
            return
        try:
            live["monitor"] = json_safe(self.flush_monitor().summary())
        except Exception:  # the recording matters more than its statistics
            log.exception("could not summarise the performance monitor")
