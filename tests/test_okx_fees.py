"""simlab.okx.fees: the dated tier table against the published numbers, tier lookup, and the
account trade-fee response (OKX's sign convention flipped to simlab's)."""

from __future__ import annotations

import ast
import importlib.resources
import json
import math
from decimal import Decimal

import pytest

from simlab.okx import OkxParseError
from simlab.okx.fees import (
    FeeTierError,
    OkxFeeRates,
    fee_rates,
    fee_tiers,
    parse_trade_fee,
    table_info,
)

# OKX's global spot ladder as printed in docs/okx-v5-public-feed.md ("Fees"), in percent.
DOC_SPOT_PERCENT = {
    "Lv1": ("0.080", "0.100"),
    "VIP1": ("0.045", "0.050"),
    "VIP2": ("0.040", "0.045"),
    "VIP3": ("0.030", "0.040"),
    "VIP4": ("0.020", "0.035"),
    "VIP5": ("0.000", "0.030"),
    "VIP6": ("-0.002", "0.025"),
    "VIP7": ("-0.005", "0.020"),
    "VIP8": ("-0.005", "0.015"),
}


def pct(s: str) -> float:
    return float(Decimal(s) / 100)


def raw_table() -> dict:
    ref = importlib.resources.files("simlab.okx") / "data" / "okx_fee_tiers.json"
    return json.loads(ref.read_text(encoding="utf-8"))


# -- the table ------------------------------------------------------------------------------
def test_spot_table_is_the_published_ladder():
    tiers = fee_tiers("SPOT")
    assert list(tiers) == list(DOC_SPOT_PERCENT)
    for name, (maker, taker) in DOC_SPOT_PERCENT.items():
        assert tiers[name] == OkxFeeRates(pct(maker), pct(taker)), name


def test_json_rates_are_decimal_fraction_strings():
    doc = raw_table()
    assert doc["as_of"].startswith("20") and "okx.com/fees" in doc["source"]
    assert set(doc["tiers"]) == {"SPOT", "SWAP", "FUTURES"}
    for inst_type, ladder in doc["tiers"].items():
        for name, r in ladder.items():
            for k in ("maker", "taker"):
                assert isinstance(r[k], str), (inst_type, name, k)
                assert abs(Decimal(r[k])) < Decimal("0.01"), (inst_type, name, k)
    # the doc's percent figures, written as fractions, exactly
    assert doc["tiers"]["SPOT"]["VIP1"] == {"maker": "0.00045", "taker": "0.0005"}
    assert Decimal(doc["tiers"]["SPOT"]["VIP6"]["maker"]) == Decimal("-0.002") / 100


def test_derivatives_have_only_lv1():
    for it in ("SWAP", "FUTURES", "swap", "Futures"):
        assert fee_tiers(it) == {"Lv1": OkxFeeRates(0.0002, 0.0005)}
    assert fee_rates("Lv1", "SWAP") == OkxFeeRates(maker=pct("0.020"), taker=pct("0.050"))


def test_table_info():
    info = table_info()
    assert set(info) == {"as_of", "source", "notes"}
    assert info["as_of"] == raw_table()["as_of"]
    assert "trade-fee" in info["notes"]


@pytest.mark.parametrize("name", ["VIP1", "vip1", "Vip1", "VIP 1", "vip_1", " VIP1 "])
def test_tier_names_case_insensitive_vip(name):
    assert fee_rates(name) == OkxFeeRates(0.00045, 0.0005)


@pytest.mark.parametrize("name", ["Lv1", "LV1", "lv1", "Lvl 1", "LV 1"])
def test_tier_names_case_insensitive_lv(name):
    assert fee_rates(name) == OkxFeeRates(0.0008, 0.001)


def test_vip6_maker_is_a_rebate():
    r = fee_rates("VIP6")
    assert r.maker == -0.00002 and r.taker == 0.00025


def test_unknown_tier_lists_known_ones():
    with pytest.raises(FeeTierError, match=r"Lv1, VIP1, .*VIP8.*'gold'"):
        fee_rates("gold")
    with pytest.raises(FeeTierError, match=r"no tier 'VIP9' for SPOT.*Lv1, VIP1"):
        fee_rates("VIP9")
    with pytest.raises(FeeTierError):
        fee_rates(1)  # type: ignore[arg-type]


@pytest.mark.parametrize("inst_type", ["SWAP", "FUTURES"])
def test_derivatives_vip_says_pass_account_rates(inst_type):
    with pytest.raises(FeeTierError) as e:
        fee_rates("VIP3", inst_type)
    msg = str(e.value)
    assert inst_type in msg and "'VIP3'" in msg and "derivatives VIP ladder" in msg
    assert "/api/v5/account/trade-fee" in msg and "FeeRates" in msg
    # it says how to give the rate where the user is: the CLI flags and the grid keys
    assert "--maker-fee" in msg and "--taker-fee" in msg
    assert "maker_fee" in msg and "taker_fee" in msg


def test_table_says_where_derivatives_vip_rates_were_looked_for():
    """The derivatives VIP ladder stays out until OKX's own figures can be cited: the
    table's source records the search (date, pages) rather than third-party numbers."""
    info = table_info()
    assert "2026-12-02" in info["source"] and "https://www.okx.com/fees" in info["source"]
    assert list(fee_tiers("SWAP")) == ["Lv1"] and list(fee_tiers("FUTURES")) == ["Lv1"]


def test_unknown_inst_type():
    with pytest.raises(FeeTierError, match=r"\['FUTURES', 'SPOT', 'SWAP'\], got 'OPTION'"):
        fee_tiers("OPTION")
    with pytest.raises(FeeTierError, match="OPTION"):
        fee_rates("Lv1", "OPTION")


def test_fee_tiers_returns_a_copy():
    t = fee_tiers("SPOT")
    t.clear()
    assert len(fee_tiers("SPOT")) == 9


# -- GET /api/v5/account/trade-fee -----------------------------------------------------------
SPOT_BODY = (b'{"code":"0","msg":"","data":[{"category":"1","delivery":"","exercise":"",'
             b'"instType":"SPOT","level":"Lv1","maker":"-0.0008","taker":"-0.001",'
             b'"makerU":"","takerU":"","makerUSDC":"","takerUSDC":"","ts":"1763000000000"}]}')


def swap_response(**over) -> dict:
    row = {"category": "1", "delivery": "", "exercise": "", "instType": "SWAP", "level": "Lv1",
           "maker": "-0.0003", "taker": "-0.0006", "makerU": "-0.0002", "takerU": "-0.0005",
           "makerUSDC": "-0.00018", "takerUSDC": "-0.00045", "ts": "1763000000000"}
    row.update(over)
    return {"code": "0", "msg": "", "data": [row]}


@pytest.mark.parametrize("body", [SPOT_BODY, SPOT_BODY.decode(), json.loads(SPOT_BODY),
                                  bytearray(SPOT_BODY)])
def test_spot_response_sign_flipped(body):
    fees = parse_trade_fee(body)
    assert list(fees) == ["SPOT"]
    f = fees["SPOT"]
    # OKX "-0.001" means the user pays 0.1 %: simlab's +0.001
    assert f.rates == OkxFeeRates(maker=0.0008, taker=0.001)
    assert f.maker_taker == f.rates
    assert f.maker_taker_u is None and f.maker_taker_usdc is None
    assert (f.inst_type, f.level, f.ts, f.groups) == ("SPOT", "Lv1", 1763000000000, {})
    assert f.rates_for() == f.rates


def test_swap_uses_usdt_margined_rates():
    f = parse_trade_fee(swap_response())["SWAP"]
    assert f.rates == OkxFeeRates(0.0002, 0.0005)          # makerU / takerU (linear)
    assert f.maker_taker == OkxFeeRates(0.0003, 0.0006)    # crypto-margined
    assert f.maker_taker_usdc == OkxFeeRates(0.00018, 0.00045)


def test_swap_without_u_rates_falls_back_to_maker_taker():
    f = parse_trade_fee(swap_response(makerU="", takerU=""))["SWAP"]
    assert f.rates == OkxFeeRates(0.0003, 0.0006) and f.maker_taker_u is None


def test_rebate_and_zero_signs():
    f = parse_trade_fee(swap_response(makerU="0.00005", takerU="0", maker="-0"))["SWAP"]
    assert f.rates.maker == -0.00005                       # OKX positive = rebate
    assert f.rates.taker == 0.0 and math.copysign(1, f.rates.taker) == 1.0
    assert math.copysign(1, f.maker_taker.maker) == 1.0


def test_fee_groups():
    resp = {"code": "0", "msg": "", "data": [{
        "instType": "SPOT", "level": "VIP1", "maker": "", "taker": "", "ts": "1",
        "feeGroup": [{"groupId": "1", "maker": "-0.00045", "taker": "-0.0005"},
                     {"groupId": "2", "maker": "-0.0009", "taker": "-0.0012"}]}]}
    f = parse_trade_fee(resp)["SPOT"]
    assert f.rates is None
    assert f.groups == {"1": OkxFeeRates(0.00045, 0.0005), "2": OkxFeeRates(0.0009, 0.0012)}
    assert f.rates_for("2") == OkxFeeRates(0.0009, 0.0012)
    assert f.rates_for(1) == OkxFeeRates(0.00045, 0.0005)
    with pytest.raises(FeeTierError, match="pass group_id"):
        f.rates_for()
    with pytest.raises(FeeTierError, match=r"no fee group '7'.*\['1', '2'\]"):
        f.rates_for("7")


def test_single_fee_group_is_the_default():
    resp = {"code": "0", "msg": "", "data": [{
        "instType": "SWAP", "level": "Lv1",
        "feeGroup": [{"groupId": "3", "maker": "-0.0002", "taker": "-0.0005"}]}]}
    f = parse_trade_fee(resp)["SWAP"]
    assert f.rates_for() == OkxFeeRates(0.0002, 0.0005) and f.ts is None


def test_headline_and_groups_together():
    resp = swap_response(feeGroup=[{"groupId": "1", "maker": "-0.0001", "taker": "-0.0004"}])
    f = parse_trade_fee(resp)["SWAP"]
    assert f.rates_for() == OkxFeeRates(0.0002, 0.0005)
    assert f.rates_for("1") == OkxFeeRates(0.0001, 0.0004)


def test_error_code_names_code_and_msg():
    with pytest.raises(OkxParseError, match="code 50113: Invalid Sign"):
        parse_trade_fee(b'{"code":"50113","msg":"Invalid Sign","data":[]}')
    with pytest.raises(OkxParseError, match="code 51000"):
        parse_trade_fee({"code": 51000, "msg": "Parameter instType error", "data": []})


@pytest.mark.parametrize(("resp", "match"), [
    (b"not json", "invalid JSON"),
    (b"[1, 2]", "expected a JSON object"),
    ({"msg": "", "data": []}, "without 'code'"),
    ({"code": "0", "msg": "", "data": []}, "non-empty list"),
    ({"code": "0", "msg": ""}, "non-empty list"),
    ({"code": "0", "data": ["x"]}, "must be an object"),
    ({"code": "0", "data": [{"level": "Lv1", "maker": "-1e-3", "taker": "-1e-3"}]},
     "without 'instType'"),
    ({"code": "0", "data": [{"instType": "SPOT", "maker": "-1e-3", "taker": "-1e-3"}]},
     "without 'level'"),
    ({"code": "0", "data": [{"instType": "SPOT", "level": "Lv1", "maker": "-0.0008"}]},
     "has 'maker' but no 'taker'"),
    ({"code": "0", "data": [{"instType": "SPOT", "level": "Lv1", "taker": "-0.001"}]},
     "has 'taker' but no 'maker'"),
    ({"code": "0", "data": [{"instType": "SPOT", "level": "Lv1"}]}, "has no rates"),
    ({"code": "0", "data": [{"instType": "SPOT", "level": "Lv1", "maker": "abc",
                             "taker": "-0.001"}]}, "'maker' must be a decimal string"),
    ({"code": "0", "data": [{"instType": "SPOT", "level": "Lv1", "maker": "NaN",
                             "taker": "-0.001"}]}, "decimal string"),
    ({"code": "0", "data": [{"instType": "SPOT", "level": "Lv1", "feeGroup": [
        {"maker": "-0.001", "taker": "-0.001"}]}]}, "without 'groupId'"),
    ({"code": "0", "data": [{"instType": "SPOT", "level": "Lv1", "feeGroup": [
        {"groupId": "1"}]}]}, "feeGroup 1 without 'maker'"),
    ({"code": "0", "data": [{"instType": "SPOT", "level": "Lv1", "feeGroup": "1"}]},
     "must be a list"),
    ({"code": "0", "data": [{"instType": "SPOT", "level": "Lv1", "maker": "-0.001",
                             "taker": "-0.001", "ts": "soon"}]}, "'ts' must be an integer"),
    ({"code": "0", "data": [json.loads(SPOT_BODY)["data"][0]] * 2}, "two rows"),
])
def test_bad_responses(resp, match):
    with pytest.raises(OkxParseError, match=match):
        parse_trade_fee(resp)


def test_bad_response_type():
    with pytest.raises(TypeError, match="bytes, str or a dict"):
        parse_trade_fee(42)  # type: ignore[arg-type]


def test_okx_does_not_import_models():
    """okx/ is the lowest layer: the fee module must not import simlab.models."""
    src = importlib.resources.files("simlab.okx").joinpath("fees.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(("." * node.level) + (node.module or ""))
    assert ".messages" in imported
    assert not [m for m in imported if "models" in m]
