"""Everything OKX-specific: wire messages, parsing, sequence rules, checksum, book integrity."""

from .checksum import checksum_string, crc32_signed, okx_checksum
from .integrity import BookIntegrity, BookStats, BookSync, Outcome, SyncEvent
from .messages import (
    BOOK_TYPES,
    BookMsg,
    EventMsg,
    OkxParseError,
    OtherMsg,
    Pong,
    Trade,
    TradeMsg,
    is_book,
)
from .parse import parse_frame, parse_history_line
from .sequence import Seq, classify

__all__ = [
    "BOOK_TYPES",
    "BookIntegrity", "BookMsg", "BookStats", "BookSync", "EventMsg", "OkxParseError",
    "OtherMsg", "Outcome", "Pong", "Seq", "SyncEvent", "Trade", "TradeMsg", "checksum_string",
    "classify", "crc32_signed", "is_book", "okx_checksum", "parse_frame", "parse_history_line",
]
