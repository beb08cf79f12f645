"""Where sweep cells run: any :class:`concurrent.futures.Executor`, made from a name.

- ``"inline"``: :class:`InlineExecutor`, in this process, one cell at a time (debugging,
  tests, tiny sweeps);
- ``"local"`` (the default): a :class:`~concurrent.futures.ProcessPoolExecutor` started with
  ``spawn`` (no forked copies of this process's threads; the cell runner is a top-level
  function, so it pickles by name), workers ignore Ctrl-C so the parent decides what stops.
  As with any spawn pool, a script that starts a sweep needs the
  ``if __name__ == "__main__":`` guard (the ``simlab`` command and notebooks need nothing);
- ``"dask://HOST:PORT"`` or a ``distributed.Client``: the client's executor. The workers
  need simlab installed and access to the recordings (a shared path or object storage, see
  docs/recording-format.md); results come back to this process, which writes them.

:func:`~simlab.sweep.results.load_results` (re-exported here) reads a sweep's output
folder back as one table.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from simlab.extras import require

from .results import load_results

EXECUTORS = ("inline", "local", "dask://HOST:PORT")


class InlineExecutor(Executor):
    """Runs each call at ``submit``, in this thread; the returned future is already done.
    An ``Exception`` goes into the future; ``KeyboardInterrupt`` and other
    ``BaseException`` propagate at once (an interrupt stops the sweep).

    >>> InlineExecutor().submit(pow, 2, 10).result()
    1024
    """

    def __init__(self) -> None:
        self._shutdown = False

    def submit(self, fn, /, *args, **kwargs) -> Future:
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        f: Future = Future()
        f.set_running_or_notify_cancel()
        try:
            f.set_result(fn(*args, **kwargs))
        except Exception as e:
            f.set_exception(e)
        return f

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True


class DaskExecutor(Executor):
    """A ``distributed.Client``'s executor that, when it opened the client itself
    (``owns_client``), closes it on shutdown. ``slots``: the cluster's worker threads.

    >>> DaskExecutor  # doctest: +SKIP
    """

    def __init__(self, client: Any, owns_client: bool = False) -> None:
        # pure=False: two equal cells are two runs, never one cached dask key
        self._ex = client.get_executor(pure=False)
        self.client = client
        self.owns_client = owns_client

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return self._ex.submit(fn, *args, **kwargs)

    @property
    def slots(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._ex.shutdown(wait=wait and not cancel_futures)
        if self.owns_client:
            self.client.close()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _is_client(obj: Any) -> bool:
    # a Client exists only once distributed is imported: no import (nor extra) needed here
    mod = sys.modules.get("distributed")
    return mod is not None and isinstance(obj, mod.Client)


def make_executor(kind: Any = "local", workers: int | None = None) -> Executor:
    """An executor from a name: ``"inline"``, ``"local"`` (process pool of ``workers``,
    default the CPU count) or ``"dask://HOST:PORT"`` (connects a client, closed on
    shutdown); or a ``distributed.Client`` (its executor; the client stays open).

    >>> make_executor("inline").submit(len, "abc").result()
    3
    >>> make_executor("threads")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: executor must be 'inline', 'local', 'dask://HOST:PORT' or a ..., got 'threads'
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if _is_client(kind):
        return DaskExecutor(kind)
    if kind == "inline":
        return InlineExecutor()
    if kind == "local":
        return ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1,
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_ignore_sigint)
    if isinstance(kind, str) and kind.startswith(("dask://", "tcp://", "tls://")):
        Client = require("distributed", feature="a Dask sweep executor").Client

        address = "tcp://" + kind.removeprefix("dask://") if kind.startswith("dask://") else kind
        if address in ("tcp://", "tcp://:"):
            raise ValueError(f"executor {kind!r}: expected dask://HOST:PORT")
        return DaskExecutor(Client(address, timeout="30s"), owns_client=True)
    raise ValueError("executor must be 'inline', 'local', 'dask://HOST:PORT' or a "
                     f"distributed.Client, got {kind!r}")


def executor_slots(ex: Executor) -> int:
    """How many cells ``ex`` runs at once (to keep just enough of them queued).

    >>> executor_slots(InlineExecutor())
    1
    """
    if isinstance(ex, InlineExecutor):
        return 1
    if isinstance(ex, DaskExecutor):
        return ex.slots
    if isinstance(ex, (ProcessPoolExecutor, ThreadPoolExecutor)):
        return ex._max_workers
    client = getattr(ex, "_client", None)  # distributed's ClientExecutor
    if client is not None and hasattr(client, "nthreads"):
        return max(1, sum(client.nthreads().values()))
    return os.cpu_count() or 4


__all__ = ["EXECUTORS", "DaskExecutor", "InlineExecutor", "executor_slots", "load_results",
           "make_executor"]
