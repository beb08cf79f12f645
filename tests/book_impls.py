"""Every book core built here, as factories: book tests run once per core."""

from simlab.book import IMPLS, L2Book


def _factory(impl: str):
    def make(inst_id: str = "") -> L2Book:
        return L2Book(inst_id, impl=impl)

    make.__name__ = f"L2Book_{impl}"
    return make


BOOK_IMPLS = [_factory(i) for i in sorted(IMPLS)]
