"""simlab: crypto market-microstructure research on OKX's L2 feed."""

from ._version import __version__
from .book import BookError, Fill, L2Book, TopLevels
from .feed import LiveSource, ReplaySource
from .models import ACParams, FeeRates
from .okx import BookMsg, BookSync, OkxParseError, parse_frame
from .sim import CostPipeline, OrderSpec, price_recording

__all__ = [
    "ACParams", "BookError", "BookMsg", "BookSync", "CostPipeline", "FeeRates", "Fill",
    "L2Book", "LiveSource", "OkxParseError", "OrderSpec", "ReplaySource", "TopLevels",
    "__version__", "parse_frame", "price_recording",
]
