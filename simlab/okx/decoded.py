"""What the live client yields for each frame: the frame, its message parsed once, and the
integrity outcome of a book message, so nothing downstream parses or applies it again."""

from __future__ import annotations

from typing import Any

from .frames import RawFrame


class Decoded(RawFrame):
    """A :class:`~simlab.okx.frames.RawFrame` (equal to it, ``isinstance`` of it) with
    ``msg``: the parsed message (None for pongs and malformed frames); ``outcome``: for a
    book message of a subscribed stream, its :class:`~simlab.okx.integrity.Outcome` (applied
    in stream order when the client yielded it); ``parse_ns``/``decode_ns``: time spent
    parsing it, and parsing plus applying it (latency stages).

    >>> d = Decoded(0, 10, 0, "books", "X", b"{}", msg="m")
    >>> d == RawFrame(0, 10, 0, "books", "X", b"{}"), d.msg, d.outcome
    (True, 'm', None)
    >>> d._replace(arrival=5).msg
    'm'
    """

    msg: Any = None
    outcome: Any = None
    parse_ns: int = 0
    decode_ns: int = 0
    #: set by the client: apply ``msg`` to the book at yield time; released by a resync,
    #: or its break already handled when received (a break it shows starts no resync)
    _book: bool = False
    _released: bool = False
    _handled: bool = False

    def __new__(cls, arrival: int, recv_ns: int, conn: int, channel: str, inst: str,
                payload: bytes, msg: Any = None, outcome: Any = None) -> Decoded:
        self = tuple.__new__(cls, (arrival, recv_ns, conn, channel, inst, payload))
        if msg is not None:
            self.msg = msg
        if outcome is not None:
            self.outcome = outcome
        return self

    def _replace(self, **changes: Any) -> Decoded:
        new = tuple.__new__(type(self), tuple(changes.pop(f, v) for f, v in
                                              zip(self._fields, self, strict=True)))
        if changes:
            raise ValueError(f"got unexpected field names: {list(changes)!r}")
        new.__dict__.update(self.__dict__)
        return new

    def frame(self) -> RawFrame:
        """The plain :class:`RawFrame`."""
        return RawFrame._make(self)
