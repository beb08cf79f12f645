"""The per-tick cost pipeline: order spec, formulas, pipeline, calibration, reports."""

from .calibrate import calibrate_recording
from .order import Instrument, OrderSpec
from .pipeline import CostPipeline, CostResult
from .run import price_recording

__all__ = ["CostPipeline", "CostResult", "Instrument", "OrderSpec", "calibrate_recording",
           "price_recording"]
