"""The Source interface: what the live client and the replay engine both are.

A source yields :mod:`simlab.feed.events` in the order they were received, asynchronously
(``async for ev in source``); a replay source can also be iterated synchronously. The cost
pipeline and the widgets accept any :class:`Source`, so the same code runs live and on a
recording.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from .events import Event

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@runtime_checkable
class Source(Protocol):
    """Anything that streams feed events.

    ``instruments`` maps an instrument id to its metadata (``tickSz``, ``lotSz``, ``ctVal``,
    ``instType`` ... as strings), as far as the source knows it.
    """

    instruments: dict[str, dict[str, Any]]

    def __aiter__(self) -> AsyncIterator[Event]: ...


def to_ns(value: Any, what: str = "time") -> int | None:
    """A time as ns since the epoch (UTC): an int (ns), a float (seconds), a datetime, a
    pandas Timestamp, or an ISO 8601 string (UTC when it has no offset). None stays None.

    >>> to_ns("2022-05-13T16:27:05.5Z")
    1652459225500000000
    >>> to_ns(1652459225.5)
    1652459225500000000
    >>> to_ns("yesterday")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: time: expected ns since the epoch, seconds, a datetime or an ISO 8601 ...
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected a time, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value * 1e9)
    if hasattr(value, "value") and hasattr(value, "tz_localize"):  # pandas Timestamp
        if value.tzinfo is None:
            value = value.tz_localize("UTC")
        return int(value.value)
    if isinstance(value, str):
        s = value.strip()
        try:
            value = datetime.fromisoformat(s.replace("Z", "+00:00") if s.endswith("Z") else s)
        except ValueError:
            raise ValueError(f"{what}: expected ns since the epoch, seconds, a datetime or an "
                             f"ISO 8601 string, got {value!r}") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return (value - _EPOCH) // timedelta(microseconds=1) * 1000  # exact, no float
    raise ValueError(f"{what}: expected ns since the epoch, seconds, a datetime or an ISO 8601 "
                     f"string, got {value!r}")


def fmt_ns(ns: int | None) -> str:
    """A time in ns as an ISO string (UTC, microseconds).

    >>> fmt_ns(1652459225503749100)
    '2022-05-13T16:27:05.503749Z'
    """
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
