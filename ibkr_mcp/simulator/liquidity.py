"""Size-aware liquidity: each quoted second offers its touch size once, shared by all orders."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ibkr_mcp.simulator.catalogue import Instrument
    from ibkr_mcp.simulator.market import Tick

ZERO = Decimal(0)


class Liquidity:
    """What is left at the touch in the current second, per instrument and side.

    Quotes change at most once a second; the displayed size at the best bid/ask is what an
    order can take in that second. An order larger than that fills over several seconds as
    the book refreshes (a liquid stock shows hundreds to thousands of shares each second), and
    orders of every client share the same displayed size. Deterministic: a pure function of
    the quotes and the order of requests.
    """

    def __init__(self) -> None:
        self._used: dict[tuple[int, bool], tuple[int, Decimal]] = {}

    def available(self, inst: Instrument, buy: bool, tick: Tick) -> Decimal:
        """Size still available to a buyer (at the ask) or a seller (at the bid)."""
        size = tick.ask_size if buy else tick.bid_size
        used = self._used.get((inst.con_id, buy))
        if used is not None and used[0] == _second(tick):
            size -= used[1]
        return max(ZERO, size)

    def take(self, inst: Instrument, buy: bool, tick: Tick, qty: Decimal) -> None:
        """Record that ``qty`` was taken at the touch in the tick's second."""
        key = (inst.con_id, buy)
        second = _second(tick)
        used = self._used.get(key)
        before = used[1] if used is not None and used[0] == second else ZERO
        self._used[key] = (second, before + qty)


def _second(tick: Tick) -> int:
    return math.floor(tick.time.timestamp())
