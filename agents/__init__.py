"""Mesa agents: trader behaviour acting on the exchange through its order API.

Types: :class:`PassiveTrader`, :class:`Entrant`, :class:`Whale`, :class:`Flipper`,
:class:`SybilOwner`, plus the :class:`MarketMaker` and the backstop's :class:`BackstopLP`.
"""

from agents.base import ENTRANT, FLIPPER, PASSIVE, SYBIL, TYPE_NAMES, WHALE, Members, Trader
from agents.flipper import Flipper
from agents.maker import BackstopLP, MarketMaker
from agents.passive import Entrant, PassiveTrader
from agents.sybil import SybilOwner, sybil_split
from agents.whale import Whale

__all__ = [
    "ENTRANT",
    "FLIPPER",
    "PASSIVE",
    "SYBIL",
    "TYPE_NAMES",
    "WHALE",
    "BackstopLP",
    "Entrant",
    "Flipper",
    "MarketMaker",
    "Members",
    "PassiveTrader",
    "SybilOwner",
    "Trader",
    "Whale",
    "sybil_split",
]
