"""The book check beside a recording writer: every book frame stored is applied to its
stream's book (sequence rules, checksum, REST splice), so the manifest names each gap and
checksum failure (``events``) and sums up every stream (``integrity``).

The writer stores; this stage checks what it stored. :class:`RecordingWriter` composes it
when ``check_books`` is true (importers, the offline emulator); a caller composing its own
stages (the live recorder) can run it as one of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simlab.book import L2Book
from simlab.okx import is_book
from simlab.okx.integrity import BookIntegrity
from simlab.okx.normalize import Normalized
from simlab.okx.rest_parse import REST_CONN

if TYPE_CHECKING:
    from .writer import RecordingWriter


class CheckingStage:
    """Check the book frames ``writer`` stores with ``checker`` (a new
    :class:`~simlab.okx.integrity.BookIntegrity` on L2Books unless given): their integrity
    events go to the writer's manifest ``events`` in arrival order, the checker's summary to
    its ``integrity`` at every manifest write.

    >>> from simlab.okx.messages import BookMsg
    >>> class Writer:  # the two things the stage needs of a RecordingWriter
    ...     manifest_hooks, events = [], []
    ...     def note_event(self, e): self.events.append(e)
    >>> w = Writer()
    >>> stage = CheckingStage(w)
    >>> stage.frame(Normalized("book", msg=BookMsg("books", "X", "update", [], [], 1, 5, 4, 0)), 0)
    True
    >>> [e["kind"] for e in w.events], stage.frame(Normalized("pong"), 1)
    (['no_snapshot'], False)
    """

    def __init__(self, writer: RecordingWriter, checker: BookIntegrity | None = None) -> None:
        self.writer = writer
        self.checker = checker if checker is not None else BookIntegrity(L2Book)
        writer.manifest_hooks.append(self._summary)

    def frame(self, norm: Normalized, arrival: int, conn: int = 0) -> bool:
        """Check one stored frame (its arrival number in the recording, its connection);
        True if it was a book frame (checked)."""
        msg = norm.msg
        if msg is None or not is_book(msg):
            return False
        note = self.writer.note_event
        for ev in self.checker.apply(msg, arrival, rest=conn == REST_CONN).events:
            note(ev)
        return True

    def _summary(self, manifest: dict[str, Any]) -> None:
        manifest["integrity"] = self.checker.summary()
