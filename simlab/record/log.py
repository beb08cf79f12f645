"""The live recorder's log: everything under the ``simlab`` logger goes to
``DIR/record.log`` (written by a listener thread: no disk I/O on the event loop, and a
failing log file never stops the recording); warnings also go to the terminal, clearing the
status line first, when asked.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sys
from pathlib import Path
from typing import TextIO

from .status import StatusLine

#: The recorder's log file, in the recording's top directory.
RECORD_LOG = "record.log"
LOG_MAX_BYTES = 64 << 20


class _QuietFileHandler(logging.handlers.RotatingFileHandler):
    """The log file must never stop the recording (e.g. on a full disk)."""

    failed = 0

    def handleError(self, record: logging.LogRecord) -> None:
        self.failed += 1


class _ConsoleHandler(logging.StreamHandler):
    """Warnings on stderr, clearing the status line first."""

    def __init__(self, status: StatusLine | None, stream: TextIO) -> None:
        super().__init__(stream)
        self.status = status
        self.setFormatter(logging.Formatter("simlab record: %(levelname)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if self.status is not None:
            self.status.clear()
        super().emit(record)


class RecordLog:
    """The ``simlab`` logger into ``out/record.log`` from :meth:`open` until :meth:`close`
    (which puts the logger back as it was); with ``console``, warnings also on the status
    line's stream (stderr without one).

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> lg = RecordLog(d); lg.open(); logging.getLogger("simlab.x").info("hello"); lg.close()
    >>> "hello" in (d / RECORD_LOG).read_text()
    True
    """

    def __init__(self, out: str | Path, status: StatusLine | None = None,
                 console: bool = False) -> None:
        self.path = Path(out) / RECORD_LOG
        self.status, self.console = status, console
        self._state: tuple | None = None
        self._listener: logging.handlers.QueueListener | None = None
        self._file: _QuietFileHandler | None = None
        self._handlers: list[logging.Handler] = []

    def open(self) -> None:
        lg = logging.getLogger("simlab")
        self._state = (lg.level, lg.propagate)
        fh = _QuietFileHandler(self.path, maxBytes=LOG_MAX_BYTES, backupCount=2,
                               encoding="utf-8")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._file = fh
        q: queue.SimpleQueue = queue.SimpleQueue()
        self._listener = logging.handlers.QueueListener(q, fh)
        self._listener.start()
        self._handlers = [logging.handlers.QueueHandler(q)]
        if self.console:
            console = _ConsoleHandler(self.status, self.status.stream if self.status
                                      else sys.stderr)
            console.setLevel(logging.WARNING)
            self._handlers.append(console)
        for h in self._handlers:
            lg.addHandler(h)
        lg.setLevel(logging.INFO)
        lg.propagate = False  # the log file has it all; stderr gets the status and warnings

    def close(self) -> None:
        """Stop logging to the file (idempotent); the status line ends its line."""
        lg = logging.getLogger("simlab")
        if self.status is not None:
            self.status.done()
        for h in self._handlers:
            lg.removeHandler(h)
        self._handlers = []
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._state is not None:
            lg.setLevel(self._state[0])
            lg.propagate = self._state[1]
            self._state = None
