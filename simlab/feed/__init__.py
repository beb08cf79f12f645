"""Feed events and sources: live (:class:`LiveSource`) and replay (:class:`ReplaySource`)
produce the same :mod:`~simlab.feed.events` from the same decoder."""

from .decode import FrameDecoder
from .events import BookTick, Event, Notice, TradeTick
from .live import FrameTap, LiveSource
from .replay import ReplayError, ReplaySource
from .source import Source, to_ns

__all__ = ["BookTick", "Event", "FrameDecoder", "FrameTap", "LiveSource", "Notice",
           "ReplayError", "ReplaySource", "Source", "TradeTick", "to_ns"]
