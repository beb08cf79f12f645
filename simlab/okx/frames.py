"""The unit of recording and of replay: one frame as received, with when and how.

The live client yields these; a recording stores them byte for byte and its reader yields
them back in the same order, so everything downstream sees the same objects live and in
replay.
"""

from __future__ import annotations

from typing import NamedTuple


class RawFrame(NamedTuple):
    """One received frame. ``payload`` is the exact bytes; ``arrival`` totally orders a
    stream (a recording); ``recv_ns`` is the local receive time (ns since the epoch, UTC);
    ``conn`` the connection it came on; ``channel``/``inst`` its stream (``_event`` /
    ``_none`` for frames that belong to none, ``_malformed`` for unparseable ones).

    >>> RawFrame(0, 1_652_459_225_503_749_100, 0, "books", "BTC-USDT", b"{}").channel
    'books'
    """

    arrival: int
    recv_ns: int
    conn: int
    channel: str
    inst: str
    payload: bytes
