"""Dashboards for notebooks: the trade simulator and the Almgren-Chriss explorer.

>>> from simlab.widgets import ImpactExplorer, TradeSimulator
>>> sorted(n for n in __all__)
['ImpactExplorer', 'Pacer', 'TradeSimulator']

Import them from here (``simlab`` itself does not import ipywidgets).
"""

from .explorer import ImpactExplorer
from .simulator import Pacer, TradeSimulator

__all__ = ["ImpactExplorer", "Pacer", "TradeSimulator"]
