"""The per-tick cost pipeline: order spec, formulas, pipeline, calibration, reports, and
training models on recordings (labelled datasets, ``train_maker_taker``, ``train_slippage``)."""

from .calibrate import calibrate_recording
from .config import ConfigError, RunConfig
from .fill_dataset import fill_dataset
from .order import Instrument, OrderSpec
from .pipeline import CostPipeline, CostResult
from .run import price_recording
from .train import TrainResult, slippage_dataset, train_maker_taker, train_slippage

__all__ = ["ConfigError", "CostPipeline", "CostResult", "Instrument", "OrderSpec", "RunConfig",
           "TrainResult",
           "calibrate_recording", "fill_dataset", "price_recording", "slippage_dataset",
           "train_maker_taker", "train_slippage"]
