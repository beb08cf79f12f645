"""simlab: crypto market-microstructure research on OKX's L2 feed.

The public API below is imported on first use (PEP 562), so that ``import simlab.store``
or the recorder process does not load pandas, scikit-learn and the cost models it never
uses (tens of MB of resident memory over a night's recording).

>>> import simlab
>>> simlab.OrderSpec("BTC-USDT", "buy", 100.0).side
'buy'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__
from .lazy import lazy_api

#: public name -> the module it lives in
_API = {
    "BookError": "simlab.book", "Fill": "simlab.book", "L2Book": "simlab.book",
    "TopLevels": "simlab.book", "LiveSource": "simlab.feed", "ReplaySource": "simlab.feed",
    "ACParams": "simlab.models", "FeeRates": "simlab.models", "BookMsg": "simlab.okx",
    "BookSync": "simlab.okx", "OkxParseError": "simlab.okx", "parse_frame": "simlab.okx",
    "CostPipeline": "simlab.sim", "OrderSpec": "simlab.sim", "price_recording": "simlab.sim",
}

__all__ = [
    "ACParams", "BookError", "BookMsg", "BookSync", "CostPipeline", "FeeRates", "Fill",
    "L2Book", "LiveSource", "OkxParseError", "OrderSpec", "ReplaySource", "TopLevels",
    "__version__", "parse_frame", "price_recording",
]

if TYPE_CHECKING:
    from .book import BookError, Fill, L2Book, TopLevels
    from .feed import LiveSource, ReplaySource
    from .models import ACParams, FeeRates
    from .okx import BookMsg, BookSync, OkxParseError, parse_frame
    from .sim import CostPipeline, OrderSpec, price_recording


__getattr__, __dir__ = lazy_api(__name__, _API)
