"""The live recorder's store stage: each frame as the live client decoded it
(:class:`~simlab.okx.decoded.Decoded`) goes into the recording format without being parsed
or checked again.

The client parsed the frame once (``msg``) and applied a book frame to its book once
(``outcome``, from the client's :class:`~simlab.okx.integrity.BookIntegrity`).
:class:`DecodedStore` derives the frame's table rows from ``msg``
(:func:`~simlab.okx.normalize.normalize_parsed`: the rows ``verify`` and ``rebuild`` derive
from the payload), stores it with :meth:`RecordingWriter.store
<simlab.store.writer.RecordingWriter.store>`, and keeps the integrity events of its outcome
in the manifest (``events``), numbered as in the recording. The per-stream summary
(``integrity``) is the client's too: :func:`integrity_snapshot`, taken on the client's
thread and handed over with each rotation (:mod:`simlab.record.writer_thread`).

Only frames the client passed on unparsed are parsed here: a pong, and a malformed frame
(its reason, as ``verify`` gives it). So the writer is a plain format writer
(``check_books=False``): a second book check would apply every book frame again.
"""

from __future__ import annotations

from typing import Any

from simlab.okx.frames import RawFrame
from simlab.okx.messages import Pong
from simlab.okx.normalize import MALFORMED_CHANNEL, Normalized, normalize_parsed, normalize_raw
from simlab.store.writer import RecordingWriter

_PONG = Pong()


class DecodedStore:
    """Store the live client's decoded frames into ``writer`` (a
    :class:`~simlab.store.writer.RecordingWriter` with ``check_books=False``).

    :meth:`add_frame` stores one frame (a :class:`~simlab.okx.decoded.Decoded`; a plain
    :class:`~simlab.okx.frames.RawFrame` is parsed here, having no ``msg``) and returns its
    arrival in the recording. :meth:`normalized` and :meth:`keep` are its two steps, for a
    caller that times them (:class:`~simlab.record.monitored.MonitoredStage`).

    >>> import tempfile
    >>> from simlab.okx.decoded import Decoded
    >>> from simlab.okx.integrity import BookIntegrity
    >>> from simlab.okx.messages import BookMsg
    >>> from simlab.book import L2Book
    >>> msg = BookMsg("books", "X", "update", [["1", "2"]], [], 5, 9, 8, 0)
    >>> client_books = BookIntegrity(L2Book)  # the client's integrity owner
    >>> frame = Decoded(7, 10**18, 0, "books", "X", b"(the frame)", msg,
    ...                 client_books.apply(msg, 7))
    >>> store = DecodedStore(RecordingWriter(tempfile.mkdtemp() + "/r", check_books=False))
    >>> store.add_frame(frame)
    0
    >>> [(e["kind"], e["arrival"]) for e in store.writer.manifest["events"]]
    [('no_snapshot', 0)]
    """

    def __init__(self, writer: RecordingWriter) -> None:
        if writer.check is not None:
            raise ValueError("DecodedStore needs a RecordingWriter with check_books=False: "
                             "the live client checks the books, once")
        self.writer = writer

    def normalized(self, frame: RawFrame) -> Normalized:
        """The frame's :class:`~simlab.okx.normalize.Normalized` form, from its message when
        the client parsed it."""
        msg = getattr(frame, "msg", None)
        if msg is not None and frame.channel != MALFORMED_CHANNEL:
            return normalize_parsed(msg, frame.conn, frame.channel, frame.inst)
        if frame.payload == b"pong":
            return normalize_parsed(_PONG)
        return normalize_raw(frame.payload, frame.conn, frame.channel, frame.inst,
                             self.writer.wire_format)

    def keep(self, frame: RawFrame, norm: Normalized) -> int:
        """Buffer and count the frame (:meth:`RecordingWriter.store
        <simlab.store.writer.RecordingWriter.store>`) and keep its integrity events, under
        its arrival in the recording (returned). Writes nothing."""
        w = self.writer
        a = w.store(frame.payload, norm, frame.recv_ns, frame.conn)
        outcome = getattr(frame, "outcome", None)
        if outcome is not None and outcome.events:
            for e in outcome.events:
                # the client numbered it by its own arrivals: a dropped frame shifts them
                w.note_event({**e, "arrival": a})
        return a

    def add_frame(self, frame: RawFrame) -> int:
        """Store one frame (rows, counts, integrity events; a Parquet write when the
        buffers are full); its arrival in the recording."""
        a = self.keep(frame, self.normalized(frame))
        self.writer.write_if_full()
        return a


def integrity_snapshot(summary: dict[str, dict[str, dict[str, Any]]]
                       ) -> dict[str, dict[str, dict[str, Any]]]:
    """The manifest's ``integrity`` from the client's
    :meth:`BookIntegrity.summary() <simlab.okx.integrity.BookIntegrity.summary>`: the
    streams that had a message (the client keeps a book for every subscribed one, even one
    refused or silent; the recording sums up what it holds).

    >>> integrity_snapshot({"books": {"X": {"messages": 3, "stale": 0},
    ...                               "Y": {"messages": 0, "stale": 0}}})
    {'books': {'X': {'messages': 3, 'stale': 0}}}
    """
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for ch, per_inst in summary.items():
        seen = {i: st for i, st in per_inst.items() if st["messages"] or st["stale"]}
        if seen:
            out[ch] = seen
    return out
