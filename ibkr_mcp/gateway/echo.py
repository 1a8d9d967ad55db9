"""IB's openOrder echo kept whole: a known order is refreshed with every field IB reports.

ib_async's ``Wrapper.openOrder`` copies only a few fields of the echo onto an order it already
knows (quantity, prices, type, ref, perm id) and drops the rest. A modification changing
``tif``, ``outsideRth`` or ``goodTillDate`` then never showed up in ``trade.order``: the answer
reported the old values, and the next modification, built from ``trade.order``, silently sent
them back to IB. IB's openOrder carries the full order as the broker holds it, so the order we
report and modify from is that echo.

ib_async itself stays unmodified: ``BrokerIB`` is an ``IB`` whose client talks to an
``EchoWrapper`` (a ``Wrapper`` subclass) instead of the plain one.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from ib_async import IB, Client, Contract, Event, Trade
from ib_async.order import Order, OrderState
from ib_async.wrapper import Wrapper

#: ``Order`` fields IB's openOrder message does not carry (ib_async's decoder never sets
#: them): they stay as this client sent them. ``tests/gateway/test_gateway_modify_echo.py`` checks
#: this list against the installed decoder, so an ib_async upgrade cannot silently widen it.
NOT_ECHOED: Final[frozenset[str]] = frozenset({
    "activeStartTime", "activeStopTime", "transmit", "overridePercentageConstraints",
    "scaleTable", "algoId", "orderMiscOptions", "extOperator", "mifid2DecisionMaker",
    "mifid2DecisionAlgo", "mifid2ExecutionTrader", "mifid2ExecutionAlgo", "autoCancelDate",
    "filledQuantity", "refFuturesConId", "shareholder", "imbalanceOnly", "routeMarketableToBbo",
    "parentPermId", "advancedErrorOverride", "manualOrderTime",
})  # fmt: skip
#: Echoed, but as market state rather than the order's terms: IB reports a trailing order's
#: ratcheted stop in ``trailStopPrice``, which moves with every tick. Taking it would make the
#: reported order (and so a modification's confirmation token, bound to it) change between
#: preview and confirm; a modification sets the field from its request anyway.
MARKET_STATE: Final[frozenset[str]] = frozenset({"trailStopPrice"})
#: The ``Order`` fields refreshed from an echo (all the others).
ECHOED: Final[tuple[str, ...]] = tuple(
    f.name for f in dataclasses.fields(Order) if f.name not in NOT_ECHOED | MARKET_STATE
)


def refresh(order: Order, echo: Order) -> None:
    """Set every echoed field of ``order`` to IB's value in ``echo`` (in place).

    ``"?"`` means IB did not say (ib_async drops it from a new order's echo too).
    """
    for name in ECHOED:
        value = getattr(echo, name)
        if isinstance(value, str) and value == "?":
            continue
        setattr(order, name, value)


@dataclasses.dataclass
class EchoWrapper(Wrapper):
    """ib_async's wrapper, but an already known order takes IB's whole openOrder echo.

    ``orderEchoEvent(trade)`` is emitted after a known order was refreshed, whether the echo
    answered a request (open orders) or arrived unasked (an acknowledged placement or
    modification): that echo is IB's acknowledgement of the order as it now stands.
    """

    def __post_init__(self) -> None:
        super().__post_init__()  # type: ignore[no-untyped-call]
        self.orderEchoEvent = Event("orderEchoEvent")

    def openOrder(
        self, orderId: int, contract: Contract, order: Order, orderState: OrderState
    ) -> None:
        """Refresh a known order from ``order`` first, then ib_async's own handling."""
        trade: Trade | None = None
        if not order.whatIf:
            key = self.orderKey(order.clientId, order.orderId, order.permId)
            trade = self.trades.get(key)
        if trade is not None:
            # Before ib_async's handling, so its openOrderEvent already sees the full echo.
            refresh(trade.order, order)
        super().openOrder(orderId, contract, order, orderState)
        if trade is not None:
            self.orderEchoEvent.emit(trade)


class BrokerIB(IB):
    """``IB`` over an ``EchoWrapper``: known orders always hold IB's last openOrder echo."""

    wrapper: EchoWrapper

    def __init__(self) -> None:
        super().__init__()
        # IB.__init__ builds a plain Wrapper and a Client over it, with no way to pass a
        # subclass; nothing is connected yet, so both are built again exactly as it does.
        self.wrapper = EchoWrapper(self, defaults=self.wrapper.defaults)
        self.client = Client(self.wrapper)  # type: ignore[no-untyped-call]
        self.client.apiEnd += self.disconnectedEvent
