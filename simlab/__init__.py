"""simlab: crypto market-microstructure research on OKX's L2 feed."""

from ._version import __version__
from .book import BookError, Fill, L2Book, TopLevels
from .okx import BookMsg, BookSync, OkxParseError, parse_frame

__all__ = [
    "BookError", "BookMsg", "BookSync", "Fill", "L2Book", "OkxParseError", "TopLevels",
    "__version__", "parse_frame",
]
