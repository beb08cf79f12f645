"""Execution-cost models: pure functions and small dataclasses, no I/O.

- :mod:`~simlab.models.slippage`: walk-the-book slippage (quote and bps);
- :mod:`~simlab.models.fees`: fee rates and amounts (the OKX tier table is in
  :mod:`simlab.okx.fees`);
- :mod:`~simlab.models.impact`: Almgren-Chriss (optimal schedule, cost, variance, frontier)
  and metaorder impact laws;
- :mod:`~simlab.models.volatility`: volatility estimators from mid prices;
- :mod:`~simlab.models.calibrate`: fitting sigma, eta, epsilon, gamma from data;
- :mod:`~simlab.models.maker_taker`: the maker/taker probability interface and its default;
- :mod:`~simlab.models.fill_labels`, :mod:`~simlab.models.fill_features`: passive-fill labels
  from books and trades, and the features of a fill, for training and use alike;
- :mod:`~simlab.models.logistic`: the logistic maker/taker model fitted to labelled data,
  and the time-ordered train/test split;
- :mod:`~simlab.models.slippage_regression`: mean and quantile regression of slippage;
- :mod:`~simlab.models.metrics`: out-of-sample scores (log-loss, Brier, AUC, reliability,
  pinball loss, quantile coverage);
- :mod:`~simlab.models.persist`: fitted models saved and loaded as JSON;
- :mod:`~simlab.models.ranges`: what a trained model has seen (training ranges, the weak
  flag) and the warnings when it is used beyond it.
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
from .logistic import LogisticFillModel, TimeSplit, fit_time_split
from .maker_taker import (
    FILL_FEATURES,
    BookPath,
    ConstantModel,
    FeatureParams,
    FillFeatureState,
    MakerTakerModel,
    QueueShareModel,
    TradePath,
    label_fills,
    maker_probability,
)
from .metrics import (
    UndefinedMetricWarning,
    brier_score,
    classification_metrics,
    log_loss,
    pinball_loss,
    quantile_coverage,
    reliability_curve,
    roc_auc,
)
from .persist import ModelFileError, load_model, model_from_dict, model_to_dict, save_model
from .ranges import ModelRangeWarning, RangeCheck, WeakModelWarning, value_ranges
from .slippage import Slippage, slippage, walk_slippage
from .slippage_regression import SlippageRegression, quantile_name
from .volatility import ewma_vol, parkinson_vol, realized_vol, returns

__all__ = [
    "FILL_FEATURES",
    "ACParams",
    "BookPath",
    "Calibration",
    "ConstantModel",
    "FeatureParams",
    "FeeRates",
    "FillFeatureState",
    "LogisticFillModel",
    "MakerTakerModel",
    "ModelFileError",
    "ModelRangeWarning",
    "QueueShareModel",
    "RangeCheck",
    "Slippage",
    "SlippageRegression",
    "TimeSplit",
    "TradePath",
    "UndefinedMetricWarning",
    "WeakModelWarning",
    "brier_score",
    "calibrate_eta",
    "calibrate_gamma",
    "calibrate_sigma",
    "classification_metrics",
    "cost_coefficients",
    "ewma_vol",
    "expected_cost",
    "expected_cost_closed",
    "expected_fee",
    "fee_amount",
    "fit_time_split",
    "frontier",
    "impact_fraction",
    "label_fills",
    "load_model",
    "log_loss",
    "maker_probability",
    "model_from_dict",
    "model_to_dict",
    "notional",
    "parkinson_vol",
    "pinball_loss",
    "quantile_coverage",
    "quantile_name",
    "realized_vol",
    "reliability_curve",
    "returns",
    "roc_auc",
    "save_model",
    "sell_at_once",
    "slippage",
    "trade_list",
    "trajectory",
    "value_ranges",
    "variance",
    "variance_closed",
    "walk_slippage",
]
