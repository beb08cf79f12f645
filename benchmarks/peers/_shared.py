"""What the peer modules share: the repeated capture's period, a tick or lot size's decimal
places, and simlab's reference books built message by message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def first_cycle(frames: list[bytes]) -> list[bytes]:
    """The shortest prefix of which ``frames`` is a repetition (all of it when none).

    >>> first_cycle([b"a", b"b", b"a", b"b"]), first_cycle([b"a", b"b", b"a"])
    ([b'a', b'b'], [b'a', b'b', b'a'])
    """
    n = len(frames)
    for p in range(1, n // 2 + 1):
        # subscribe acks recur inside the capture: test the whole period, not one frame
        if frames[p] == frames[0] and frames[p:] == frames[:n - p]:
            return frames[:p]
    return frames


def decimals(s: str) -> int:
    """Decimal places of a size written as a string (OKX's ``tickSz``, ``lotSz``).

    >>> decimals("0.10"), decimals("1"), decimals("0.0001")
    (1, 0, 4)
    """
    return len(s.split(".", 1)[1].rstrip("0")) if "." in s else 0


def simlab_syncs(frames: list[bytes], channel: str | None = None) -> Iterator[tuple[bytes, Any,
                                                                                   Any]]:
    """``(frame, message, BookSync)`` after each book message of ``frames`` (of ``channel``
    only, when given), applied as simlab applies it: sequence check, checksum verified, one
    ``BookSync(L2Book)`` per (channel, instId)."""
    from simlab.book import L2Book
    from simlab.okx import BookSync, is_book, parse_frame

    syncs: dict[tuple[str, str], Any] = {}
    for f in frames:
        m = parse_frame(f)
        if is_book(m) and (channel is None or m.channel == channel):
            key = (m.channel, m.inst_id)
            s = syncs.get(key)
            if s is None:
                s = syncs[key] = BookSync(L2Book(m.inst_id))
            s.apply(m)
            yield f, m, s
