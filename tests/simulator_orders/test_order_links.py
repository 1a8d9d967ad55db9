"""Brackets, OCA groups and modification through unmodified ib_async and ib_insync."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from sim_orders_support import connect, order, sent_names, stock, wait_for

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import ManualClock

Sim = tuple[Simulator, ManualClock]


def status(trade: Any) -> str:
    return str(trade.orderStatus.status)


async def test_bracket_transmit_chain_activation_and_oca(msim: Sim, lib: ModuleType) -> None:
    sim, _clock = msim
    ib = await connect(lib, sim, 1)
    try:
        aapl = await stock(lib, ib, "AAPL")
        [t] = await ib.reqTickersAsync(aapl)
        bracket = ib.bracketOrder(
            "BUY", 10, round(t.bid - 3, 2), takeProfitPrice=round(t.ask + 50, 2),
            stopLossPrice=round(t.bid - 60, 2),
        )  # fmt: skip
        parent, take, stop = bracket
        before = len(sent_names(sim, 1))
        p = ib.placeOrder(aapl, parent)
        tp = ib.placeOrder(aapl, take)
        await ib.reqCurrentTimeAsync()  # a round trip: anything sent so far has arrived
        assert "OPEN_ORDER" not in sent_names(sim, 1)[before:]  # nothing live before the last
        sl = ib.placeOrder(aapl, stop)
        await wait_for(lambda: status(p) == "Submitted" and status(sl) == "PreSubmitted")
        assert status(tp) == "PreSubmitted"
        viewer = await connect(lib, sim, 0)
        seen = {x.order.orderId: x.order for x in await viewer.reqAllOpenOrdersAsync()}
        viewer.disconnect()
        groups = {seen[x.order.orderId].ocaGroup for x in (tp, sl)}
        assert len(groups) == 1 and "" not in groups  # the legs form one OCA group
        assert seen[tp.order.orderId].parentId == p.order.orderId
        # modify the child: its parent and OCA links survive
        take.lmtPrice = round(t.ask + 40, 2)
        ib.placeOrder(aapl, take)
        await ib.reqCurrentTimeAsync()
        s_parent, s_take, s_stop = sim.orders()
        assert s_take.fields.lmt_price is not None and float(s_take.fields.lmt_price) == (
            take.lmtPrice
        )
        assert s_take.fields.parent_id == p.order.orderId and s_take.fields.oca_group in groups
        # make the parent marketable: it fills, the children go live
        parent.lmtPrice = round(t.ask + 1, 2)
        ib.placeOrder(aapl, parent)
        await wait_for(lambda: status(p) == "Filled" and status(tp) == "Submitted")
        assert p.orderStatus.avgFillPrice == t.ask  # a modification arrives anew: the touch
        assert s_stop.is_live and not s_stop.held
        # make the take-profit marketable: the stop is cancelled by the OCA group
        take.lmtPrice = round(t.bid - 1, 2)
        ib.placeOrder(aapl, take)
        await wait_for(lambda: status(tp) == "Filled" and status(sl) == "Cancelled")
        assert sim.account("DU1234567").positions[aapl.conId].quantity == 0
        assert s_parent.status == "Filled"
    finally:
        ib.disconnect()


async def test_oca_cancel_and_reduce(msim: Sim, lib: ModuleType) -> None:
    sim, _clock = msim
    ib = await connect(lib, sim, 2)
    try:
        aapl = await stock(lib, ib, "AAPL")
        [t] = await ib.reqTickersAsync(aapl)
        far = round(t.bid - 10, 2)
        a = ib.placeOrder(aapl, order(lib, action="BUY", totalQuantity=5, orderType="LMT",
                                      lmtPrice=far, ocaGroup="g1", ocaType=1))  # fmt: skip
        b = ib.placeOrder(aapl, order(lib, action="BUY", totalQuantity=5, orderType="MKT",
                                      ocaGroup="g1", ocaType=1))  # fmt: skip
        await wait_for(lambda: status(b) == "Filled" and status(a) == "Cancelled")
        c = ib.placeOrder(aapl, order(lib, action="SELL", totalQuantity=10, orderType="LMT",
                                      lmtPrice=round(t.ask + 10, 2), ocaGroup="g2",
                                      ocaType=2))  # fmt: skip
        d = ib.placeOrder(aapl, order(lib, action="SELL", totalQuantity=4, orderType="MKT",
                                      ocaGroup="g2", ocaType=2))  # fmt: skip
        await wait_for(lambda: status(d) == "Filled")
        await ib.reqCurrentTimeAsync()
        assert status(c) == "Submitted"
        assert [o.fields.total_quantity for o in sim.orders() if o.order_id == c.order.orderId] == [
            6
        ]  # reduced by the 4 the sibling filled
    finally:
        ib.disconnect()


async def test_modification_and_ib_errors(msim: Sim, lib: ModuleType, ib_logs: Any) -> None:
    sim, _clock = msim
    ib_logs.allow("Error 104", "Error 105", "Error 135", "Error 10147", "Canceled order")
    ib = await connect(lib, sim, 3)
    errors: list[int] = []
    ib.errorEvent += lambda *args: errors.append(int(args[1]))
    try:
        aapl = await stock(lib, ib, "AAPL")
        [t] = await ib.reqTickersAsync(aapl)
        lmt = order(lib, action="BUY", totalQuantity=5, orderType="LMT",
                    lmtPrice=round(t.bid - 10, 2), tif="DAY")  # fmt: skip
        trade = ib.placeOrder(aapl, lmt)
        await wait_for(lambda: status(trade) == "Submitted")
        lmt.lmtPrice, lmt.totalQuantity, lmt.tif = round(t.bid - 9, 2), 8, "GTC"
        ib.placeOrder(aapl, lmt)
        await ib.reqCurrentTimeAsync()
        [s_order] = [o for o in sim.orders() if o.order_id == lmt.orderId]
        assert (float(s_order.fields.lmt_price or 0), s_order.fields.total_quantity,
                s_order.fields.tif) == (lmt.lmtPrice, 8, "GTC")  # fmt: skip
        assert s_order.perm_id == trade.order.permId  # the same order, modified
        mkt = order(lib, action="BUY", totalQuantity=1, orderType="MKT")
        filled = ib.placeOrder(aapl, mkt)
        await wait_for(lambda: status(filled) == "Filled")
        mkt.totalQuantity = 2
        ib.client.placeOrder(mkt.orderId, aapl, mkt)  # modify a filled order (raw API call)
        lmt.action = "SELL"
        ib.placeOrder(aapl, lmt)  # change the side of a working order
        orphan = order(lib, action="SELL", totalQuantity=1, orderType="STP", auxPrice=1.0,
                       parentId=99_999)  # fmt: skip
        ib.placeOrder(aapl, orphan)
        ib.client.cancelOrder(88_888, "")
        await wait_for(lambda: {104, 105, 135, 10147} <= set(errors))
        assert s_order.is_live  # the refused modification left it working
    finally:
        ib.disconnect()


async def test_parent_cancel_takes_its_children_and_held_chain_transmits_on_modify(
    msim: Sim, lib: ModuleType, ib_logs: Any
) -> None:
    sim, _clock = msim
    ib_logs.allow("Error 202", "Canceled order")
    ib = await connect(lib, sim, 4)
    try:
        aapl = await stock(lib, ib, "AAPL")
        [t] = await ib.reqTickersAsync(aapl)
        parent, take, stop = ib.bracketOrder(
            "BUY", 3, round(t.bid - 4, 2), round(t.ask + 30, 2), round(t.bid - 30, 2)
        )
        stop.transmit = False  # hold the whole chain …
        trades = [ib.placeOrder(aapl, leg) for leg in (parent, take, stop)]
        await ib.reqCurrentTimeAsync()
        assert all(o.status == "PendingSubmit" for o in sim.orders())  # nothing transmitted
        stop.transmit = True  # … until a modification of the last leg transmits it
        ib.placeOrder(aapl, stop)
        await wait_for(lambda: status(trades[0]) == "Submitted")
        await wait_for(lambda: status(trades[2]) == "PreSubmitted")
        ib.cancelOrder(parent)
        await wait_for(lambda: all(status(x) == "Cancelled" for x in trades))
        assert not sim.engine.live_orders()
    finally:
        ib.disconnect()


async def test_unsupported_type_and_outside_rth_market_warning(
    lib: ModuleType, ib_logs: Any
) -> None:
    from datetime import UTC, datetime

    ib_logs.allow("Error 387", "Canceled order", "2109")
    clock = ManualClock(datetime(2026, 11, 25, 13, 0, tzinfo=UTC))  # 08:00 New York
    sim = Simulator(seed=42, clock=clock, trading_hours=True)
    await sim.start()
    ib = await connect(lib, sim, 5)
    codes: list[int] = []
    ib.errorEvent += lambda *args: codes.append(int(args[1]))
    try:
        aapl = await stock(lib, ib, "AAPL")
        rel = ib.placeOrder(aapl, order(lib, action="BUY", totalQuantity=1, orderType="REL"))
        mkt = ib.placeOrder(aapl, order(lib, action="BUY", totalQuantity=1, orderType="MKT",
                                        outsideRth=True))  # fmt: skip
        await wait_for(lambda: status(rel) == "Cancelled" and 2109 in codes)
        assert 387 in codes
        await ib.reqCurrentTimeAsync()
        assert status(mkt) == "PreSubmitted" and not mkt.fills  # waits for regular hours
        clock.set(datetime(2026, 11, 25, 14, 30, 1, tzinfo=UTC))
        sim.tick()
        await wait_for(lambda: status(mkt) == "Filled")
    finally:
        ib.disconnect()
        await sim.stop()
