"""Partial fills, the paper quirk, commissions with multipliers, and who sees which order."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal
from types import ModuleType
from typing import Any

from sim_orders_support import T0, connect, order, stock, wait_for

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.catalogue import DEFAULT_CATALOGUE
from ibkr_mcp.simulator.clock import ManualClock
from ibkr_mcp.simulator.commissions import fill_commission, order_commission

Sim = tuple[Simulator, ManualClock]


def status(trade: Any) -> str:
    return str(trade.orderStatus.status)


async def partial_fill_run(lib: ModuleType, sim: Simulator, clock: ManualClock) -> Any:
    ib = await connect(lib, sim, 1)
    try:
        spy = await stock(lib, ib, "SPY")
        trade = ib.placeOrder(spy, order(lib, action="BUY", totalQuantity=3000, orderType="MKT"))
        await wait_for(lambda: bool(trade.fills))
        for _ in range(120):
            if sim.orders()[0].status == "Filled":
                break
            clock.advance(1)
            sim.tick()
        await wait_for(lambda: status(trade) == "Filled" and len(trade.fills) == len(
            [f for f in trade.fills if f.commissionReport.execId]
        ))  # fmt: skip
        return trade
    finally:
        ib.disconnect()


async def test_partial_fills_status_sequence_and_average(msim: Sim, lib: ModuleType) -> None:
    sim, clock = msim
    trade = await partial_fill_run(lib, sim, clock)
    [s_order] = sim.orders()
    assert len(s_order.fills) > 1  # 3000 SPY is more than one second's displayed ask
    assert (clock.now() - T0).total_seconds() < 60  # a liquid ETF completes within seconds
    shares = [f.execution.shares for f in trade.fills]
    assert sum(shares) == 3000
    avg = sum(f.execution.shares * f.execution.price for f in trade.fills) / 3000
    assert abs(trade.orderStatus.avgFillPrice - avg) < 1e-6
    partial = [e for e in trade.log if e.status == "Submitted"]
    assert partial  # Submitted with filled/remaining between the executions
    commissions = [f.commissionReport.commission for f in trade.fills]
    assert round(sum(commissions), 2) == 15.0  # 3000 x $0.005, charged once per order
    names = [m.name for m in sim.sent() if m.name in ("EXECUTION_DATA", "COMMISSION_REPORT")]
    assert names.count("EXECUTION_DATA") == names.count("COMMISSION_REPORT") == len(trade.fills)


async def test_paper_quirk_cancels_a_partially_filled_market_remainder(
    lib: ModuleType, ib_logs: Any
) -> None:
    ib_logs.allow("Error 202", "Canceled order")
    sim = Simulator(seed=42, clock=ManualClock(T0), reject_mkt_remainder=True)
    await sim.start()
    ib = await connect(lib, sim, 1)
    try:
        errors: list[int] = []
        ib.errorEvent += lambda *args: errors.append(int(args[1]))
        spy = await stock(lib, ib, "SPY")
        trade = ib.placeOrder(spy, order(lib, action="BUY", totalQuantity=3000, orderType="MKT"))
        await wait_for(lambda: 202 in errors)
        assert status(trade) == "Cancelled"
        assert 0 < trade.orderStatus.filled < 3000
    finally:
        ib.disconnect()
        await sim.stop()


async def test_same_seed_and_clock_give_the_same_partial_fill_stream() -> None:
    import ib_async

    streams = []
    for _ in range(2):
        clock = ManualClock(T0)
        sim = Simulator(seed=9, clock=clock)
        await sim.start()
        try:
            await partial_fill_run(ib_async, sim, clock)
        finally:
            await sim.stop()
        streams.append([(m.client_id, m.name, m.req_id) for m in sim.sent()])
        streams.append([(f.exec_id, f.shares, f.price) for o in sim.orders() for f in o.fills])
    assert streams[0] == streams[2] and streams[1] == streams[3]


def test_commissions_follow_ib_fixed_rates() -> None:
    stock_inst = DEFAULT_CATALOGUE.find("AAPL", sec_type="STK")[0]
    opt = dataclasses.replace(stock_inst, sec_type="OPT", multiplier=Decimal(100))  # type: ignore[arg-type]
    fut = dataclasses.replace(stock_inst, sec_type="FUT", symbol="ES", multiplier=Decimal(50))  # type: ignore[arg-type]
    micro = dataclasses.replace(fut, symbol="MES", multiplier=Decimal(5))
    assert order_commission(stock_inst, Decimal(100), Decimal(20000)) == Decimal("1.00")  # min
    assert order_commission(stock_inst, Decimal(1000), Decimal(200000)) == Decimal("5.00")
    assert order_commission(stock_inst, Decimal(1000), Decimal(300)) == Decimal("3.00")  # 1% cap
    assert order_commission(opt, Decimal(1), Decimal("2.5")) == Decimal("1.00")  # min
    assert order_commission(opt, Decimal(10), Decimal(25)) == Decimal("6.50")
    assert order_commission(opt, Decimal(10), Decimal("0.4")) == Decimal("2.50")  # cheap option
    assert order_commission(fut, Decimal(3), Decimal(18000)) == Decimal("2.55")
    assert order_commission(micro, Decimal(4), Decimal(24000)) == Decimal("1.00")
    first = fill_commission(stock_inst, Decimal(0), Decimal(0), Decimal(100), Decimal(200))
    second = fill_commission(stock_inst, Decimal(100), Decimal(20000), Decimal(300), Decimal(200))
    assert (first, second) == (Decimal("1.00"), Decimal("1.00"))  # min once, then per share


async def test_each_client_sees_its_own_orders_master_and_zero_see_all(
    lib: ModuleType, ib_logs: Any
) -> None:
    ib_logs.allow("Error 202", "Canceled order")
    sim = Simulator(seed=42, clock=ManualClock(T0), master_client_id=7)
    await sim.start()
    owner, other, zero, master = [await connect(lib, sim, c) for c in (1, 2, 0, 7)]
    try:
        aapl = await stock(lib, owner, "AAPL")
        [t] = await owner.reqTickersAsync(aapl)
        low = round(t.bid - 5, 2)
        resting = owner.placeOrder(
            aapl, order(lib, action="BUY", totalQuantity=1, orderType="LMT", lmtPrice=low)
        )
        filled = owner.placeOrder(aapl, order(lib, action="BUY", totalQuantity=1, orderType="MKT"))
        await wait_for(lambda: status(filled) == "Filled" and status(resting) == "Submitted")
        await wait_for(lambda: len(zero.trades()) == 2 and len(master.trades()) == 2)
        await wait_for(lambda: bool(master.fills()) and bool(zero.fills()))
        assert other.trades() == [] and other.fills() == []
        assert [x.order.permId for x in await other.reqOpenOrdersAsync()] == []
        assert [x.order.permId for x in await master.reqOpenOrdersAsync()] == [resting.order.permId]
        # reqExecutions is a query: every client may ask, narrowed by the filter's clientId.
        assert len(await other.reqExecutionsAsync()) == 1
        assert await other.reqExecutionsAsync(lib.ExecutionFilter(clientId=2)) == []
        owner.cancelOrder(resting.order)
        await wait_for(lambda: status(resting) == "Cancelled")
        await asyncio.sleep(0.05)
        errors = {m.client_id for m in sim.sent() if m.name == "ERR_MSG" and m.req_id == (
            resting.order.orderId)}  # fmt: skip
        assert errors == {1}  # the 202 goes to the owner only
    finally:
        for ib in (owner, other, zero, master):
            ib.disconnect()
        await sim.stop()
