"""Streams silent for longer than their threshold (the manifest's ``live.outages``), found
on an injected clock so that tests need no sleeping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from simlab.store.manifest import ns_to_iso


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
