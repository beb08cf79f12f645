"""OKX order-book checksum: signed CRC32 of the top 25 levels, interleaved ``bid:ask``.

Each level contributes ``price:size`` with the exact wire strings; when one side has fewer
than 25 levels its missing entries are skipped. Since 23 June 2026 OKX sends ``checksum: 0``
on every frame, so 0 means "absent", never "failed" (see :func:`checksum_status`).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

CHECKSUM_DEPTH = 25


def checksum_string(bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> str:
    """The string OKX feeds to CRC32; ``bids``/``asks`` best first, levels ``[px, sz, ...]``.

    >>> checksum_string([["3366.1", "7"], ["3366", "6"]], [["3366.8", "9"], ["3368", "8"]])
    '3366.1:7:3366.8:9:3366:6:3368:8'
    """
    parts: list[str] = []
    b = bids[:CHECKSUM_DEPTH]
    a = asks[:CHECKSUM_DEPTH]
    nb, na = len(b), len(a)
    for i in range(max(nb, na)):
        if i < nb:
            parts.append(b[i][0])
            parts.append(b[i][1])
        if i < na:
            parts.append(a[i][0])
            parts.append(a[i][1])
    return ":".join(parts)


def crc32_signed(text: str) -> int:
    """CRC32 of ``text`` (UTF-8) read as a signed 32-bit integer, as OKX reports it."""
    c = zlib.crc32(text.encode())
    return c - 0x100000000 if c & 0x80000000 else c


def okx_checksum(bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> int:
    """OKX checksum of a book given its levels best first.

    >>> okx_checksum([["3366.1", "7"], ["3366", "6"]], [["3366.8", "9"], ["3368", "8"]])
    -1881014294
    """
    return crc32_signed(checksum_string(bids, asks))


def checksum_status(expected: int | None, computed: int) -> str:
    """``"absent"`` when the message carries no checksum (None or 0), else ``"ok"``/``"failed"``."""
    if not expected:
        return "absent"
    return "ok" if expected == computed else "failed"
