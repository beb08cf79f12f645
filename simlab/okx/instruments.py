"""Contract terms of OKX instruments, from their ``/api/v5/public/instruments`` metadata.

Book sizes are in base currency for spot and in contracts for swaps and futures; a linear
contract is worth ``ctVal`` units of the base currency (BTC-USDT-SWAP: 0.01 BTC). Inverse
contracts (BTC-USD-SWAP: ``ctVal`` 100 USD) are not priced by simlab yet.

:data:`KNOWN_INSTRUMENTS` holds the metadata of the instruments simlab serves itself (the
emulator, synthetic feeds, tests): one table of OKX's facts about them.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from .rest import inst_type

#: Metadata of the instruments simlab's emulator and synthetic feeds serve, as OKX's
#: ``/api/v5/public/instruments`` lists them (strings; the fields simlab reads or serves).
#: Tick and lot sizes are from the 2022 REST capture (``cryptofeed/OKX.0``); BTC-USDT-SWAP
#: has the 0.01-contract lot OKX lists today (2022: 1) and, as on OKX, no baseCcy/quoteCcy.
#: Where a synthetic market's prices sit is the market's parameter, not a fact kept here.
KNOWN_INSTRUMENTS: dict[str, dict[str, str]] = {
    "BTC-USDT": {"instId": "BTC-USDT", "instType": "SPOT", "baseCcy": "BTC", "quoteCcy": "USDT",
                 "tickSz": "0.1", "lotSz": "0.00000001", "minSz": "0.00001"},
    "ETH-USDT": {"instId": "ETH-USDT", "instType": "SPOT", "baseCcy": "ETH", "quoteCcy": "USDT",
                 "tickSz": "0.01", "lotSz": "0.000001", "minSz": "0.001"},
    "BTC-USDT-SWAP": {"instId": "BTC-USDT-SWAP", "instType": "SWAP", "baseCcy": "",
                      "quoteCcy": "", "tickSz": "0.1", "lotSz": "0.01", "minSz": "0.01",
                      "ctVal": "0.01", "ctValCcy": "BTC", "settleCcy": "USDT",
                      "ctType": "linear", "uly": "BTC-USDT"},
}


def known_instrument(inst_id: str) -> dict[str, str]:
    """A copy of the :data:`KNOWN_INSTRUMENTS` metadata of ``inst_id``; ValueError naming
    the known ones otherwise.

    >>> known_instrument("BTC-USDT-SWAP")["ctVal"], contract_terms(
    ...     "BTC-USDT-SWAP", known_instrument("BTC-USDT-SWAP")).ct_val
    ('0.01', 0.01)
    """
    try:
        return dict(KNOWN_INSTRUMENTS[inst_id])
    except KeyError:
        raise ValueError(f"no metadata kept for instrument {inst_id!r}: simlab knows "
                         f"{sorted(KNOWN_INSTRUMENTS)}") from None


class ContractTerms(NamedTuple):
    """``ct_val``: base units per book size unit (1.0 for spot); ``inst_type``: SPOT, SWAP,
    FUTURES ...; ``tick_sz``: price tick (NaN when unknown)."""

    inst_id: str
    inst_type: str
    ct_val: float
    tick_sz: float


def contract_terms(inst_id: str, meta: dict[str, Any] | None) -> ContractTerms:
    """Terms of ``inst_id`` from its metadata (None: none known).

    >>> contract_terms("BTC-USDT", None)
    ContractTerms(inst_id='BTC-USDT', inst_type='SPOT', ct_val=1.0, tick_sz=nan)
    >>> contract_terms("BTC-USDT-SWAP", {"instType": "SWAP", "ctVal": "0.01", "ctType": "linear",
    ...                                  "tickSz": "0.1"}).ct_val
    0.01
    >>> contract_terms("BTC-USDT-SWAP", {})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: instrument BTC-USDT-SWAP: no ctVal in its metadata; a SWAP book counts ...
    """
    meta = meta or {}
    kind = str(meta.get("instType") or inst_type(inst_id))
    tick = _num(meta.get("tickSz"), inst_id, "tickSz")
    if kind == "SPOT" or kind == "MARGIN":
        return ContractTerms(inst_id, kind, 1.0, tick)
    if meta.get("ctType") == "inverse" or (not meta.get("ctType") and inst_id.split("-")[1:2]
                                           == ["USD"]):
        raise ValueError(f"instrument {inst_id}: inverse contracts (ctVal in quote currency) "
                         "are not supported yet; use a linear (USDT/USDC) instrument")
    ct = _num(meta.get("ctVal"), inst_id, "ctVal")
    if math.isnan(ct):
        raise ValueError(f"instrument {inst_id}: no ctVal in its metadata; a {kind} book counts "
                         "contracts, so the contract value is needed (pass ct_val=)")
    return ContractTerms(inst_id, kind, ct, tick)


def _num(v: Any, inst_id: str, what: str) -> float:
    if v in (None, ""):
        return math.nan
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"instrument {inst_id}: {what} must be a number, got {v!r}") from None
    if not (x > 0 and math.isfinite(x)):
        raise ValueError(f"instrument {inst_id}: {what} must be > 0, got {v!r}")
    return x
