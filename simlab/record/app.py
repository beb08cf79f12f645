"""``simlab record``: record the live OKX feed overnight into a simlab recording.

The asyncio loop runs the live client (:class:`simlab.okx.client.OkxClient`) and does
nothing slow: each frame (decoded once by the client, :class:`~simlab.okx.decoded.Decoded`:
its message and, for a book frame, its integrity outcome) and event goes into a bounded
queue (:class:`~simlab.record.writer_queue.WriterQueue`), and a writer thread
(:class:`~simlab.record.writer_thread.WriterThread`) turns them into the recording: the
format writer (:class:`~simlab.store.writer.RecordingWriter` in rotating mode, without a
book check of its own) wrapped by the store stage
(:class:`~simlab.record.decoded.DecodedStore`: rows from the message, integrity events from
the outcome, the client's integrity summary at every rotation) and the monitoring stage.
Nothing there parses or applies a frame again.
Every ``rotate`` seconds the current part files are closed (flushed, fsync'd, renamed) and
listed in the manifest, so a crash loses at most the current rotation and readers never
see a half-written file.

If the disk cannot keep up and the queue is full, frames are dropped, never silently: each
run of drops (an *episode*: arrival range, frames and bytes per stream, time span) is
logged and written to the manifest (``live.breaks`` entries of kind ``queue_overflow``,
``live.summary.dropped_frames``). Arrival numbers in the recording stay 0..n-1; events
that name client arrivals are translated to the recording's.

A refused subscription (an error answering a subscribe, e.g. OKX's 60018 for an instrument
that does not exist) stops the recording with :class:`RefusedError` naming the channel,
instrument and OKX's code and message (a stream refused only later, on a resubscribe, lets
the others record on and raises it at the end), unless ``allow_partial``: then the others are
recorded, a warning goes to the log (and the terminal) and the refusal to the manifest
(``live.refused``). What was asked for is in the manifest from the start (``requested``); a
stream silent for longer than ``outage_after`` (book channels) or ``trade_outage_after``
(trades and the rest) is an outage (``live.outages``), timed on the injectable ``clock``.

A write error (a full disk) stops the recording: the files closed before stay intact and
listed, the current rotation is removed, and :class:`RecordError` names the directory and
what could not be written. The log goes to ``DIR/record.log`` (:mod:`simlab.record.log`;
ignored by ``simlab verify``'s stray-file check).

A :class:`~simlab.monitor.Monitor` (on by default) times each frame's stages
(:class:`~simlab.record.monitored.MonitoredStage`: ``queue``: waiting in the queue;
``parse`` and ``check``, measured in the client; ``store``; ``write`` per Parquet write),
the feed latency and message counts per stream, and the process's CPU, RSS and threads;
its summary goes to the manifest (``live.monitor``) at every rotation and at the end. See
``docs/recording-format.md``, "Live recording".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import psutil

from simlab import __version__
from simlab.book import L2Book
from simlab.monitor import Monitor
from simlab.okx.client import ClientEvent, OkxClient
from simlab.okx.decoded import Decoded
from simlab.okx.frames import RawFrame
from simlab.okx.messages import BOOK_CHANNELS
from simlab.store.manifest import RecordingError, ns_to_iso, utc_now, write_manifest
from simlab.store.writer import RecordingWriter

from .decoded import DecodedStore, integrity_snapshot
from .feedlog import FeedLog
from .log import RECORD_LOG, RecordLog
from .monitored import MonitoredStage
from .outages import Outages, outage_thresholds
from .status import StatusLine, format_status
from .writer_queue import Drops, WriterQueue
from .writer_thread import WriterThread

log = logging.getLogger("simlab.record")

#: How often the status goes to the log (the terminal gets it every ``status_interval``).
LOG_STATUS_EVERY_S = 60.0
_STREAM_BREAK_KINDS = ("gap", "checksum_failed", "rejected")
#: The live client's ``dedup_window`` unless given (see :class:`Recorder`).
DEDUP_WINDOW = 1024
#: A book stream silent this long is an outage: OKX pushes a book at least every ~60 s
#: (a heartbeat when nothing changed), so a healthy book is never this quiet.
OUTAGE_AFTER_S = 90.0


class RecordError(RecordingError):
    """The recording had to stop on an error (e.g. a full disk); the message names the
    directory and what failed. Files closed before are intact and listed."""


class RefusedError(RecordError):
    """The server refused a subscription (and ``allow_partial`` was not given); the
    message names each refused channel and instrument with OKX's code and message.
    ``refused`` lists them as in the manifest's ``live.refused``; ``result`` is what was
    recorded (the files are closed and listed)."""

    def __init__(self, message: str, refused: list[dict[str, Any]],
                 result: RecordResult | None = None) -> None:
        super().__init__(message)
        self.refused = refused
        self.result = result


@dataclass
class RecordResult:
    """What a finished :func:`record` did."""

    path: str
    frames: int = 0
    events: int = 0
    dropped: int = 0
    rotations: int = 0
    files: int = 0
    bytes: int = 0
    elapsed_s: float = 0.0
    stop_reason: str = ""
    breaks: int = 0
    disconnects: int = 0
    missing_s: float = 0.0
    per_stream: dict[str, int] = field(default_factory=dict)
    #: The recorder's performance monitor (None when it ran without one).
    monitor: Monitor | None = field(default=None, repr=False)
    #: Subscriptions the server refused (with ``allow_partial``), as in ``live.refused``.
    refused: list[dict[str, Any]] = field(default_factory=list)
    outages: int = 0
    #: Frames stored as malformed (the manifest's ``malformed.count``).
    malformed: int = 0
    #: Requested streams, not refused, that sent nothing (``simlab verify`` fails them).
    silent: list[str] = field(default_factory=list)

    def summary(self) -> str:
        refused = "".join(f"; REFUSED {r['channel']} {r['inst']} ({r['code']} {r['msg']})"
                          for r in self.refused)
        if self.silent:
            refused += f"; NO DATA from {', '.join(self.silent)}"
        return (f"recorded {self.frames:,} frames in {self.path} ({self.elapsed_s:.1f} s, "
                f"{self.stop_reason}): {self.files} files, {self.bytes / 2**20:.1f} MB, "
                f"{self.breaks} breaks, {self.disconnects} disconnects "
                f"({self.missing_s:.1f} s missing), {self.outages} outages, {self.dropped} "
                f"frames dropped, {self.malformed} malformed{refused}; log "
                f"{Path(self.path) / RECORD_LOG}")


class Recorder:
    """Record ``subscriptions`` (``(channel, instId)`` pairs) into a new recording ``out``.

    ``duration`` (s, None: until :meth:`stop`), ``rotate`` (s between closing the part
    files), ``queue_frames``/``queue_bytes`` (the writer queue's bounds), ``flush_rows``/
    ``flush_bytes`` (the writer's buffers, see :mod:`simlab.store.writer`), ``status`` (a stream for
    the status line, None for stderr, False for none) every ``status_interval`` s,
    ``console`` (also log warnings on stderr). ``tap`` is called with every frame written,
    numbered as in the recording, as the client decoded it (a
    :class:`~simlab.okx.decoded.Decoded`; e.g. a :class:`simlab.feed.live.FrameTap` pricing
    each tick live decodes nothing again); an exception in it is logged and never stops
    the recording. ``metadata``: fetch the
    instruments' metadata (tick size, contract value ...) from the REST API at start and
    keep it in the manifest. ``monitor``: True (default) for a
    :class:`~simlab.monitor.Monitor` of the writer thread's stages, the feed and the
    process's resources (sampled every ``status_interval`` s) kept in the manifest
    (``live.monitor``) and in :attr:`monitor`; a Monitor of your own to fill (started, and
    stopped at the end, only if it was not running); False for none. The writer thread
    fills it: read it once :meth:`run` has returned (or from the manifest).
    ``allow_partial``: a refused subscription is a warning and the rest is recorded (default:
    it stops the recording, :class:`RefusedError`). ``outage_after`` / ``trade_outage_after``:
    seconds a book / other stream may be silent before it is an outage (None: never);
    ``clock``: the time in ns they are measured on (default ``time.time_ns``). Other keywords
    are :class:`~simlab.okx.client.ClientConfig` fields (``ws_url``, ``rest_url``, timeouts...).

    >>> async def main():                                               # doctest: +SKIP
    ...     rec = Recorder("rec", [("books", "BTC-USDT"), ("trades", "BTC-USDT")],
    ...                    duration=3600, rotate=300)
    ...     return await rec.run()
    """

    def __init__(self, out: str | Path, subscriptions: Iterable[tuple[str, str]], *,
                 duration: float | None = None, rotate: float = 300.0,
                 queue_frames: int = 50_000, queue_bytes: int = 32 << 20,
                 flush_rows: int = 10_000, flush_bytes: int = 8 << 20,
                 status: TextIO | bool | None = False, status_interval: float = 1.0,
                 console: bool = False, tap: Callable[[RawFrame], Any] | None = None,
                 metadata: bool = True, monitor: Monitor | bool = True,
                 allow_partial: bool = False, outage_after: float | None = OUTAGE_AFTER_S,
                 trade_outage_after: float | None = None,
                 clock: Callable[[], int] = time.time_ns, **client_options: Any) -> None:
        self.out = Path(out)
        self.subscriptions = [(str(c), str(i)) for c, i in subscriptions]
        if not self.subscriptions:
            raise ValueError("subscriptions: expected at least one (channel, instId) pair")
        if duration is not None and duration <= 0:
            raise ValueError(f"duration must be > 0 seconds, got {duration}")
        if rotate <= 0:
            raise ValueError(f"rotate must be > 0 seconds, got {rotate}")
        if queue_frames < 1 or queue_bytes < 1:
            raise ValueError("queue_frames and queue_bytes must be >= 1")
        for name, v in (("outage_after", outage_after),
                        ("trade_outage_after", trade_outage_after)):
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be > 0 seconds (or None), got {v}")
        self.allow_partial = allow_partial
        self.outage_after, self.trade_outage_after = outage_after, trade_outage_after
        self._clock = clock
        self.outages = Outages(outage_thresholds(self.subscriptions, outage_after,
                                                 trade_outage_after,
                                                 lambda ch: ch in BOOK_CHANNELS), clock())
        #: Refused subscriptions, as in the manifest's ``live.refused``.
        self.refused: list[dict[str, Any]] = []
        if not isinstance(monitor, Monitor | bool):
            raise TypeError(f"monitor must be a simlab.monitor.Monitor or a bool, got "
                            f"{type(monitor).__name__}")
        if monitor is True:
            # binning in larger batches: fewer numpy calls per frame on the writer thread
            monitor = Monitor(interval=status_interval if status_interval > 0 else 1.0,
                              flush_every=16_384)
        self.monitor: Monitor | None = monitor if isinstance(monitor, Monitor) else None
        self._monitor_started = False
        self.duration, self.rotate = duration, float(rotate)
        self.flush_rows, self.flush_bytes = flush_rows, flush_bytes
        self.status_interval = status_interval
        self.console = console
        # The client remembers this many keys per stream to drop duplicates across a
        # switchover; 1,024 still covers minutes of a book stream at OKX's pace, and the
        # default (4,096) costs ~25 MB more with 40 streams.
        self.client_options = {"dedup_window": DEDUP_WINDOW, **client_options}
        self._status_stream = status
        self.tap = tap
        self.tap_errors = 0
        self.fetch_metadata = metadata
        self.q = WriterQueue(queue_frames, queue_bytes)
        self.feedlog = FeedLog()
        self.client: OkxClient | None = None
        #: The recording being written (once :meth:`run` has opened it).
        self.recording: RecordingWriter | None = None
        #: What the writer thread hands each frame to: the
        #: :class:`~simlab.record.decoded.DecodedStore` around :attr:`recording`, or the
        #: :class:`~simlab.record.monitored.MonitoredStage` around that.
        self.writer: DecodedStore | MonitoredStage | None = None
        # loop side
        self.frames = 0  # frames received from the client
        self.per_stream: Counter = Counter()
        self.gaps: Counter = Counter()
        self.reconnects = 0
        self.resyncs = 0
        self.events = 0
        self.dropped = 0
        self._written = 0  # frames queued for the writer (its next arrival)
        self.drops = Drops()
        self._stop = asyncio.Event()
        self._stop_reason = ""
        self._last_frame = time.monotonic()
        self._t0 = time.monotonic()
        self._thread: WriterThread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proc = psutil.Process()
        self.rss_start = self.rss_peak = self._proc.memory_info().rss
        self._log: RecordLog | None = None
        self._status: StatusLine | None = None

    # -- the writer thread's counters ---------------------------------------------------------
    @property
    def rotations(self) -> int:
        """Rotations done (the last one, closing, included)."""
        return self._thread.rotations if self._thread is not None else 0

    @property
    def files(self) -> int:
        """Part files listed in the manifest so far."""
        return self._thread.files if self._thread is not None else 0

    @property
    def bytes(self) -> int:
        """Their size on disk."""
        return self._thread.bytes if self._thread is not None else 0

    @property
    def _error(self) -> BaseException | None:
        return self._thread.error if self._thread is not None else None

    # -- control ----------------------------------------------------------------------------
    def stop(self, reason: str = "stopped") -> None:
        """Finish: close the client, write what is queued, close the files. Idempotent;
        safe from a signal handler on the loop."""
        if self._stop.is_set():
            log.warning("already stopping (%s); waiting for the files to close",
                        self._stop_reason)
            return
        self._stop_reason = reason
        log.info("stopping: %s", reason)
        self._stop.set()

    @property
    def dropping(self) -> bool:
        """True while frames are being dropped (the writer queue is full)."""
        return self.drops.episode is not None

    def status(self) -> dict[str, Any]:
        """The counters the status line shows."""
        rss = self._proc.memory_info().rss
        self.rss_peak = max(self.rss_peak, rss)
        return {"elapsed_s": time.monotonic() - self._t0, "frames": self.frames,
                "gaps": dict(self.gaps), "reconnects": self.reconnects, "resyncs": self.resyncs,
                "files": self.files, "bytes": self.bytes, "queue": self.q.frames,
                "dropped": self.dropped, "rss": rss,
                "refused": [f"{r['channel']} {r['inst']}" for r in self.refused],
                "outages": self.outages.count,
                "silent": [f"{c} {i}" for c, i in self.outages.open]}

    async def idle(self, quiet: float = 0.3, timeout: float = 10.0) -> None:
        """Wait until no frame came for ``quiet`` s from now on (tests: the feed is
        drained)."""
        start = time.monotonic()
        end = start + timeout
        while time.monotonic() < end:
            if time.monotonic() - max(self._last_frame, start) >= quiet:
                return
            await asyncio.sleep(quiet / 4)
        raise TimeoutError(f"frames still arriving after {timeout} s")

    async def until(self, predicate, timeout: float = 10.0, what: str = "condition") -> None:
        """Wait until ``predicate()`` is true (tests)."""
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                raise TimeoutError(f"{what} not reached within {timeout} s")
            if self._stop.is_set():
                raise RuntimeError(f"the recorder stopped ({self._stop_reason}) before {what}")
            await asyncio.sleep(0.02)

    # -- run --------------------------------------------------------------------------------
    async def run(self) -> RecordResult:
        """Record until :meth:`stop`, the duration, or a write error (raises
        :class:`RecordError` after closing everything it can)."""
        self._loop = asyncio.get_running_loop()
        self._t0 = self._last_frame = time.monotonic()
        self.outages.start_ns = self._clock()
        self._open()
        consumer = ticker = None
        try:
            self.client = OkxClient(self.subscriptions, book_factory=L2Book,
                                    **self.client_options)
            log.info("recording %d streams to %s (rotate every %g s%s), ws %s, rest %s",
                     len(self.subscriptions), self.out, self.rotate,
                     f", for {self.duration:g} s" if self.duration else "",
                     self.client.cfg.ws_url, self.client.cfg.rest_url)
            if self.fetch_metadata:
                await self._metadata()
            consumer = asyncio.create_task(self._consume(self.client), name="record-consume")
            ticker = asyncio.create_task(self._tick(), name="record-tick")
            await self._stop.wait()
            await self._finish(consumer)
        finally:
            if self.client is not None:
                # idempotent; after a cancellation it still closes the connections
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(self.client.close(), 10)
            for t in (ticker, consumer):
                if t is not None and not t.done():
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await t
            if self._thread is not None and self._thread.is_alive():
                self._integrity()
                self.q.put(("close", self._stop_reason or "interrupted"))
                await asyncio.to_thread(self._thread.join, 60)
            if self._thread is None or not self._thread.is_alive():
                self._stop_monitor()  # done by the writer thread unless it failed early
            if self._log is not None:
                self._log.close()
        if self._error is not None:
            raise RecordError(self._thread.error_msg) from self._error
        if self.refused and (not self.allow_partial
                             or len(self.refused) == len(self.subscriptions)):
            raise RefusedError(self._refused_message(), list(self.refused), self._result())
        return self._result()

    def _refused_message(self) -> str:
        what = "; ".join(f"{r['channel']} {r['inst']}: {r['code']} {r['msg']}"
                         for r in self.refused)
        n = len(self.refused)
        if len(self.refused) == len(self.subscriptions):
            hint = "every subscription was refused; check --inst and --channels"
        else:
            hint = ("check --inst and --channels, or give --allow-partial to record the "
                    "other streams")
        return (f"{self.out}: the server refused {n} subscription{'s' if n > 1 else ''} "
                f"({what}); {hint}. The manifest lists the refusal (live.refused)")

    def _open(self) -> None:
        if self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir())):
            raise RecordingError(f"{self.out}: already exists and is not an empty directory; "
                                 "choose a new path for the recording")
        source = {"recorder": "simlab record", "simlab_version": __version__,
                  "subscriptions": [list(s) for s in self.subscriptions],
                  "ws_url": self.client_options.get("ws_url"),
                  "rest_url": self.client_options.get("rest_url"),
                  "rotate_s": self.rotate, "duration_s": self.duration,
                  "recv_time": "local clock (time.time_ns) when the client read the frame"}
        # no book check in the writer: the client applied every book frame, once
        rec = self.recording = RecordingWriter(self.out, source, flush_rows=self.flush_rows,
                                               flush_bytes=self.flush_bytes, check_books=False,
                                               rotating=True)
        store = DecodedStore(rec)
        stage = None
        if self.monitor is not None:
            stage = MonitoredStage(store, self.monitor)
            rec.manifest_hooks.append(stage.into_manifest)
        self.writer = stage if stage is not None else store
        # What was asked for, beside what arrives (channels), from the first manifest on.
        rec.manifest["requested"] = [{"channel": ch, "inst": inst}
                                     for ch, inst in self.subscriptions]
        write_manifest(self.out, rec.manifest)
        self._recorder_info = {"started": utc_now(), "stopped": None, "stop_reason": None,
                               "rotate_s": self.rotate, "rotations": 0, "log": RECORD_LOG,
                               "allow_partial": self.allow_partial,
                               "outage_after_s": self.outage_after,
                               "trade_outage_after_s": self.trade_outage_after,
                               "queue": {"max_frames": self.q.max_frames,
                                         "max_bytes": self.q.max_bytes}}
        if self._status_stream is not False:
            stream = self._status_stream if self._status_stream not in (None, True) \
                else None
            self._status = StatusLine(stream)
        self._log = RecordLog(self.out, self._status, self.console)
        self._log.open()
        mon = self.monitor
        if mon is not None and (mon.resources is None or not mon.resources.running):
            mon.start()
            self._monitor_started = True
        self._thread = WriterThread(
            rec, self.writer, self.q, self.feedlog, self._live, self._recorder_info,
            queue_times=stage.queue_times if stage is not None else None,
            stop_monitor=self._stop_monitor, on_error=self._write_failed)
        self._thread.start()

    def _write_failed(self, reason: str) -> None:
        """Called by the writer thread after a write error: stop, on the loop."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop may be closing
                self._loop.call_soon_threadsafe(self.stop, reason)

    async def _finish(self, consumer: asyncio.Task) -> None:
        client = self.client
        if client is not None:
            try:
                await asyncio.wait_for(client.close(), 30)
            except Exception as e:  # the files matter more than a clean goodbye
                log.error("closing the client failed: %s: %s", type(e).__name__, e)
        try:
            await asyncio.wait_for(consumer, 30)
        except Exception as e:
            log.error("the client's stream did not end cleanly: %s: %s", type(e).__name__, e)
        self._end_episode()
        for o in self.outages.close(self._clock()):
            self.q.put(("outage", dict(o)))
        self._integrity()
        self.q.put(("close", self._stop_reason))
        await asyncio.to_thread(self._thread.join)

    def _result(self) -> RecordResult:
        s = self.feedlog.summary()
        return RecordResult(str(self.out), self.frames, self.events, self.dropped,
                            self.rotations, self.files, self.bytes,
                            round(time.monotonic() - self._t0, 3), self._stop_reason,
                            s["breaks"], s["disconnects"], s["missing_s"],
                            {f"{c}:{i}": n for (c, i), n in sorted(self.per_stream.items())},
                            self.monitor, list(self.refused), self.outages.count,
                            self.recording.manifest["malformed"]["count"]
                            if self.recording is not None else 0, self._silent())

    def _silent(self) -> list[str]:
        refused = {(r["channel"], r["inst"]) for r in self.refused}
        return [f"{c} {i}" for c, i in self.subscriptions
                if (c, i) not in refused and not self.per_stream[(c, i)]]

    # -- loop side: client -> queue ---------------------------------------------------------
    async def _consume(self, client: OkxClient) -> None:
        try:
            async for item in client.stream(decoded=True):
                if isinstance(item, RawFrame):
                    self._frame(item)
                elif isinstance(item, ClientEvent):
                    self._event(item.as_dict())
        except Exception as e:
            log.exception("the live client failed")
            self.stop(f"client error: {type(e).__name__}: {e}")
            return
        if not self._stop.is_set():
            self.stop("the client's stream ended")

    def _frame(self, f: Decoded) -> None:
        self.frames += 1
        self._last_frame = time.monotonic()
        if self._error is not None:
            return  # the writer is gone; the recording is stopping
        key = (f.channel, f.inst)
        self.per_stream[key] += 1
        ended = self.outages.data(key, self._clock())
        if ended is not None:
            log.warning("%s %s: data again after %.3f s of silence (outage since %s)",
                        f.channel, f.inst, ended["seconds"], ended["start"])
            self.q.put(("outage", dict(ended)))
        if self.q.put_frame(f):
            if self.tap is not None:
                self._tap(f._replace(arrival=self._written))
            self._written += 1
            if self.drops.episode is not None:
                self._end_episode()
            return
        self.dropped += 1
        if self.drops.drop(f, self._written, self.q.frames, self.q.bytes):
            log.warning("writer queue full (%d frames, %d bytes): dropping frames from client "
                        "arrival %d (%s:%s)", self.q.frames, self.q.bytes, f.arrival,
                        f.channel, f.inst)

    def _integrity(self) -> None:
        """The client's book-integrity summary to the writer thread, ahead of a rotation or
        the close (the manifest's ``integrity``). Taken here, on the thread that applies the
        frames as the client yields them, so it counts exactly the frames yielded before
        it (the queued ones, and any dropped); the writer thread gets a copy of its own."""
        if self.client is not None:
            books = self.client.handler.books  # the client's BookIntegrity, the one owner
            self.q.put(("integrity", integrity_snapshot(books.summary())))

    def _tap(self, f: RawFrame) -> None:
        try:
            self.tap(f)
        except Exception:
            self.tap_errors += 1
            if self.tap_errors <= 3:
                log.exception("the recorder's tap failed on arrival %d (the frame is recorded)",
                              f.arrival)

    async def _metadata(self) -> None:
        """Instrument metadata into the manifest; a failure is logged, not fatal."""
        from simlab.okx.rest import instruments_or_none

        meta = await instruments_or_none(self.client_options.get("rest_url"),
                                         sorted({i for _, i in self.subscriptions}))
        if meta:
            self.q.put(("metadata", meta))

    def _end_episode(self) -> None:
        d = self.drops.end()
        if d is None:
            return
        log.warning("dropped %d frames (%d bytes) while the writer queue was full: client "
                    "arrivals %d..%d, %s .. %s (%.3f s), recording arrival %d; per stream %s",
                    d["frames"], d["bytes"], *d["client_arrivals"], d["time"], d["until"],
                    d["span_s"], d["arrival"], d["per_stream"])
        self.q.put(("drop", d))

    def _event(self, ev: dict[str, Any]) -> None:
        self.events += 1
        kind = ev.get("kind")
        if kind in _STREAM_BREAK_KINDS:
            self.gaps[ev.get("inst") or "?"] += 1
        elif kind == "reconnect":
            self.reconnects += 1
        elif kind == "resync_started":
            self.resyncs += 1
        elif kind == "refused":
            self._on_refused(ev)
        if "arrival" in ev:
            ev["arrival"] = self.drops.map(ev["arrival"])
        else:
            ev["arrival"] = self._written  # the next frame of the recording
        stale = ev.get("stale_arrivals")
        if isinstance(stale, list) and len(stale) == 2:
            lo, hi = self.drops.map(stale[0]), self.drops.map(stale[1])
            ev["stale_arrivals"] = [lo, hi] if lo is not None and hi is not None else None
        if self._error is None:
            self.q.put(ev)

    def _on_refused(self, ev: dict[str, Any]) -> None:
        r = {"channel": ev.get("channel"), "inst": ev.get("inst"), "code": ev.get("code"),
             "msg": ev.get("msg"), "time": ns_to_iso(ev.get("recv_ns"))}
        self.refused.append(r)
        self.outages.drop([(r["channel"], r["inst"])])
        what = f"{r['channel']} {r['inst']}: subscription refused by the server: " \
               f"{r['code']} {r['msg']}"
        if self.allow_partial and len(self.refused) < len(self.subscriptions):
            log.warning("%s; recording the other streams (--allow-partial)", what)
        elif self.per_stream[(r["channel"], r["inst"])] and \
                len(self.refused) < len(self.subscriptions):
            # Refused on a resubscribe, hours into a recording: keeping the other streams
            # beats losing the night; the run still ends in RefusedError.
            log.error("%s; it was recorded until now, the other streams go on, and the "
                      "recording will end with an error", what)
        else:
            log.error("%s", what)
            if not self._stop.is_set():  # several refusals come at once: one stop
                self.stop(f"subscription refused: {r['channel']} {r['inst']} ({r['code']})")

    def _check_outages(self) -> None:
        if self._stop.is_set():
            return  # the client unsubscribes and closes: silence is expected now
        for o in self.outages.check(self._clock()):
            log.warning("%s %s: no data for %.3f s (more than %g s): outage since %s",
                        o["channel"], o["inst"], o["seconds"], o["threshold_s"], o["start"])
            self.q.put(("outage", dict(o)))

    async def _tick(self) -> None:
        interval = self.status_interval
        now = time.monotonic()
        next_rotate, next_status = now + self.rotate, now + interval
        next_log = now + LOG_STATUS_EVERY_S
        last_frames, last_t = self.frames, now
        while True:
            await asyncio.sleep(min(0.05, self.rotate / 4, interval / 4))
            now = time.monotonic()
            if self.duration is not None and now - self._t0 >= self.duration:
                self.stop(f"duration {self.duration:g} s reached")
                return
            self._check_outages()
            if now >= next_rotate:
                self._integrity()
                self.q.put(("rotate",))
                next_rotate = max(next_rotate + self.rotate, now + self.rotate / 2)
            if now >= next_status:
                st = self.status()  # also samples the RSS peak
                st["rate"] = (self.frames - last_frames) / max(now - last_t, 1e-6)
                last_frames, last_t = self.frames, now
                line = format_status(st)
                if self._status is not None:
                    self._status.show(line)
                if now >= next_log:
                    log.info("status: %s", line)
                    next_log = now + LOG_STATUS_EVERY_S
                next_status = now + interval

    # -- writer thread side -------------------------------------------------------------------
    def _live(self) -> dict[str, Any]:
        info = dict(self._recorder_info, rotations=self.rotations,
                    peak_queue_frames=self.q.peak_frames, rss_start=self.rss_start,
                    rss_peak=self.rss_peak)
        return {"recorder": info, **self.feedlog.section()}

    def _stop_monitor(self) -> None:
        if self._monitor_started:
            self._monitor_started = False
            self.monitor.stop()


async def record(out: str | Path, subscriptions: Iterable[tuple[str, str]],
                 **options: Any) -> RecordResult:
    """Record until ``duration`` (or cancellation / :meth:`Recorder.stop`); see
    :class:`Recorder` for the options.

    >>> asyncio.run(record("rec", [("books", "BTC-USDT")], duration=60))  # doctest: +SKIP
    RecordResult(path='rec', frames=612, ...)
    """
    return await Recorder(out, subscriptions, **options).run()
