"""L2 order book (exact decimal price keys; C core with a pure-Python reference)."""

from .errors import BookError
from .l2 import IMPLS, Fill, L2Book, TopLevels, default_impl

__all__ = ["IMPLS", "BookError", "Fill", "L2Book", "TopLevels", "default_impl"]
