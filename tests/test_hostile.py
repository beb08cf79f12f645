"""Hostile frames: the parser and the normaliser are total, and a bad frame of any shape is
counted and stored as malformed, imported or live, never a crash and never lost.

Property tests put arbitrary JSON (deep nesting, huge numbers, NaN-ish and non-UTF-8 text
included) into every field of every message kind and check the outcome against a
field-by-field statement of what OKX sends (docs: okx-v5-public-feed.md). A fixed corpus
of hostile frames then goes through ``simlab import`` (okx-jsonl and okx-capture) and
through the live path (the emulator sends it to a real Recorder).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import simlab.okx.parse as parse_mod
from simlab.cli import main
from simlab.emulator import Fault, FaultSpec
from simlab.emulator.testing import RandomMarket, run
from simlab.okx import OkxParseError, parse_frame, parse_history_line
from simlab.okx.normalize import INTERNAL_REASON, WIRE_L2_HISTORY, WIRE_WS, normalize
from simlab.store import Recording, RecordingWriter, verify

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
KINDS = {"book", "trade", "other", "unknown", "event", "pong", "malformed"}
MISSING = object()  # the field is left out
INVALID = object()  # the value's text is not JSON at all (orjson refuses it)
_I64 = 2**63


def outcome(payload: bytes | str, wire: str = WIRE_WS) -> str:
    """The normalised kind, the same with the C scanner on and off, never an exception,
    and a short reason from the checks themselves (not the last-resort catch-all)."""
    kinds = []
    for scanner in (True, False) if parse_mod._scan is not None else (False,):
        old = parse_mod.USE_SCANNER
        parse_mod.USE_SCANNER = scanner
        try:
            n = normalize(payload, wire)
            with contextlib.suppress(OkxParseError):  # the parser's only failure
                parse_frame(payload) if wire == WIRE_WS else parse_history_line(payload)
        finally:
            parse_mod.USE_SCANNER = old
        assert n.kind in KINDS
        if n.kind == "malformed":
            assert n.error and len(n.error) < 300, n.error
            assert not n.error.startswith(INTERNAL_REASON), n.error
        kinds.append(n.kind)
    assert len(set(kinds)) == 1, kinds  # the fast path agrees with orjson
    return kinds[0]


# -- what OKX sends, field by field -------------------------------------------------------
_DEC = r"[0-9]{1,18}(?:\.[0-9]{1,18})?"


def int64(v: Any) -> bool:
    """An integer field: a JSON integer, or a string of digits (``ts``), in int64."""
    if type(v) is str and re.fullmatch(r"-?[0-9]{1,19}", v):
        v = int(v)
    return type(v) is int and -_I64 <= v < _I64


def opt_int64(v: Any) -> bool:
    return v is MISSING or v is None or v == "" or int64(v)


def ts_ok(v: Any) -> bool:
    return v is not MISSING and v != "" and int64(v) and int(v) >= 0


def level_ok(v: Any) -> bool:
    """A book level the book accepts: [price > 0, size >= 0, ..., count], plain decimals."""
    if type(v) is not list or len(v) < 2 or not all(type(x) is str for x in v):
        return False
    px, sz = v[0], v[1]
    if not all(re.fullmatch(_DEC, x) and len(x) <= 31 for x in (px, sz)):
        return False
    if float(px) <= 0:
        return False
    return len(v) < 3 or bool(re.fullmatch(r"[0-9]{1,18}", v[-1]) and int(v[-1]) < 2**31)


def a_level_ok(v: Any) -> bool:
    """One level of a side replaced (or removed: the side is one level shorter)."""
    return v is MISSING or level_ok(v)


def levels_ok(v: Any) -> bool:
    return v is MISSING or v is None or (type(v) is list and all(level_ok(x) for x in v))


def trade_number(v: Any, positive: bool) -> bool:
    if type(v) is not str or not re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", v):
        return False
    f = float(v)
    return f < float("inf") and (f > 0 if positive else f >= 0)


def opt_str(v: Any) -> bool:
    return v is MISSING or v is None or type(v) is str


def str_or_int(v: Any) -> bool:
    return opt_str(v) or (type(v) is int and -_I64 <= v < _I64)


def code_ok(v: Any) -> bool:
    if type(v) is int and -_I64 <= v < _I64:
        v = str(v)
    return v is MISSING or v is None or (type(v) is str
                                           and bool(re.fullmatch(r"[A-Za-z0-9_-]{0,32}", v)))


def arg_ok(v: Any) -> bool | None:
    """An ``arg`` replaced whole: an object (with string channel/instId) is for the other
    fields to judge; anything else is malformed."""
    if type(v) is not dict:
        return False
    if any(k in v and type(v[k]) is not str for k in ("channel", "instId")):
        return False
    return None


def _always(v: Any) -> bool:
    return True


def _dont_care(v: Any) -> None:
    return None


def _not_str_is_bad(v: Any) -> bool | None:
    return False if type(v) is not str else None


def _inst(v: Any) -> bool | None:
    """``arg.instId``: a string, or absent (a book then takes ``data[0].instId``)."""
    return None if v is MISSING or type(v) is str else False


def _not_list_is_bad(v: Any) -> bool | None:
    return False if type(v) is not list else None


def _not_dict_is_bad(v: Any) -> bool | None:
    return False if type(v) is not dict else None


LV = ["41006.8", "0.60038921", "0", "1"]
BOOK = {"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "update",
        "data": [{"asks": [LV, ["41007", "1", "0", "3"]],
                  "bids": [["41006.3", "0.3", "0", "2"], ["41006", "2", "0", "1"]],
                  "ts": "1629966436396", "checksum": -1881014294, "prevSeqId": 123450,
                  "seqId": 123456}]}
BOOKS5 = {"arg": {"channel": "books5", "instId": "BTC-USDT"},
          "data": [{"asks": [LV, ["41007", "1", "0", "3"]],
                    "bids": [["41006.3", "0.3", "0", "2"], ["41006", "2", "0", "1"]],
                    "instId": "BTC-USDT",
                    "ts": "1629966436396", "seqId": 7}]}
TRADES = {"arg": {"channel": "trades", "instId": "BTC-USDT"},
          "data": [{"instId": "BTC-USDT", "tradeId": "130639474", "px": "42219.9",
                    "sz": "0.12060306", "side": "buy", "ts": "1629386781174", "count": "3",
                    "source": "0", "seqId": 1234}]}
TICKERS = {"arg": {"channel": "tickers", "instId": "BTC-USDT"},
           "data": [{"instId": "BTC-USDT", "last": "9999.99", "ts": "1597026383085"}]}
SUBSCRIBE = {"id": "1", "event": "subscribe", "arg": {"channel": "books", "instId": "BTC-USDT"},
             "connId": "a4d3ae55"}
ERROR = {"event": "error", "code": "60012", "msg": "Invalid request: {\"op\": \"subscribe\"}",
         "connId": "a4d3ae55"}
NOTICE = {"event": "notice", "code": "64008", "msg": "The connection will soon be closed.",
          "connId": "a4d3ae55"}
HISTORY = {"instId": "BTC-USDT", "action": "snapshot", "ts": "1700000000000",
           "asks": [["2", "1", "1"]], "bids": [["1", "3", "2"]]}

_BOOK_FIELDS = {
    "arg": arg_ok, "arg.channel": _not_str_is_bad, "arg.instId": _inst,
    "data": _not_list_is_bad, "data.0": _not_dict_is_bad,
    "data.0.ts": ts_ok, "data.0.seqId": opt_int64, "data.0.prevSeqId": opt_int64,
    "data.0.checksum": opt_int64, "data.0.asks": levels_ok, "data.0.bids": levels_ok,
}
_LEVEL = {f"data.0.{side}.{i}": a_level_ok for side in ("asks", "bids") for i in range(2)}
_LEVEL_ITEM = {f"data.0.{side}.{i}.{j}": "level" for side in ("asks", "bids")
               for i in range(2) for j in range(4)}
#: Per message kind: the valid frame, and per field path what a replacement value must be
#: for the frame to stay valid (True valid, False malformed, None: not this field's call).
TEMPLATES: dict[str, tuple[dict, dict[str, Any], str]] = {
    "books": (BOOK, {**_BOOK_FIELDS, **_LEVEL, **_LEVEL_ITEM,
                     "action": lambda v: v in ("snapshot", "update")}, "book"),
    "books5": (BOOKS5, {**_BOOK_FIELDS, **_LEVEL, **_LEVEL_ITEM, "data.0.instId": _dont_care},
               "book"),
    "trades": (TRADES, {
        "arg": arg_ok, "arg.channel": _not_str_is_bad, "arg.instId": _inst,
        "data": _not_list_is_bad, "data.0": _not_dict_is_bad, "data.0.instId": _always,
        "data.0.tradeId": lambda v: v not in (MISSING, None, "") and str_or_int(v),
        "data.0.px": lambda v: trade_number(v, True),
        "data.0.sz": lambda v: trade_number(v, False),
        "data.0.side": lambda v: v in ("buy", "sell"), "data.0.ts": ts_ok,
        "data.0.count": lambda v: opt_int64(v) and (not int64(v) or -2**31 <= int(v) < 2**31),
        "data.0.source": str_or_int, "data.0.seqId": opt_int64}, "trade"),
    "tickers": (TICKERS, {
        "arg": arg_ok, "arg.channel": _not_str_is_bad, "arg.instId": _inst,
        "data": _not_list_is_bad, "data.0": _always, "data.0.instId": _always,
        "data.0.last": _always, "data.0.ts": _always}, "other"),
    "subscribe": (SUBSCRIBE, {
        "id": str_or_int, "event": _not_str_is_bad, "connId": opt_str,
        "arg": lambda v: v is MISSING or v is None or arg_ok(v) is None,
        "arg.channel": lambda v: v is MISSING or type(v) is str,
        "arg.instId": lambda v: v is MISSING or type(v) is str}, "event"),
    "error": (ERROR, {"event": _not_str_is_bad, "code": code_ok, "msg": opt_str,
                      "connId": opt_str}, "event"),
    "notice": (NOTICE, {"event": _not_str_is_bad, "code": code_ok, "msg": opt_str,
                        "connId": opt_str}, "event"),
}
HISTORY_FIELDS = {"instId": lambda v: type(v) is str and v != "",
                  "action": lambda v: v in ("snapshot", "update"), "ts": ts_ok,
                  "asks": levels_ok, "bids": levels_ok, "asks.0": a_level_ok,
                  "bids.0": a_level_ok, **{f"{s}.0.{j}": "level" for s in ("asks", "bids")
                                         for j in range(3)}}


def paths(obj: Any, prefix: str = "") -> list[str]:
    """Every field path of a template (``data.0.asks.1.0``)."""
    out = []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj)
    for k, v in items:
        p = f"{prefix}{k}"
        out.append(p)
        if isinstance(v, dict | list):
            out += paths(v, p + ".")
    return out


def test_every_field_of_every_template_has_a_rule():
    for name, (tpl, rules, _) in TEMPLATES.items():
        assert set(paths(tpl)) <= set(rules), name  # a rule may also add a field
    assert set(paths(HISTORY)) <= set(HISTORY_FIELDS)


_MARK = "__hostile_value__"


def mutate(tpl: dict, path: str, text: bytes | None) -> tuple[bytes, Any]:
    """The template with the field at ``path`` replaced by the JSON text ``text`` (None:
    removed); returns the frame and the field's container after the change."""
    obj = json.loads(json.dumps(tpl))
    *parents, last = path.split(".")
    node = obj
    for k in parents:
        node = node[int(k)] if isinstance(node, list) else node[k]
    key = int(last) if isinstance(node, list) else last
    if text is None:
        if isinstance(node, list):
            del node[key]
        else:
            node.pop(key, None)
        return orjson.dumps(obj), node
    node[key] = _MARK
    frame = json.dumps(obj, ensure_ascii=False).encode().replace(f'"{_MARK}"'.encode(), text)
    return frame, node


def value_of(text: bytes | None) -> Any:
    if text is None:
        return MISSING
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return INVALID


def expected(rules: dict, path: str, text: bytes | None, node: Any) -> bool | None:
    v = value_of(text)
    if v is INVALID:
        return False
    rule = rules[path]
    if rule == "level":
        # an element of a level: judge the whole level as it now is
        lvl = node if v is MISSING else [v if i == int(path.rsplit(".", 1)[1]) else x
                                         for i, x in enumerate(node)]
        return level_ok(lvl)
    return rule(v)


def deep(n: int) -> bytes:
    """``n`` nested lists."""
    return b"[" * n + b"]" * n


def deep_obj(n: int) -> bytes:
    """``n`` nested objects around a 1."""
    return b'{"a":' * n + b"1" + b"}" * n


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
_scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
            | st.floats(allow_nan=False, allow_infinity=False) | _text
            | st.sampled_from(["", "0", "-1", "1.5", "41006.8", "1e5", "NaN", "nan", "inf",
                               "-inf", "Infinity", " 1", "1 ", "+1", "1_000", "0x10", "٣",
                               "１", "1.", ".5", "00.1", "0.0", "-0", "1" * 19, "9" * 40,
                               "1" * 18 + "." + "1" * 18, "buy", "sell", "snapshot",
                               "update", "books", "BTC-USDT", "\u0000", "\ufeff1"]))
_json = st.recursive(_scalars, lambda c: st.lists(c, max_size=4)
                     | st.dictionaries(_text, c, max_size=3), max_leaves=12)
#: JSON text for a field: any JSON value, raw literals orjson refuses or reads oddly, deep
#: nesting (fine at 900 levels, past orjson's limit at 100,000), non-UTF-8 bytes.
_field_text = st.one_of(
    _json.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1E5", b"-0",
                     b"1" * 400, b"18446744073709551616", b"9223372036854775808",
                     b"-9223372036854775809", b"9223372036854775807", b'"\\ud800"',
                     b'"\xff\xfe"', b'"\xc3"', b"\xff", b"[", b"}", b'"\\u0000"']),
    st.sampled_from([900, 100_000]).map(deep),
    st.sampled_from([900, 100_000]).map(deep_obj),
)


@st.composite
def field_mutations(draw, templates=TEMPLATES):
    name = draw(st.sampled_from(sorted(templates)))
    rules = templates[name][1]
    path = draw(st.sampled_from(sorted(rules)))
    text = draw(st.none() | _field_text)
    return name, path, text


@SETTINGS
@given(field_mutations())
def test_any_value_in_any_field(m):
    name, path, text = m
    tpl, rules, kind = TEMPLATES[name]
    frame, node = mutate(tpl, path, text)
    got = outcome(frame)
    want = expected(rules, path, text, node)
    if want is False:
        assert got == "malformed", (frame[:300], got)
    elif want is True:
        assert got == kind, (frame[:300], got)


@SETTINGS
@given(st.sampled_from(sorted(HISTORY_FIELDS)), st.none() | _field_text)
def test_any_value_in_any_field_of_a_history_line(path, text):
    frame, node = mutate(HISTORY, path, text)
    got = outcome(frame, WIRE_L2_HISTORY)
    want = expected(HISTORY_FIELDS, path, text, node)
    if want is not None:
        assert got == ("book" if want else "malformed"), (frame[:300], got)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(field_mutations(), min_size=1, max_size=12))
def test_the_writer_and_verify_take_any_frames(tmp_path_factory, ms):
    frames = [mutate(TEMPLATES[name][0], path, text)[0] for name, path, text in ms]
    out = tmp_path_factory.mktemp("w") / "rec"
    with RecordingWriter(out, {"importer": "hostile"}) as w:
        for i, f in enumerate(frames):
            w.add(f, 1_700_000_000_000_000_000 + i)
    m = Recording(out).manifest
    assert m["complete"] and m["arrivals"] == len(frames)
    assert [f.payload for f in Recording(out).iter_raw()] == frames
    bad = sum(outcome(f) == "malformed" for f in frames)
    # at least those (the writer also refuses names it cannot use as partitions)
    assert m["malformed"]["count"] >= bad
    assert verify(out).malformed["count"] == m["malformed"]["count"]


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_the_templates_are_valid(name):
    tpl, _, kind = TEMPLATES[name]
    assert outcome(orjson.dumps(tpl)) == kind


@SETTINGS
@given(st.binary(max_size=300) | _json.map(lambda v: json.dumps(v).encode()))
def test_any_bytes_or_json_value(payload):
    kind = outcome(payload)
    if payload not in (b"pong",):
        assert kind != "pong"
    outcome(payload, WIRE_L2_HISTORY)
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        return
    assert outcome(text) == kind  # str in, same answer


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("where", ["frame", "arg", "instId", "level", "ts", "code", "data"])
def test_deep_nesting_anywhere_is_malformed(depth, where):
    d = deep(depth).decode()
    book = ('{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{"asks":'
            '[["1",D,"0","1"]],"bids":[],"ts":"1","seqId":2,"prevSeqId":1}]}')
    frame = {
        "frame": "D",
        "arg": '{"arg":D,"data":[]}',
        "instId": '{"arg":{"channel":"books","instId":D},"data":[]}',
        "level": book,
        "ts": '{"arg":{"channel":"trades","instId":"X"},"data":[{"ts":D}]}',
        "code": '{"event":"error","code":D,"msg":"x"}',
        "data": '{"arg":{"channel":"books","instId":"X"},"action":"update","data":D}',
    }[where].replace("D", d)
    assert outcome(frame.encode()) == "malformed"


def test_the_notice_of_issue_15_is_malformed_with_a_short_reason():
    n = normalize(b'{"event":"notice","arg":[1],"code":"1"}')
    assert n.kind == "malformed" and "'arg' must be an object" in n.error


def test_error_text_quotes_only_an_excerpt():
    big = b'{"arg":{"channel":"books","instId":"X"},"action":"nope' + b"x" * 10**6 + b'"}'
    with pytest.raises(OkxParseError) as ei:
        parse_frame(big)
    assert len(str(ei.value)) < 400 and len(ei.value.reason) < 200
    n = normalize(b'{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{'
                  b'"asks":[["' + b"9" * 5000 + b'","1","0","1"]],"bids":[],"ts":"1"}]}')
    assert n.kind == "malformed" and len(n.error) < 200


def test_non_bytes_input_is_malformed_not_a_crash():
    for x in (None, 5, 1.5, ["a"], {"a": 1}, bytearray(b"pong"), memoryview(b"{}")):
        n = normalize(x)  # type: ignore[arg-type]
        assert n.kind in ("malformed", "pong")
    # str with a lone surrogate (not encodable), on both parser paths
    assert outcome("\ud800") == outcome('{"arg":{"channel":"books","instId":"\ud800"}}') \
        == "malformed"


# -- the fixed hostile corpus -----------------------------------------------------------
def _book(**over: Any) -> bytes:
    d = json.loads(json.dumps(BOOK))
    d["arg"]["instId"] = "HOSTILE-X"
    for path, v in over.items():
        *parents, last = path.split("__")
        node = d
        for k in parents:
            node = node[int(k)] if isinstance(node, list) else node[k]
        node[int(last) if isinstance(node, list) else last] = v
    return orjson.dumps(d)


def _sub(frame: bytes, old: bytes, new: bytes) -> bytes:
    assert old in frame
    return frame.replace(old, new, 1)


#: The notice of issue 15, deep nesting, and a wrong type in each field. Book frames name
#: an instrument the recorder does not subscribe to (so a live book is not disturbed).
HOSTILE: list[bytes] = [
    b'{"event":"notice","arg":[1],"code":"1"}',
    b'{"event":"subscribe","arg":{"channel":["books"],"instId":"BTC-USDT"}}',
    b'{"event":"error","code":{"a":1},"msg":"x"}',
    b'{"event":"error","code":"60012","msg":[1,2]}',
    b'{"event":7,"code":"0"}',
    b'{"event":"notice","code":"64008","connId":' + deep(1000) + b"}",
    deep(1000),
    deep(100_000),
    b'{"arg":{"channel":"books","instId":' + deep(1000) + b'},"data":[]}',
    b'{"arg":' + deep_obj(1000) + b"}",
    _book(arg="books"),
    _book(arg__channel=5),
    _book(arg__instId=["HOSTILE-X"]),
    _book(action=1),
    _book(data={"asks": []}),
    _book(data__0=[1]),
    _book(data__0__ts=[1]),
    _book(data__0__ts="yesterday"),
    _book(data__0__seqId="x"),
    _book(data__0__prevSeqId=1.5),
    _book(data__0__checksum=[1]),
    _book(data__0__bids="x"),
    _book(data__0__asks__0=[1, 2]),
    _book(data__0__asks__0__1=None),
    _book(data__0__asks__0__0="NaN"),
    _book(data__0__asks__0__0="1e5"),
    _book(data__0__asks__0__1="-1"),
    _book(data__0__asks__0__3="many"),
    _sub(orjson.dumps(TRADES), b'"px":"42219.9"', b'"px":42219.9'),
    _sub(orjson.dumps(TRADES), b'"sz":"0.12060306"', b'"sz":"lots"'),
    _sub(orjson.dumps(TRADES), b'"side":"buy"', b'"side":"up"'),
    _sub(orjson.dumps(TRADES), b'"tradeId":"130639474"', b'"tradeId":' + deep(900)),
    _sub(orjson.dumps(TRADES), b'"source":"0"', b'"source":{"deep":' + deep(900) + b"}"),
    _sub(orjson.dumps(TRADES), b'"ts":"1629386781174"', b'"ts":"' + b"9" * 40 + b'"'),
    _sub(orjson.dumps(TRADES), b'"count":"3"', b'"count":1e400'),
    b'{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":NaN}',
    b"ping",
    b"pong pong",
    b"",
]
#: Not UTF-8: a WebSocket text frame cannot carry these, an imported file can.
NOT_UTF8 = [b'{"event":"error","code":"\xff\xfe","msg":"x"}', b"\xff\xfe\xfd" * 50]
#: Valid frames around the hostile ones.
VALID = [orjson.dumps(SUBSCRIBE), orjson.dumps(BOOK).replace(b'"update"', b'"snapshot"'),
         orjson.dumps(TRADES), orjson.dumps(TICKERS)]


def test_every_hostile_frame_is_malformed():
    for f in HOSTILE + NOT_UTF8:
        assert outcome(f) == "malformed", f[:200]


def _interleave(corpus: list[bytes]) -> tuple[list[bytes], int]:
    lines, valid = [], 0
    for i, f in enumerate(corpus):
        lines.append(VALID[i % len(VALID)])
        valid += 1
        lines.append(f)
    return lines, valid


def _stored_malformed(out) -> list[bytes]:
    return [f.payload for f in Recording(out).iter_raw(channel="_malformed")]


@pytest.mark.parametrize("fmt", ["okx-jsonl", "okx-capture"])
def test_hostile_corpus_imports_every_frame_as_malformed(tmp_path, capsys, fmt):
    corpus = [f for f in HOSTILE + NOT_UTF8 if f.strip()]  # a blank line is skipped, not data
    lines, valid = _interleave(corpus)
    src = tmp_path / "in.txt"
    if fmt == "okx-capture":
        lines = [b"wss://ws.okx.com:8443/ws/v5/public <-> 1652459224.5300605"] + [
            b"%d.%06d: %s" % (1652459225 + i, i, line) for i, line in enumerate(lines)]
    src.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "rec"
    code = main(["import", fmt, str(src), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err
    m = Recording(out).manifest
    assert m["complete"] and m["malformed"]["count"] == len(corpus)
    assert sorted(_stored_malformed(out)) == sorted(corpus)
    assert m["arrivals"] == len(corpus) + valid
    # the valid frames around them are imported normally
    ch = m["channels"]
    assert ch["books"]["messages"] == ch["trades"]["messages"] == ch["tickers"]["messages"] > 0
    assert m["control"]["subscribe"] == ch["books"]["messages"]
    rep = verify(out)
    assert rep.malformed["count"] == len(corpus)
    assert Recording(out).levels_table().num_rows > 0


# -- live: the emulator sends the corpus to a real Recorder -----------------------------
def test_hostile_corpus_live_is_recorded_as_malformed(emulator_factory, tmp_path):
    from simlab.record import Recorder

    insts = ("BTC-USDT",)
    emu = emulator_factory(RandomMarket(seed=3, rate=200, instruments=list(insts)),
                           paused=True)
    out = tmp_path / "rec"
    corpus = [f for f in HOSTILE if f]  # an empty text frame is a valid no-op, skip it
    fast = {"snapshot_timeout": 0.5, "backoff_base": 0.05, "backoff_max": 0.2,
            "close_timeout": 0.5, "open_timeout": 2.0, "splice_wait": 1.0}

    async def main_() -> Any:
        rec = Recorder(out, [("books", "BTC-USDT"), ("trades", "BTC-USDT")],
                       ws_url=emu.ws_url, rest_url=emu.rest_url, **fast)
        task = asyncio.create_task(rec.run())
        await rec.until(lambda: rec.client is not None
                        and rec.client.mode("books", "BTC-USDT") == "live"
                        and rec.per_stream[("books", "BTC-USDT")] > 0, what="snapshot")
        for i, f in enumerate(corpus):
            await asyncio.to_thread(emu.emulator.inject, FaultSpec(Fault.MALFORMED, payload=f,
                                                                   after=i % 5))
        for _ in range(6):
            await asyncio.to_thread(emu.emulator.advance, 300)
            await asyncio.sleep(0.05)
            await rec.idle(0.25)
        rec.stop("test done")
        return await task

    result = run(main_(), timeout=40)
    m = Recording(out).manifest
    assert m["complete"] and not m.get("error"), m.get("error")
    assert result.frames > len(corpus)
    assert result.malformed == len(corpus) and f"{len(corpus)} malformed" in result.summary()
    assert m["malformed"]["count"] == len(corpus)
    assert sorted(_stored_malformed(out)) == sorted(corpus)
    rep = verify(out)
    assert rep.malformed["count"] == len(corpus)
    # the subscribed book went on, undisturbed
    st = rep.channels["books"]["instruments"]["BTC-USDT"]
    assert st["gaps"] == st["rejected"] == 0 and st["snapshots"] >= 1


# -- the feed decoder (live and replay) -------------------------------------------------
def test_the_feed_decoder_takes_the_corpus_on_any_stream():
    from simlab.feed import FrameDecoder
    from simlab.okx.frames import RawFrame

    d = FrameDecoder()
    for i, f in enumerate(HOSTILE + NOT_UTF8):
        for ch, inst in (("_malformed", "_none"), ("books", "HOSTILE-X"), ("trades", "BTC-USDT"),
                         ("_event", "_none")):
            events = d.decode(RawFrame(i, 10**18 + i, 0, ch, inst, f))
            # a notice, or a book that the frame leaves invalid
            whats = {getattr(e, "what", e.kind) for e in events if not getattr(e, "valid", False)}
            assert ch == "_event" or whats & {"malformed", "rejected", "no_snapshot", "book"}, (
                ch, f[:100], events)


def test_a_stored_bad_book_frame_invalidates_the_book_in_replay_as_in_verify(tmp_path, wire):
    from simlab.feed import FrameDecoder

    feed = wire.BookFeed("X")
    snap = feed.snapshot([wire.lv("1", "1")], [wire.lv("2", "1")])
    bad = feed.update([wire.lv("1", "2")], []).replace(b'["1","2"', b'["one","2"')
    frames = [snap, bad]
    out = tmp_path / "r"
    with RecordingWriter(out, {"importer": "test"}) as w:
        for i, f in enumerate(frames):
            w.add(f, 10**18 + i)
    assert verify(out).channels["books"]["instruments"]["X"]["rejected"] == 1
    d = FrameDecoder()
    events = [e for f in Recording(out).iter_raw() for e in d.decode(f)]
    assert [getattr(e, "what", e.kind) for e in events] == ["book", "rejected", "book"]
    assert events[0].valid and not events[-1].valid


def test_a_frame_the_live_client_fails_on_is_stored_as_malformed(emulator_factory, tmp_path,
                                                                 monkeypatch):
    """A bug in the client's handling of a frame (here: every trades push) must not lose
    the frame: it is passed on as malformed, counted, and the recording goes on."""
    from simlab.okx.handler import FeedHandler
    from simlab.okx.normalize import STORED_MALFORMED
    from simlab.record import Recorder

    def broken(self, c, msg, payload, recv_ns):
        raise RuntimeError("injected bug in trade handling")

    monkeypatch.setattr(FeedHandler, "_on_trades", broken)
    emu = emulator_factory(RandomMarket(seed=4, rate=300, instruments=["BTC-USDT"]), paused=True)
    out = tmp_path / "rec"
    info: dict = {}

    async def main_() -> Any:
        rec = Recorder(out, [("books", "BTC-USDT"), ("trades", "BTC-USDT")],
                       ws_url=emu.ws_url, rest_url=emu.rest_url, snapshot_timeout=0.5,
                       close_timeout=0.5)
        task = asyncio.create_task(rec.run())
        await rec.until(lambda: rec.client is not None
                        and rec.client.mode("books", "BTC-USDT") == "live", what="snapshot")
        for _ in range(5):
            await asyncio.to_thread(emu.emulator.advance, 400)
            await asyncio.sleep(0.05)
            await rec.idle(0.25)
        info["internal"] = rec.client.counts["internal_errors"]
        rec.stop("test done")
        return await task

    result = run(main_(), timeout=40)
    m = Recording(out).manifest
    assert m["complete"] and info["internal"] > 0
    assert m["malformed"]["reasons"] == {STORED_MALFORMED: info["internal"]}
    stored = list(Recording(out).iter_raw(channel="_malformed"))
    assert len(stored) == info["internal"] == result.malformed
    assert all(b'"channel":"trades"' in f.payload for f in stored)
    assert "trades" not in m["channels"] and m["channels"]["books"]["messages"] > 0


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("body", [
    '{"code":"0","data":[{"ts":' + _nested(900) + ',"asks":[],"bids":[]}]}',
    '{"code":"0","data":[{"ts":"1","asks":[' + _nested(900) + '],"bids":[]}]}',
    '{"code":' + _nested(900) + ',"msg":"x"}',
    '{"code":"1","msg":' + _nested(900) + '}',
    '{"code":{"a":1},"data":[]}',
])
def test_a_hostile_rest_book_is_a_parse_error_with_a_short_message(body):
    """The REST bootstrap's parser quotes values briefly, as the feed parser does: a deep
    value raised RecursionError while its message was being built."""
    from simlab.okx.messages import OkxParseError
    from simlab.okx.rest import parse_rest_book

    with pytest.raises(OkxParseError) as e:
        parse_rest_book(body.encode(), "books", "BTC-USDT")
    assert len(str(e.value)) < 400
