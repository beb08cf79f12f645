"""Rebuild one book stream's messages in compiled code: the one place that turns a
:class:`~simlab.feed.tables.BookMessages` into :func:`simlab.book.batch.rebuild_books`
arguments (one stream, every message in stream 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from simlab.book.batch import BookBatch, Order, rebuild_books


def rebuild_messages(m: Any, *, orders: Sequence[Order] = (), depth_n: int = 0,
                     emit: Any = None) -> BookBatch:
    """The book after every message of ``m`` (a :class:`~simlab.feed.tables.BookMessages`),
    with ``orders`` walked and the top ``depth_n`` levels summed where ``emit`` is set (see
    :func:`~simlab.book.batch.rebuild_books`).

    >>> from types import SimpleNamespace
    >>> from simlab.book.batch import ASK, BID, SNAPSHOT
    >>> m = SimpleNamespace(msg_start=[0, 2], flags=[SNAPSHOT], side=[BID, ASK],
    ...                     price=[99.0, 101.0], size=[1.0, 2.0])   # one snapshot, two rows
    >>> b = rebuild_messages(m, depth_n=1)
    >>> b.bid_px, b.ask_sz, b.depth[0]
    (array([99.]), array([2.]), array([1., 2.]))
    """
    n = len(m.msg_start) - 1
    return rebuild_books(m.msg_start, np.zeros(n, np.int32), m.flags, m.side, m.price, m.size,
                         n_streams=1, orders=orders, depth_n=depth_n, emit=emit)
