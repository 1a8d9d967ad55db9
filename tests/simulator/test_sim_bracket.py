"""A marketable bracket over a real socket with unmodified ib_async: its children go live."""

from __future__ import annotations

from decimal import Decimal

from ib_async import IB, LimitOrder, Stock

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import ManualClock


async def test_marketable_bracket_children_work_once_the_parent_fills(
    msim: tuple[Simulator, ManualClock],
) -> None:
    """The parent fills inside its own transmit; the take-profit works, the stop is armed.

    The chain's last leg transmits all three at once and the parent is marketable, so it fills
    while that placeOrder is handled. Its children must not stay held: the take-profit is
    Submitted (working at the exchange) and the stop loss, a simulated stop IB reports as
    PreSubmitted until elected, triggers as soon as the market reaches it.
    """
    sim, _clock = msim
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=1, timeout=5)
    viewer = IB()
    await viewer.connectAsync("127.0.0.1", sim.port, clientId=9, timeout=5)
    try:
        [msft] = await ib.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"))
        [t] = await ib.reqTickersAsync(msft)
        parent, take, stop = ib.bracketOrder(
            "BUY", 3, t.ask, round(t.ask * 1.03, 2), round(t.ask * 0.97, 2)
        )
        assert (parent.transmit, take.transmit, stop.transmit) == (False, False, True)
        p, tp, sl = (ib.placeOrder(msft, leg) for leg in (parent, take, stop))
        # The clock is manual and the simulator answers in arrival order: after one round trip
        # everything the three placements caused has reached the client. No market step.
        await ib.reqCurrentTimeAsync()
        assert p.orderStatus.status == "Filled" and p.orderStatus.avgFillPrice == t.ask
        assert tp.orderStatus.status == "Submitted"
        assert sl.orderStatus.status == "PreSubmitted"  # armed, not yet elected
        # what get_open_orders reads: reqAllOpenOrders from another client
        seen = {x.order.orderId: x.orderStatus.status for x in await viewer.reqAllOpenOrdersAsync()}
        assert seen == {take.orderId: "Submitted", stop.orderId: "PreSubmitted"}
        s_take, s_stop = (sim.engine.lookup(1, leg.orderId) for leg in (take, stop))
        assert s_take is not None and s_stop is not None
        assert not s_take.held and not s_stop.held
        # The stop works: moved above the last price, a sell stop is elected at once and sells
        # the position; the bracket's OCA group (reduce on fill) then takes the take-profit.
        stop.auxPrice = round(t.last + 1, 2)
        ib.placeOrder(msft, stop)
        await ib.reqCurrentTimeAsync()
        assert sl.orderStatus.status == "Filled" and sl.orderStatus.filled == 3
        assert tp.orderStatus.status == "Cancelled"
        assert sim.account("DU1234567").positions[msft.conId].quantity == Decimal(0)
    finally:
        viewer.disconnect()
        ib.disconnect()


async def test_child_transmitted_after_its_parent_filled_works_at_once(
    msim: tuple[Simulator, ManualClock],
) -> None:
    """A child held untransmitted while its parent filled is active when it is transmitted."""
    sim, _clock = msim
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=2, timeout=5)
    try:
        [msft] = await ib.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"))
        [t] = await ib.reqTickersAsync(msft)
        parent = LimitOrder("BUY", 2, round(t.bid - 5, 2), orderId=ib.client.getReqId())
        p = ib.placeOrder(msft, parent)  # transmitted alone, resting below the market
        take = LimitOrder("SELL", 2, round(t.ask * 1.03, 2), orderId=ib.client.getReqId())
        take.parentId, take.transmit = parent.orderId, False
        tp = ib.placeOrder(msft, take)  # held untransmitted
        parent.lmtPrice = t.ask  # the parent becomes marketable and fills
        ib.placeOrder(msft, parent)
        await ib.reqCurrentTimeAsync()
        assert p.orderStatus.status == "Filled"
        take.transmit = True  # transmit the child after its parent filled
        ib.placeOrder(msft, take)
        await ib.reqCurrentTimeAsync()
        assert tp.orderStatus.status == "Submitted"
        s_take = sim.engine.lookup(2, take.orderId)
        assert s_take is not None and not s_take.held
    finally:
        ib.disconnect()
