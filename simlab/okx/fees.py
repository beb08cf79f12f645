"""OKX trading-fee rates: the built-in, dated tier table and the account's own rates.

The table is data, not code: ``simlab/okx/data/okx_fee_tiers.json`` holds OKX's published
rates as decimal strings with the date and source (see :func:`table_info`). It has OKX's
global spot ladder (Lv1, VIP1-VIP8) and only the regular-user (Lv1) rates for perpetual
swaps and expiry futures: no OKX-published derivatives VIP ladder was available to copy, so
asking for one raises :class:`FeeTierError` rather than guessing. Real accounts should use
their own rates, from ``GET /api/v5/account/trade-fee`` through :func:`parse_trade_fee`.

SIGN CONVENTION. Everything this module returns uses simlab's convention: a rate is a
fraction of notional, POSITIVE = A FEE THE TRADER PAYS, NEGATIVE = A REBATE. OKX's
``account/trade-fee`` endpoint uses the OPPOSITE sign (``"taker": "-0.001"`` means the
trader pays 0.1 %); :func:`parse_trade_fee` flips it. The built-in table is already stored
in simlab's convention.

Nothing here imports :mod:`simlab.models`: rates come out as :class:`OkxFeeRates`, a plain
``(maker, taker)`` pair that ``simlab.models.fees.FeeRates.of`` accepts.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import orjson

from .messages import OkxParseError

TRADE_FEE_PATH = "/api/v5/account/trade-fee"
_DERIVATIVES = ("SWAP", "FUTURES")
_TIER_RE = re.compile(r"^(LV|VIP)(\d+)$")


class OkxFeeRates(NamedTuple):
    """Maker and taker rates, fractions of notional; positive = fee paid, negative = rebate.

    >>> OkxFeeRates(maker=0.0008, taker=0.001).taker * 25_000    # Lv1 spot taker on 25k USDT
    25.0
    """

    maker: float
    taker: float


class FeeTierError(ValueError):
    """An instrument type or fee tier the built-in table does not have.

    >>> try:
    ...     fee_rates("VIP2", "SWAP")
    ... except FeeTierError as e:
    ...     print(str(e)[:60])
    the built-in OKX fee table (as of 2025) has no tier 'VIP2' f
    """


# -- the built-in table -----------------------------------------------------------------------
def _decimal(s: Any, what: str) -> Decimal:
    try:
        d = Decimal(s) if isinstance(s, str) else None
    except InvalidOperation:
        d = None
    if d is None or not d.is_finite():
        raise ValueError(f"{what} must be a decimal string, got {s!r}")
    return d


@functools.cache
def _table() -> dict[str, Any]:
    ref = importlib.resources.files("simlab.okx") / "data" / "okx_fee_tiers.json"
    doc = json.loads(ref.read_text(encoding="utf-8"))
    tiers: dict[str, dict[str, OkxFeeRates]] = {}
    for inst_type, ladder in doc["tiers"].items():
        tiers[inst_type] = {
            name: OkxFeeRates(
                float(_decimal(r["maker"], f"okx_fee_tiers.json {inst_type} {name} maker")),
                float(_decimal(r["taker"], f"okx_fee_tiers.json {inst_type} {name} taker")))
            for name, r in ladder.items()}
    return {"as_of": doc["as_of"], "source": doc["source"], "notes": doc.get("notes", ""),
            "tiers": tiers}


def _inst_type(inst_type: str) -> str:
    tiers = _table()["tiers"]
    key = inst_type.upper() if isinstance(inst_type, str) else inst_type
    if key not in tiers:
        raise FeeTierError(f"inst_type must be one of {sorted(tiers)}, got {inst_type!r}")
    return key


def table_info() -> dict[str, str]:
    """Date, source and notes of the built-in table.

    >>> sorted(table_info())
    ['as_of', 'notes', 'source']
    >>> table_info()["as_of"]
    '2025'
    """
    t = _table()
    return {"as_of": t["as_of"], "source": t["source"], "notes": t["notes"]}


def fee_tiers(inst_type: str = "SPOT") -> dict[str, OkxFeeRates]:
    """Every tier the built-in table has for ``inst_type`` (``"SPOT"``, ``"SWAP"``,
    ``"FUTURES"``; any case), in order.

    >>> list(fee_tiers("SPOT"))[:3], fee_tiers("swap")
    (['Lv1', 'VIP1', 'VIP2'], {'Lv1': OkxFeeRates(maker=0.0002, taker=0.0005)})
    """
    return dict(_table()["tiers"][_inst_type(inst_type)])


def fee_rates(tier: str, inst_type: str = "SPOT") -> OkxFeeRates:
    """Rates of one tier; names are case-insensitive (``"VIP1"``, ``"vip 1"``, ``"Lv1"``,
    ``"LV1"``).

    Derivatives VIP tiers are not in the built-in table (no OKX-published ladder could be
    cited, see :func:`table_info`): asking for one raises :class:`FeeTierError` telling
    you to give the rates with ``--maker-fee``/``--taker-fee`` (or ``maker_fee``/
    ``taker_fee`` in a sweep grid) instead.

    >>> fee_rates("vip1")
    OkxFeeRates(maker=0.00045, taker=0.0005)
    >>> fee_rates("Lv1", "SWAP")
    OkxFeeRates(maker=0.0002, taker=0.0005)
    >>> fee_rates("VIP6").maker   # a rebate
    -2e-05
    """
    it = _inst_type(inst_type)
    ladder = _table()["tiers"][it]
    norm = re.sub(r"[\s_\-]", "", tier).upper() if isinstance(tier, str) else ""
    norm = "LV" + norm[3:] if norm.startswith("LVL") else norm
    for name, rates in ladder.items():
        if name.upper() == norm:
            return rates
    known = ", ".join(ladder)
    if not _TIER_RE.match(norm):
        raise FeeTierError(f"fee tier must be a name like 'Lv1' or 'VIP3' (known for {it}: "
                           f"{known}), got {tier!r}")
    only = (f"it has only {known} for {it}: no OKX-published derivatives VIP ladder was "
            "found to cite" if it in _DERIVATIVES else f"known tiers for {it}: {known}")
    raise FeeTierError(
        f"the built-in OKX fee table (as of {_table()['as_of']}) has no tier {tier!r} for "
        f"{it} ({only}); give the tier's rates yourself: --maker-fee and --taker-fee "
        "(simlab replay), maker_fee and taker_fee (a sweep grid) or "
        "simlab.models.fees.FeeRates(maker=..., taker=...), e.g. the account's own rates "
        f"from GET {TRADE_FEE_PATH} (simlab.okx.fees.parse_trade_fee)")


# -- the account's rates: GET /api/v5/account/trade-fee ----------------------------------------
@dataclass(frozen=True, slots=True)
class TradeFee:
    """One row of a ``GET /api/v5/account/trade-fee`` response, in SIMLAB'S SIGN CONVENTION
    (positive = fee paid, negative = rebate; OKX's own fields have the opposite sign).

    ``maker_taker``, ``maker_taker_u`` and ``maker_taker_usdc`` are OKX's ``maker``/``taker``,
    ``makerU``/``takerU`` and ``makerUSDC``/``takerUSDC`` pairs (None when OKX left them
    empty). For spot, ``maker``/``taker`` are the USDT and crypto pairs' rates and
    ``makerUSDC``/``takerUSDC`` the USDC pairs'; for swaps and futures, ``maker``/``taker``
    are crypto-margined (inverse) contracts, ``makerU``/``takerU`` USDT-margined (linear)
    ones and ``makerUSDC``/``takerUSDC`` USDC-margined ones. ``rates`` is the headline pair:
    ``makerU``/``takerU`` for swaps and futures when present, else ``maker``/``taker``.
    ``groups`` holds the per-``groupId`` rates of OKX's fee groups (``feeGroup``, since
    November 2025), empty when the response has none. ``ts`` is OKX's time in ms.

    >>> f = parse_trade_fee({"code": "0", "msg": "", "data": [{"instType": "SWAP",
    ...     "level": "Lv1", "maker": "-0.0002", "taker": "-0.0005", "makerU": "-0.0002",
    ...     "takerU": "-0.0005", "ts": "1"}]})["SWAP"]
    >>> f.rates, f.level
    (OkxFeeRates(maker=0.0002, taker=0.0005), 'Lv1')
    """

    inst_type: str
    level: str
    rates: OkxFeeRates | None
    maker_taker: OkxFeeRates | None
    maker_taker_u: OkxFeeRates | None
    maker_taker_usdc: OkxFeeRates | None
    groups: dict[str, OkxFeeRates] = field(default_factory=dict)
    ts: int | None = None

    def rates_for(self, group_id: str | None = None) -> OkxFeeRates:
        """The rates for an instrument of fee group ``group_id`` (from the instrument's
        metadata), or the headline rates when ``group_id`` is None. With no headline rates
        and a single fee group, that group's rates.

        >>> fees = parse_trade_fee({"code": "0", "msg": "", "data": [{"instType": "SPOT",
        ...     "level": "Lv1", "maker": "", "taker": "", "feeGroup": [
        ...     {"groupId": "1", "maker": "-0.0008", "taker": "-0.001"},
        ...     {"groupId": "2", "maker": "-0.0004", "taker": "-0.0005"}]}]})
        >>> fees["SPOT"].rates_for("2")
        OkxFeeRates(maker=0.0004, taker=0.0005)
        """
        if group_id is not None:
            try:
                return self.groups[str(group_id)]
            except KeyError:
                raise FeeTierError(
                    f"no fee group {group_id!r} in the {self.inst_type} trade-fee response; "
                    f"groups: {sorted(self.groups) or 'none'}") from None
        if self.rates is not None:
            return self.rates
        if len(self.groups) == 1:
            return next(iter(self.groups.values()))
        raise FeeTierError(f"the {self.inst_type} trade-fee response has no headline rates, "
                           f"only fee groups {sorted(self.groups)}: pass group_id")


def _okx_rate(row: dict, key: str, what: str, raw: Any) -> float | None:
    """OKX's rate string under ``key`` converted to simlab's sign; None when empty/absent."""
    v = row.get(key)
    if v is None or v == "":
        return None
    if isinstance(v, int | float) and not isinstance(v, bool):
        v = repr(v)
    try:
        d = _decimal(v, f"{what} {key!r}")
    except ValueError as e:
        raise OkxParseError(f"trade-fee: {e}", raw) from None
    return 0.0 - float(d)  # OKX: negative = paid; simlab: positive = paid (0.0 - x: no -0.0)


def _pair(row: dict, mk: str, tk: str, what: str, raw: Any) -> OkxFeeRates | None:
    m, t = _okx_rate(row, mk, what, raw), _okx_rate(row, tk, what, raw)
    if (m is None) != (t is None):
        has, missing = (mk, tk) if t is None else (tk, mk)
        raise OkxParseError(f"trade-fee: {what} has {has!r} but no {missing!r}", raw)
    return None if m is None else OkxFeeRates(m, t)


def _row(row: Any, raw: Any) -> TradeFee:
    if not isinstance(row, dict):
        raise OkxParseError("trade-fee: each 'data' row must be an object", raw)
    for key in ("instType", "level"):
        if not isinstance(row.get(key), str) or not row[key]:
            raise OkxParseError(f"trade-fee: row without {key!r}", raw)
    it = row["instType"]
    what = f"{it} row"
    mt = _pair(row, "maker", "taker", what, raw)
    mtu = _pair(row, "makerU", "takerU", what, raw)
    mtc = _pair(row, "makerUSDC", "takerUSDC", what, raw)
    groups: dict[str, OkxFeeRates] = {}
    fg = row.get("feeGroup")
    if fg not in (None, ""):
        if not isinstance(fg, list):
            raise OkxParseError(f"trade-fee: {what} 'feeGroup' must be a list", raw)
        for g in fg:
            gid = g.get("groupId") if isinstance(g, dict) else None
            if gid in (None, ""):
                raise OkxParseError(f"trade-fee: {what} feeGroup entry without 'groupId'", raw)
            p = _pair(g, "maker", "taker", f"{what} feeGroup {gid}", raw)
            if p is None:
                raise OkxParseError(f"trade-fee: {what} feeGroup {gid} without 'maker' and "
                                    "'taker'", raw)
            groups[str(gid)] = p
    headline = (mtu or mt) if it.upper() in _DERIVATIVES else mt
    if headline is None and mtc is None and not groups:
        raise OkxParseError(f"trade-fee: {what} has no rates (expected 'maker'/'taker', "
                            "'makerU'/'takerU', 'makerUSDC'/'takerUSDC' or 'feeGroup')", raw)
    ts = row.get("ts")
    try:
        ts = None if ts in (None, "") else int(ts)
    except (TypeError, ValueError):
        raise OkxParseError(f"trade-fee: {what} 'ts' must be an integer, got {ts!r}",
                            raw) from None
    return TradeFee(it, row["level"], headline, mt, mtu, mtc, groups, ts)


def parse_trade_fee(response: bytes | str | dict) -> dict[str, TradeFee]:
    """The rates in a ``GET /api/v5/account/trade-fee`` response (body or decoded JSON), by
    ``instType``, CONVERTED TO SIMLAB'S SIGN: OKX's ``"-0.001"`` (paid) becomes ``0.001``.

    Raises :class:`~simlab.okx.messages.OkxParseError` for an OKX error (``code`` != "0",
    with code and message), invalid JSON, or a row without ``instType``, ``level`` or rates.

    >>> body = ('{"code":"0","msg":"","data":[{"category":"1","delivery":"","exercise":"",'
    ...         '"instType":"SPOT","level":"Lv1","maker":"-0.0008","taker":"-0.001",'
    ...         '"makerU":"","takerU":"","makerUSDC":"","takerUSDC":"","ts":"1700000000000"}]}')
    >>> parse_trade_fee(body)["SPOT"].rates
    OkxFeeRates(maker=0.0008, taker=0.001)
    >>> parse_trade_fee('{"code":"50113","msg":"Invalid Sign","data":[]}')
    Traceback (most recent call last):
    simlab.okx.messages.OkxParseError: trade-fee: OKX error code 50113: Invalid Sign: ...
    """
    if isinstance(response, dict):
        d, raw = response, None
    elif isinstance(response, bytes | bytearray | memoryview | str):
        raw = response.encode() if isinstance(response, str) else bytes(response)
        try:
            d = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise OkxParseError(f"trade-fee: invalid JSON ({e.msg} at char {e.pos})",
                                raw) from None
        if not isinstance(d, dict):
            raise OkxParseError("trade-fee: expected a JSON object", raw)
    else:
        raise TypeError(f"response must be bytes, str or a dict, got {type(response).__name__}")
    if "code" not in d:
        raise OkxParseError("trade-fee: response without 'code'", raw)
    if str(d["code"]) != "0":
        raise OkxParseError(f"trade-fee: OKX error code {d['code']}: {d.get('msg', '')}", raw)
    data = d.get("data")
    if not isinstance(data, list) or not data:
        raise OkxParseError("trade-fee: 'data' must be a non-empty list of rows", raw)
    out: dict[str, TradeFee] = {}
    for row in data:
        tf = _row(row, raw)
        if tf.inst_type in out:
            raise OkxParseError(f"trade-fee: two rows for instType {tf.inst_type!r}", raw)
        out[tf.inst_type] = tf
    return out


__all__ = ["TRADE_FEE_PATH", "FeeTierError", "OkxFeeRates", "TradeFee", "fee_rates",
           "fee_tiers", "parse_trade_fee", "table_info"]
