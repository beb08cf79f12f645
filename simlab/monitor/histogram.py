"""A latency histogram with bounded relative error and constant memory.

:class:`LatencyHistogram` counts non-negative integers (nanoseconds) in log-linear buckets,
as HdrHistogram does: values below ``2**sub_bits`` are exact, and above that every power of
two is split into ``2**sub_bits`` equal buckets, so a percentile is reported to within
``2**-sub_bits`` of its value (about 3 % with the default 5 bits) whatever the range. Memory
is a fixed array of about 1,200 counts; the exact minimum, maximum, sum and count are kept
beside it. Values are added in batches (:meth:`add_many`, vectorised), which is what makes it
cheap enough to leave on in a per-tick loop; :meth:`add` takes one value.

Percentiles are the bucket's midpoint (its upper bound for the top bucket is not used: the
exact maximum is reported), clipped to the exact minimum and maximum.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .stats import summary_row

#: The percentiles the summaries report.
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


class LatencyHistogram:
    """Counts of non-negative integer values (e.g. ns) in log-linear buckets.

    ``sub_bits``: buckets per power of two = ``2**sub_bits`` (relative error
    ``<= 2**-sub_bits``); ``max_bits``: values up to ``2**max_bits - 1`` are binned (ns: 2**42
    is 73 minutes), larger ones land in the top bucket (the exact max is still kept).
    Negative values are counted apart (:attr:`negative`) and binned as 0: a latency computed
    from two clocks can come out negative when the clocks disagree.

    >>> h = LatencyHistogram()
    >>> h.add_many([1000, 2000, 3000, 4000, 100_000])
    >>> h.count, h.max, round(h.percentile(50), -2)
    (5, 100000, 3000.0)
    >>> h.summary()["p99"] <= h.max
    True
    """

    __slots__ = ("count", "counts", "max", "max_bits", "min", "negative", "sub_bits", "total")

    def __init__(self, sub_bits: int = 5, max_bits: int = 42) -> None:
        if not (isinstance(sub_bits, int) and 1 <= sub_bits <= 10):
            raise ValueError(f"sub_bits must be an int in 1..10, got {sub_bits!r}")
        if not (isinstance(max_bits, int) and sub_bits < max_bits <= 62):
            raise ValueError(f"max_bits must be an int in {sub_bits + 1}..62, got {max_bits!r}")
        self.sub_bits, self.max_bits = sub_bits, max_bits
        s = 1 << sub_bits
        self.counts = np.zeros((max_bits - sub_bits + 1) * s, np.int64)
        self.count = 0
        self.total = 0
        self.min: int | None = None
        self.max: int | None = None
        self.negative = 0

    # -- bucketing ----------------------------------------------------------------------------
    def index(self, values: np.ndarray) -> np.ndarray:
        """The bucket of each value (an int64 array >= 0)."""
        sb, s = self.sub_bits, 1 << self.sub_bits
        v = np.minimum(values, (1 << self.max_bits) - 1)
        # exponent e = floor(log2 v) from the float's exponent: exact below 2**53
        e = np.frexp(np.maximum(v, 1).astype(np.float64))[1].astype(np.int64) - 1
        shift = np.maximum(e - sb, 0)
        # below 2**sub_bits: shift 0 and no octave offset, so the index is the value
        return (shift + (e >= sb)) * s + (v >> shift) - np.where(e >= sb, s, 0)

    def bucket_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The ``[low, high)`` value range of every bucket."""
        s = 1 << self.sub_bits
        i = np.arange(len(self.counts), dtype=np.int64)
        k = i // s
        width = np.where(k == 0, 1, np.left_shift(1, np.maximum(k - 1, 0)))
        low = np.where(k == 0, i, (s + i % s) << np.maximum(k - 1, 0))
        return low, low + width

    # -- adding -------------------------------------------------------------------------------
    def add(self, value: int) -> None:
        """Add one value."""
        self.add_many((value,))

    def add_many(self, values: Iterable[int] | np.ndarray) -> None:
        """Add many values at once (a list, tuple or integer array)."""
        v = np.asarray(values if isinstance(values, np.ndarray | Sequence) else list(values))
        if v.size == 0:
            return
        if not np.issubdtype(v.dtype, np.integer):
            if not np.issubdtype(v.dtype, np.floating) or not np.isfinite(v).all():
                raise ValueError(f"values must be integers (ns), got dtype {v.dtype}")
            v = np.rint(v)
        v = v.astype(np.int64, copy=False).ravel()
        neg = v < 0
        n_neg = int(neg.sum())
        lo, hi = int(v.min()), int(v.max())
        if n_neg:
            self.negative += n_neg
            v = np.where(neg, 0, v)
        self.counts += np.bincount(self.index(v), minlength=len(self.counts))
        self.count += int(v.size)
        # int64 sums overflow only for absurd values (years in ns): then sum exactly
        self.total += int(v.sum()) if hi < (1 << 62) // v.size else sum(v.tolist())
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        """Add another histogram of the same shape into this one; returns self.

        >>> a, b = LatencyHistogram(), LatencyHistogram()
        >>> a.add_many([1, 2]); b.add_many([300])
        >>> a.merge(b).count, a.max
        (3, 300)
        """
        if (other.sub_bits, other.max_bits) != (self.sub_bits, self.max_bits):
            raise ValueError("cannot merge histograms of different shapes: "
                             f"{(self.sub_bits, self.max_bits)} vs "
                             f"{(other.sub_bits, other.max_bits)}")
        if other.count == 0:
            return self
        self.counts += other.counts
        self.count += other.count
        self.total += other.total
        self.negative += other.negative
        self.min = other.min if self.min is None else min(self.min, other.min)
        self.max = other.max if self.max is None else max(self.max, other.max)
        return self

    # -- reading ------------------------------------------------------------------------------
    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100), NaN when empty.

        >>> h = LatencyHistogram(); h.add_many(range(1, 101))
        >>> h.percentile(50), h.percentile(100)
        (50.0, 100.0)
        """
        return self.percentiles((q,))[0]

    def percentiles(self, qs: Sequence[float] = PERCENTILES) -> list[float]:
        """Several percentiles at once (each 0..100)."""
        for q in qs:
            if not (isinstance(q, int | float) and 0 <= q <= 100):
                raise ValueError(f"percentile must be a number in 0..100, got {q!r}")
        if self.count == 0:
            return [float("nan")] * len(qs)
        cum = np.cumsum(self.counts)
        low, high = self.bucket_bounds()
        out = []
        for q in qs:
            # the smallest value with at least q% of the values at or below it
            rank = max(1, int(np.ceil(q / 100.0 * self.count)))
            i = int(np.searchsorted(cum, rank))
            mid = (low[i] + high[i] - 1) / 2.0
            out.append(float(min(max(mid, self.min), self.max)))
        return out

    @property
    def mean(self) -> float:
        """The exact mean (NaN when empty)."""
        return self.total / self.count if self.count else float("nan")

    def summary(self, scale: float = 1.0, suffix: str = "") -> dict[str, Any]:
        """count, mean, p50, p90, p99, p99.9, max, min and negative (values divided by
        ``scale``: 1e3 for ns -> us; value keys end with ``suffix``, e.g. ``"_us"``).

        >>> h = LatencyHistogram(); h.add_many([2000] * 10)
        >>> h.summary(scale=1e3)["p50"], h.summary(1e3, "_us")["max_us"]
        (2.0, 2.0)
        """
        nan = float("nan")
        vals = {"count": self.count, "mean": self.mean / scale,
                "max": self.max / scale if self.max is not None else nan,
                "min": self.min / scale if self.min is not None else nan}
        pcts = [p / scale for p in self.percentiles(PERCENTILES)]
        return {**summary_row(vals, PERCENTILES, pcts, ("count", "mean", "p", "max", "min"),
                              suffix=suffix), "negative": self.negative}

    def nonzero(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The occupied buckets: ``(low, high, count)`` arrays, for plotting."""
        low, high = self.bucket_bounds()
        nz = np.flatnonzero(self.counts)
        return low[nz], high[nz], self.counts[nz]

    # -- (de)serialising ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (sparse counts) that :meth:`from_dict` restores exactly.

        >>> h = LatencyHistogram(); h.add_many([5, 5, 70_000])
        >>> LatencyHistogram.from_dict(h.to_dict()).summary() == h.summary()
        True
        """
        nz = np.flatnonzero(self.counts)
        return {"sub_bits": self.sub_bits, "max_bits": self.max_bits, "count": self.count,
                "total": self.total, "min": self.min, "max": self.max,
                "negative": self.negative,
                "buckets": [[int(i), int(self.counts[i])] for i in nz]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LatencyHistogram:
        """The histogram :meth:`to_dict` wrote (e.g. read back from a manifest)."""
        try:
            h = cls(int(d["sub_bits"]), int(d["max_bits"]))
            for i, c in d["buckets"]:
                h.counts[int(i)] = int(c)
            h.count, h.total, h.negative = int(d["count"]), int(d["total"]), int(d["negative"])
            h.min = None if d["min"] is None else int(d["min"])
            h.max = None if d["max"] is None else int(d["max"])
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise ValueError(f"not a LatencyHistogram dict ({type(e).__name__}: {e}); "
                             "expected the keys of LatencyHistogram.to_dict()") from None
        if int(h.counts.sum()) != h.count:
            raise ValueError(f"LatencyHistogram dict: bucket counts sum to {h.counts.sum()}, "
                             f"count says {h.count}")
        return h

    def __repr__(self) -> str:
        if not self.count:
            return "LatencyHistogram(empty)"
        s = self.summary()
        return (f"LatencyHistogram(count={self.count}, p50={s['p50']:g}, p99={s['p99']:g}, "
                f"max={s['max']:g})")
