"""Property tests: L2Book against a trivially-correct model; parse_frame and the book on junk."""

from __future__ import annotations

import math
from decimal import Decimal

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import simlab.okx.parse as parse_mod
from simlab.book import BookError
from simlab.okx import OkxParseError, is_book, okx_checksum, parse_frame

FAST = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


# -- the reference model --------------------------------------------------------------------
class Model:
    """Each side a dict ``Decimal(price) -> wire level``; sorted only when queried."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, list[str]] = {}
        self.asks: dict[Decimal, list[str]] = {}

    def snapshot(self, bids, asks) -> None:
        self.bids = {Decimal(x[0]): x for x in bids if Decimal(x[1]) != 0}
        self.asks = {Decimal(x[0]): x for x in asks if Decimal(x[1]) != 0}

    def update(self, bids, asks) -> None:
        for side, lv in ((self.bids, bids), (self.asks, asks)):
            for x in lv:
                if Decimal(x[1]) == 0:
                    side.pop(Decimal(x[0]), None)
                else:
                    side[Decimal(x[0])] = x

    def side(self, ask: bool) -> list[list[str]]:
        d = self.asks if ask else self.bids
        return [d[k] for k in sorted(d, reverse=not ask)]

    def levels(self, ask: bool, n: int | None = None) -> list[tuple[str, str, int]]:
        out = [(x[0], x[1], int(x[-1]) if len(x) >= 3 else 0) for x in self.side(ask)]
        return out if n is None else out[:n]

    def best(self, ask: bool) -> Decimal | None:
        d = self.asks if ask else self.bids
        return (min(d) if ask else max(d)) if d else None

    def depth_levels(self, ask: bool, n: int | None) -> float:
        lv = self.side(ask)
        return sum(float(x[1]) for x in (lv if n is None else lv[:n]))

    def depth_bps(self, ask: bool, bps: int, notional: bool = False) -> float:
        b, a = self.best(False), self.best(True)
        if b is None or a is None:
            return 0.0
        mid = (a + b) / 2
        # Exact: mid * (1 +- bps / 10000) in decimal arithmetic.
        limit = mid * (Decimal(10_000) + (bps if ask else -bps)) / Decimal(10_000)
        keep = [x for x in self.side(ask) if (Decimal(x[0]) <= limit if ask
                                                else Decimal(x[0]) >= limit)]
        return sum(float(x[1]) * (float(x[0]) if notional else 1.0) for x in keep)

    def checksum(self) -> int:
        return okx_checksum(self.side(False)[:25], self.side(True)[:25])

    def walk(self, ask: bool, want: float, quote: bool) -> tuple[float, float, int, float]:
        rem, gb, gq, used = want, 0.0, 0.0, 0
        for x in self.side(ask):
            if rem <= 0:
                break
            px, sz = float(x[0]), float(x[1])
            take = min(sz, rem / px) if quote else min(sz, rem)
            gb += take
            gq += take * px
            rem -= take * px if quote else take
            used += 1
        return gb, gq, used, rem


# -- strategies -----------------------------------------------------------------------------
TICKS = st.integers(min_value=1, max_value=80)


@st.composite
def price_str(draw, ticks):
    """A price on a 0.5 grid, in any of the spellings OKX-like data may use."""
    plain = format(Decimal(ticks) / 2, "f")  # "3" or "1.5"
    pad = draw(st.sampled_from(["", "0", "00"] if "." in plain else ["", ".0", ".00"]))
    return plain + pad


SIZES = st.sampled_from(["0", "0", "1", "2", "0.5", "2.25", "0.00000001", "10", "3.333",
                         "0.0", "123456.789"])
COUNTS = st.integers(min_value=0, max_value=9).map(str)


@st.composite
def side_levels(draw, max_size=10):
    ticks = draw(st.lists(TICKS, max_size=max_size, unique=True))
    out = []
    for t in ticks:
        lvl = [draw(price_str(t)), draw(SIZES)]
        shape = draw(st.integers(0, 2))
        if shape == 1:
            lvl.append(draw(COUNTS))  # history-file level [px, sz, count]
        elif shape == 2:
            lvl += ["0", draw(COUNTS)]
        out.append(lvl)
    return out


MESSAGES = st.lists(st.tuples(st.booleans().map(lambda s: "snapshot" if s else "update"),
                              side_levels(), side_levels()),
                    min_size=1, max_size=8).map(lambda m: [("snapshot", *m[0][1:]), *m[1:]])


def check_against_model(book, model: Model) -> None:
    for ask, name in ((False, "bid"), (True, "ask")):
        assert book.levels(name) == model.levels(ask)
        assert book.levels(name, 3) == model.levels(ask, 3)
        best = model.best(ask)
        got = book.best_ask if ask else book.best_bid
        assert (math.isnan(got) if best is None else got == float(best))
        for n in (None, 1, 5):
            assert book.depth(name, levels=n) == pytest.approx(model.depth_levels(ask, n),
                                                               rel=1e-12, abs=1e-15)
    b, a = model.best(False), model.best(True)
    assert book.n_bids == len(model.bids) and book.n_asks == len(model.asks)
    assert book.is_crossed() == (b is not None and a is not None and b >= a)
    if b is not None and a is not None:
        assert book.spread == float(a - b)
    assert book.checksum() == model.checksum()
    top = book.top(4)
    assert top.bid_px.tolist() == [float(x[0]) for x in model.side(False)[:4]]
    assert top.ask_sz.tolist() == [float(x[1]) for x in model.side(True)[:4]]


@FAST
@given(msgs=MESSAGES)
def test_book_matches_model_on_random_streams(make_book, msgs):
    book, model = make_book("P"), Model()
    for action, bids, asks in msgs:
        if action == "snapshot":
            book.apply_snapshot(bids, asks)
            model.snapshot(bids, asks)
        else:
            book.apply_update(bids, asks)
            model.update(bids, asks)
        check_against_model(book, model)


@FAST
@given(msgs=MESSAGES, want=st.floats(min_value=1e-6, max_value=1e6), quote=st.booleans(),
       buy=st.booleans())
def test_walk_matches_model(make_book, msgs, want, quote, buy):
    book, model = make_book("P"), Model()
    for action, bids, asks in msgs:
        (book.apply_snapshot if action == "snapshot" else book.apply_update)(bids, asks)
        (model.snapshot if action == "snapshot" else model.update)(bids, asks)
    f = book.walk("buy" if buy else "sell", **{"quote" if quote else "base": want})
    gb, gq, used, rem = model.walk(buy, want, quote)
    assert f.filled_base == pytest.approx(gb, rel=1e-9, abs=1e-12)
    assert f.filled_quote == pytest.approx(gq, rel=1e-9, abs=1e-12)
    assert f.levels == used
    if abs(rem) > 1e-9 * want:  # away from the exactly-enough edge
        assert f.complete == (rem <= 0)
        if not f.complete:
            assert f.shortfall == pytest.approx(rem, rel=1e-9)
    side = model.side(buy)
    if used:
        assert f.best_price == float(side[0][0]) and f.worst_price == float(side[used - 1][0])


@FAST
@given(msgs=MESSAGES, bps=st.integers(min_value=0, max_value=3000), notional=st.booleans())
def test_depth_bps_matches_exact_model(make_book, msgs, bps, notional):
    book, model = make_book("P"), Model()
    for action, bids, asks in msgs:
        (book.apply_snapshot if action == "snapshot" else book.apply_update)(bids, asks)
        (model.snapshot if action == "snapshot" else model.update)(bids, asks)
    for ask, name in ((False, "bid"), (True, "ask")):
        assert book.depth(name, bps=bps, notional=notional) == pytest.approx(
            model.depth_bps(ask, bps, notional), rel=1e-12, abs=1e-15), (name, bps)


@FAST
@given(j=st.integers(min_value=1, max_value=10_000), bps=st.integers(min_value=1, max_value=9_000))
def test_depth_bps_includes_levels_exactly_on_the_bound(make_book, j, bps):
    """mid = 100*j; the levels at exactly mid*(1 -+ bps/1e4) are within bps of the mid."""
    mid = 100 * j
    off = Decimal(j * bps) / 100
    book = make_book("P")
    book.apply_snapshot([[str(mid - Decimal("0.001")), "1"], [format(mid - off, "f"), "2"]],
                        [[str(mid + Decimal("0.001")), "1"], [format(mid + off, "f"), "4"]])
    assert book.mid == mid
    assert book.depth("bid", bps=bps) == 3.0, (mid, bps, format(mid - off, "f"))
    assert book.depth("ask", bps=bps) == 5.0, (mid, bps, format(mid + off, "f"))


# -- junk into the book ---------------------------------------------------------------------
JUNK_STR = st.one_of(
    st.sampled_from(["", " ", "1 ", " 1", "1e5", "1E-3", "0x10", "1_0", "+1", "-1", "-0", "0",
                     "nan", "NaN", "inf", "-inf", "Infinity", "1.", ".5", "1..2", "١٢",
                     "0.000000000000000000000000000000001", "9" * 40, "1/2", "\x00", "é"]),
    st.text(max_size=6),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)
JUNK_VALUE = st.one_of(JUNK_STR, st.integers(), st.floats(), st.none(), st.booleans())
JUNK_LEVEL = st.one_of(
    st.lists(JUNK_STR, max_size=5),
    st.lists(JUNK_VALUE, max_size=5),
    st.tuples(JUNK_STR, JUNK_STR, st.just("0"), JUNK_STR).map(list),
    JUNK_VALUE,
    st.dictionaries(st.integers(0, 3), JUNK_STR, max_size=3),
)


@FAST
@given(base=side_levels(6), bids=st.lists(JUNK_LEVEL, max_size=4),
       asks=st.lists(JUNK_LEVEL, max_size=4), snapshot=st.booleans())
def test_junk_levels_only_book_error_and_all_or_nothing(make_book, base, bids, asks, snapshot):
    book = make_book("J")
    book.apply_snapshot(base, [])
    before = (book.levels("bid"), book.levels("ask"), book.checksum())
    try:
        (book.apply_snapshot if snapshot else book.apply_update)(bids, asks)
    except BookError:
        assert (book.levels("bid"), book.levels("ask"), book.checksum()) == before
        return
    # Accepted: every query must still work.
    for name in ("bid", "ask"):
        book.levels(name)
        book.depth(name, levels=3)
        book.depth(name, bps=100)
    book.checksum()
    book.top(5)
    book.walk("buy", base=1.0)
    book.walk("sell", quote=1.0)
    _ = book.best_bid, book.best_ask, book.mid, book.spread, book.is_crossed()


# -- junk into the parser -------------------------------------------------------------------
@pytest.fixture(params=[True, False], ids=["scanner", "orjson"])
def parser(request, monkeypatch):
    if request.param and getattr(parse_mod, "_scan", None) is None:
        pytest.skip("C scanner not built")
    monkeypatch.setattr(parse_mod, "USE_SCANNER", request.param, raising=False)
    return request.param


def parse_ok_or_named_error(f):
    try:
        return parse_frame(f)
    except OkxParseError as e:
        assert e.reason
        return e


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    max_leaves=12,
)
CHANNELS = st.sampled_from(["books", "books5", "bbo-tbt", "books-l2-tbt", "books50-l2-tbt",
                            "trades", "tickers", "books-l2-history", "x"])


#: Level lists whose strings need JSON escapes or are not numbers at all.
WIRE = st.lists(st.lists(st.sampled_from(["1", "0.5", "0", "-1", "1e3", "\"", "\\", "é", "\n",
                                          "\u2028", "1\x00"]) | st.text(max_size=4),
                         max_size=5), max_size=3)


@st.composite
def okxish(draw):
    """Frames shaped like OKX pushes with random values in random places."""
    arg = {"channel": draw(CHANNELS | JSON)}
    if draw(st.booleans()):
        arg["instId"] = draw(st.sampled_from(["BTC-USDT", ""]) | JSON)
    d = draw(st.dictionaries(st.sampled_from(["asks", "bids", "ts", "checksum", "prevSeqId",
                                              "seqId", "instId", "px", "sz", "side", "tradeId",
                                              "count"]),
                             JSON | st.just([["1", "2", "0", "3"]]) | st.just("12") | WIRE,
                             max_size=8))
    top = {"arg": draw(st.just(arg) | JSON), "data": draw(st.just([d]) | JSON)}
    if draw(st.booleans()):
        top["action"] = draw(st.sampled_from(["snapshot", "update"]) | JSON)
    if draw(st.integers(0, 9)) == 0:
        top["event"] = draw(JSON)
    return orjson.dumps(top)


@FAST
@given(f=st.binary(max_size=64))
def test_parse_random_bytes(parser, f):
    parse_ok_or_named_error(f)


@FAST
@given(f=st.text(max_size=64))
def test_parse_random_text(parser, f):
    parse_ok_or_named_error(f)


@FAST
@given(v=JSON)
def test_parse_random_json(parser, v):
    parse_ok_or_named_error(orjson.dumps(v))


@FAST
@given(f=okxish())
def test_parse_okx_shaped_junk(parser, f):
    parse_ok_or_named_error(f)


@FAST
@given(f=okxish(), cut=st.integers(0, 400))
def test_parse_truncated_okx_shaped(parser, f, cut):
    parse_ok_or_named_error(f[:cut])


def _fields(m):
    if isinstance(m, Exception):
        return ("error", type(m).__name__)
    if is_book(m):
        return ("book", m.channel, m.inst_id, m.action, [list(x) for x in m.bids],
                [list(x) for x in m.asks], m.ts, m.seq_id, m.prev_seq_id, m.checksum)
    return ("other", m)


@FAST
@given(f=okxish())
def test_scanner_and_orjson_agree(monkeypatch, f):
    if getattr(parse_mod, "_scan", None) is None:
        pytest.skip("C scanner not built")
    monkeypatch.setattr(parse_mod, "USE_SCANNER", True)
    a = _fields(parse_ok_or_named_error(f))
    monkeypatch.setattr(parse_mod, "USE_SCANNER", False)
    b = _fields(parse_ok_or_named_error(f))
    assert a == b
