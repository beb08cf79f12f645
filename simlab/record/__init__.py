"""``simlab record``: the live recorder application (the recording format itself is
:mod:`simlab.store`).

- :mod:`~simlab.record.app`: :class:`Recorder` (the asyncio loop: live client -> queue) and
  :func:`record`;
- :mod:`~simlab.record.writer_queue`: the bounded queue to the writer thread and the account
  of dropped frames; :mod:`~simlab.record.writer_thread`: the thread that writes it;
- :mod:`~simlab.record.monitored`: the writer with each stage timed for a Monitor;
- :mod:`~simlab.record.feedlog`, :mod:`~simlab.record.outages`: the feed's breaks, repairs
  and outages for the manifest's ``live`` section;
- :mod:`~simlab.record.status`, :mod:`~simlab.record.log`: the status line and the log
  (the ``simlab record`` command itself is :mod:`simlab.cli.record`).

The names below are imported on first use (PEP 562): importing a submodule loads neither
the client nor the writer unless it needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simlab.lazy import lazy_api

_API = {
    "DEDUP_WINDOW": "app", "OUTAGE_AFTER_S": "app", "RecordError": "app",
    "RecordResult": "app", "Recorder": "app", "RefusedError": "app", "record": "app",
    "RECORD_LOG": "log", "without_pandas": "nopandas",
}

__all__ = [
    "DEDUP_WINDOW", "OUTAGE_AFTER_S", "RECORD_LOG", "RecordError", "RecordResult", "Recorder",
    "RefusedError", "record", "without_pandas",
]

if TYPE_CHECKING:
    from .app import (
        DEDUP_WINDOW,
        OUTAGE_AFTER_S,
        Recorder,
        RecordError,
        RecordResult,
        RefusedError,
        record,
    )
    from .log import RECORD_LOG
    from .nopandas import without_pandas


__getattr__, __dir__ = lazy_api(__name__, _API)
