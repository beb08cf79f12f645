"""A local OKX exchange for tests, demos and load: markets in simulated time, served over the
OKX v5 public WebSocket and REST protocols, with fault injection (see ``docs/emulator.md``).

- :mod:`.source`: the :class:`MarketSource` interface markets implement;
- :mod:`.publisher`: market events -> OKX channel messages (pure, deterministic);
- :mod:`.server`: :class:`Emulator`, the WebSocket + REST server;
- :mod:`.recorded`: :class:`RecordedFeed`, replay of a simlab recording;
- :mod:`.faults`: the fault catalogue; :mod:`.testing`: test markets and the pytest fixture;
- :mod:`.clock`: where the server reads the time (:class:`ManualClock` for tests);
- :mod:`.flow`: :class:`ImbalanceFlowBook`, market orders that follow the touch imbalance;
- :mod:`.offline`: :func:`write_synthetic_recording`, a synthetic recording in seconds.
"""

from typing import Any

from .clock import Clock, ManualClock, SystemClock
from .faults import Fault, FaultSpec, parse_fault
from .flow import ImbalanceFlowBook, imbalance_flow
from .market import CSTMarket
from .offline import write_synthetic_recording
from .publisher import CHANNELS, Publisher, Push
from .server import Emulator, default_market
from .source import Event, Instrument, LevelChange, MarketSource, Print


def __getattr__(name: str) -> Any:
    # RecordedFeed reads recordings (pyarrow): imported only when asked for.
    if name == "RecordedFeed":
        from .recorded import RecordedFeed

        return RecordedFeed
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "CHANNELS", "CSTMarket", "Clock", "Emulator", "Event", "Fault", "FaultSpec",
    "ImbalanceFlowBook", "Instrument", "LevelChange", "ManualClock", "MarketSource", "Print",
    "Publisher", "Push", "RecordedFeed", "SystemClock", "default_market", "imbalance_flow",
    "parse_fault", "write_synthetic_recording",
]
