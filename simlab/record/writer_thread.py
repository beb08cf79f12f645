"""The live recorder's writer thread: takes what the asyncio loop queued (frames, client
events, instrument metadata, the client's integrity summary, outages, drop episodes, rotate
and close requests) and turns it into the recording, in order.

Every rotation closes the current part files and lists them in the manifest with the
recorder's ``live`` section. A write error (a full disk) stops it: the files closed before
stay intact and listed, the current rotation is removed, the recording is marked
incomplete, and :attr:`WriterThread.error_msg` names the directory and what could not be
written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simlab.okx.frames import RawFrame
from simlab.store.manifest import utc_now
from simlab.store.writer import RecordingWriter

from .feedlog import FeedLog
from .writer_queue import WriterQueue

log = logging.getLogger("simlab.record")


class WriterThread:
    """Write what ``q`` holds into ``recording`` on a thread of its own.

    ``writer`` is what each frame is handed to (its ``add_frame``: a
    :class:`~simlab.record.decoded.DecodedStore` around ``recording``, a
    :class:`~simlab.record.monitored.MonitoredStage` around that, or ``recording`` itself;
    looked up per frame, so it can be wrapped while running); ``queue_times``, if given,
    gets how long each frame waited in the queue (ns). An ``("integrity", summary)`` item
    is the manifest's ``integrity`` from then on (the live client's, taken on its thread
    before each rotation: see :func:`~simlab.record.decoded.integrity_snapshot`).
    ``feedlog`` accounts for events, outages and drops; ``live()`` gives the manifest's
    ``live`` section, written at every rotation; ``info`` is the recorder's part of it
    (``stopped`` and ``stop_reason`` are set here at the end);
    ``stop_monitor`` takes the monitor's last sample before the final summary;
    ``on_error(message)`` is called from this thread after a write error.

    >>> import tempfile
    >>> rec = RecordingWriter(tempfile.mkdtemp() + "/r", rotating=True)
    >>> q = WriterQueue(10, 1000)
    >>> wt = WriterThread(rec, rec, q, FeedLog(), lambda: {}, {})
    >>> wt.start(); q.put_frame(RawFrame(0, 10**18, 0, "_event", "_none", b"pong"))
    True
    >>> q.put(("close", "done")); wt.join(10); rec.manifest["arrivals"], wt.rotations
    (1, 1)
    """

    def __init__(self, recording: RecordingWriter, writer: Any, q: WriterQueue,
                 feedlog: FeedLog, live: Callable[[], dict[str, Any]], info: dict[str, Any],
                 *, queue_times: list[int] | None = None,
                 stop_monitor: Callable[[], None] = lambda: None,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.recording, self.writer, self.q = recording, writer, q
        self.out = recording.path
        self.feedlog, self.live, self.info = feedlog, live, info
        self.queue_times = queue_times
        self.stop_monitor, self.on_error = stop_monitor, on_error
        self.rotations = 0
        self.files = 0
        self.bytes = 0
        self.error: BaseException | None = None
        self.error_msg = ""
        self._thread = threading.Thread(target=self._loop, name="record-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        rec = self.recording
        waits = self.queue_times
        now = time.time_ns
        try:
            while True:
                for item in self.q.take():
                    if isinstance(item, RawFrame):
                        if waits is not None:
                            waits.append(now() - item.recv_ns)
                        self.writer.add_frame(item)
                    elif type(item) is dict:
                        self._account(self.feedlog.event, item)
                        rec.add_event(item)
                    elif item[0] == "metadata":
                        for inst, m in item[1].items():
                            rec.set_instrument(inst, m)
                    elif item[0] == "integrity":
                        rec.manifest["integrity"] = item[1]
                    elif item[0] == "rotate":
                        self._rotate()
                    elif item[0] == "outage":
                        self._account(self.feedlog.outage, item[1])
                    elif item[0] == "drop":
                        self._account(self.feedlog.drop, item[1])
                        rec.add_event({"kind": "queue_overflow", **item[1]})
                    elif item[0] == "close":
                        self._close(item[1])
                        return
        except BaseException as e:
            self._failed(e)

    @staticmethod
    def _account(fn: Callable[[dict[str, Any]], None], item: dict[str, Any]) -> None:
        # Bookkeeping must never stop a recording: the event itself is still stored.
        try:
            fn(item)
        except Exception:
            log.exception("could not account for %r", item)

    def _rotate(self) -> None:
        rec = self.recording
        rec.manifest["live"] = self.live()
        entries = rec.rotate()
        self.rotations += 1
        self._count_files(entries)

    def _count_files(self, entries: list[dict[str, Any]]) -> None:
        for e in entries:
            with contextlib.suppress(OSError):
                self.bytes += os.stat(self.out / e["path"]).st_size
        self.files += len(entries)

    def _close(self, reason: str) -> None:
        rec = self.recording
        self.info.update(stopped=utc_now(), stop_reason=reason)
        self.rotations += 1
        self.stop_monitor()  # a last resource sample, before the summary
        rec.manifest["live"] = self.live()
        before = len(rec.manifest["files"])
        rec.close()
        self._count_files(rec.manifest["files"][before:])
        log.info("closed %s: %d frames, %d files (%d bytes), %d rotations; %s", self.out,
                 rec.arrivals, self.files, self.bytes, self.rotations, reason)

    def _failed(self, e: BaseException) -> None:
        rec = self.recording
        what = getattr(rec, "failed_path", None) or "the recording"
        listed = len(rec.manifest["files"])
        free = ""
        with contextlib.suppress(OSError):
            free = f"; {shutil.disk_usage(self.out).free:,} bytes free on its device"
        self.error = e
        self.error_msg = (f"{self.out}: recording stopped: could not write {what} "
                          f"({type(e).__name__}: {e}){free}; the {listed} files closed before "
                          f"are intact and listed in {Path(self.out) / 'manifest.json'}")
        log.error("%s", self.error_msg)
        self.info.update(stopped=utc_now(), stop_reason=f"error: {e}")
        with contextlib.suppress(Exception):
            self.stop_monitor()
        rec.manifest["live"] = self.live()
        rec.abort(f"{type(e).__name__}: {e}")
        if self.on_error is not None:
            self.on_error(f"write error: {e}")
