"""The book's error type, shared by the C core and the pure-Python reference core."""

from simlab import core

_native = core.native()
if _native is not None:
    BookError = _native.BookError
else:  # pure Python (asked for, or no C build): the pure-Python core raises this one

    class BookError(ValueError):  # type: ignore[no-redef]
        """A level that cannot be applied (not a plain decimal price > 0 / size >= 0).

        >>> issubclass(BookError, ValueError)
        True
        """


__all__ = ["BookError"]
