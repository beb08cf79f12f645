"""Execution-cost models: pure functions and small dataclasses, no I/O.

- :mod:`~simlab.models.slippage`: walk-the-book slippage (quote and bps);
- :mod:`~simlab.models.fees`: fee rates and amounts (the OKX tier table is in
  :mod:`simlab.okx.fees`);
- :mod:`~simlab.models.impact`: Almgren-Chriss (optimal schedule, cost, variance, frontier)
  and metaorder impact laws;
- :mod:`~simlab.models.volatility`: volatility estimators from mid prices;
- :mod:`~simlab.models.calibrate`: fitting sigma, eta, epsilon, gamma from data;
- :mod:`~simlab.models.maker_taker`: the maker/taker probability interface and its default.
"""

from .calibrate import Calibration, calibrate_eta, calibrate_gamma, calibrate_sigma
from .fees import FeeRates, expected_fee, fee_amount, notional
from .impact import (
    ACParams,
    cost_coefficients,
    expected_cost,
    expected_cost_closed,
    frontier,
    impact_fraction,
    sell_at_once,
    trade_list,
    trajectory,
    variance,
    variance_closed,
)
from .maker_taker import ConstantModel, MakerTakerModel, QueueShareModel, maker_probability
from .slippage import Slippage, slippage, walk_slippage
from .volatility import ewma_vol, parkinson_vol, realized_vol, returns

__all__ = [
    "ACParams", "Calibration", "ConstantModel", "FeeRates", "MakerTakerModel",
    "QueueShareModel", "Slippage", "calibrate_eta", "calibrate_gamma", "calibrate_sigma",
    "cost_coefficients", "ewma_vol", "expected_cost", "expected_cost_closed", "expected_fee",
    "fee_amount", "frontier", "impact_fraction", "maker_probability", "notional",
    "parkinson_vol", "realized_vol", "returns", "sell_at_once", "slippage", "trade_list",
    "trajectory", "variance", "variance_closed", "walk_slippage",
]
