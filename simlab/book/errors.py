"""The book's error type, shared by the C core and the pure-Python reference core."""

try:
    from simlab._native import BookError
except ImportError:  # no compiler at install time: the pure-Python core raises this one

    class BookError(ValueError):  # type: ignore[no-redef]
        """A level that cannot be applied (not a plain decimal price > 0 / size >= 0)."""


__all__ = ["BookError"]
