"""L2 order book."""

from .l2 import BookError, Fill, L2Book, TopLevels

__all__ = ["BookError", "Fill", "L2Book", "TopLevels"]
