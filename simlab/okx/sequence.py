"""OKX sequence rules for incremental book channels (``books``, ``*-l2-tbt``).

From the protocol notes: a snapshot has ``prevSeqId == -1``; an update chains when its
``prevSeqId`` equals the last applied ``seqId`` (steps between seqIds are arbitrary, only
identity counts). An empty update with ``seqId == prevSeqId`` is a heartbeat; an update with
``seqId < prevSeqId`` is a maintenance reset and the chain continues from the smaller seqId.
Anything else is a gap: the book is unknown until the next snapshot.

Messages without seqIds (recordings from 2022, OKX's historical files) cannot be chained;
they are classified :attr:`Seq.UNSEQUENCED` and integrity rests on the checksum alone.
"""

from __future__ import annotations

from enum import StrEnum


class Seq(StrEnum):
    SNAPSHOT = "snapshot"
    UPDATE = "update"
    HEARTBEAT = "heartbeat"
    RESET = "reset"
    GAP = "gap"
    #: The exact (prevSeqId, seqId) pair just applied, seen again (e.g. overlap of two
    #: connections): ignoring it loses nothing, so it is not a gap.
    DUPLICATE = "duplicate"
    #: An update while no valid book exists (before the first snapshot or after a gap).
    NO_SNAPSHOT = "no_snapshot"
    #: An update without seqId/prevSeqId: applied, but the chain cannot be checked.
    UNSEQUENCED = "unsequenced"


def classify(
    valid: bool,
    last_seq: int | None,
    last_prev: int | None,
    is_snapshot: bool,
    prev_seq: int | None,
    seq: int | None,
    empty: bool,
) -> Seq:
    """Classify one book message against the chain state of its instrument.

    ``valid`` says whether the instrument has a book to apply to (a snapshot seen and no gap
    since); ``last_seq``/``last_prev`` are the seqId and prevSeqId of the last applied
    message (``None`` when it carried none).

    >>> chain, out, last, lprev = [(-1, 10), (10, 15), (15, 15), (15, 3), (3, 5)], [], None, None
    >>> for prev, seq in chain:
    ...     out.append(classify(last is not None, last, lprev, prev == -1, prev, seq,
    ...                         prev == seq).value)
    ...     last, lprev = seq, prev
    >>> out
    ['snapshot', 'update', 'heartbeat', 'reset', 'update']
    >>> classify(True, 5, 3, False, 7, 9, False).value
    'gap'
    """
    if is_snapshot or prev_seq == -1:
        return Seq.SNAPSHOT
    if not valid:
        return Seq.NO_SNAPSHOT
    if prev_seq is None or seq is None or last_seq is None:
        return Seq.UNSEQUENCED
    if prev_seq == last_seq:
        if seq == prev_seq:
            return Seq.HEARTBEAT if empty else Seq.UPDATE
        return Seq.RESET if seq < prev_seq else Seq.UPDATE
    if prev_seq == last_prev and seq == last_seq:
        return Seq.DUPLICATE
    return Seq.GAP
