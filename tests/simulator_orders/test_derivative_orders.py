"""An option and a futures order through fill, with IB's per-contract fees and multipliers."""

from __future__ import annotations

from decimal import Decimal
from types import ModuleType

from sim_orders_support import connect, order, stock, wait_for

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import ManualClock

Sim = tuple[Simulator, ManualClock]


async def test_option_order_fills_with_multiplier_and_fees(msim: Sim, lib: ModuleType) -> None:
    sim, _clock = msim
    ib = await connect(lib, sim, 1)
    try:
        aapl = await stock(lib, ib, "AAPL")
        [params] = [
            p
            for p in await ib.reqSecDefOptParamsAsync("AAPL", "", "STK", aapl.conId)
            if p.exchange == "SMART"
        ]
        [t] = await ib.reqTickersAsync(aapl)
        strike = min(params.strikes, key=lambda s: abs(s - t.last))
        expiry = sorted(params.expirations)[2]
        [opt] = await ib.qualifyContractsAsync(lib.Option("AAPL", expiry, strike, "C", "SMART"))
        trade = ib.placeOrder(opt, order(lib, action="BUY", totalQuantity=3, orderType="MKT"))
        await wait_for(lambda: trade.orderStatus.status == "Filled" and bool(trade.fills))
        await wait_for(lambda: trade.fills[-1].commissionReport.commission > 0)
        assert sum(f.commissionReport.commission for f in trade.fills) == 1.95  # 3 x $0.65
        price = Decimal(str(trade.orderStatus.avgFillPrice))
        pos = sim.account("DU1234567").positions[opt.conId]
        assert pos.quantity == 3
        assert pos.avg_cost == price * 100 + Decimal("0.65")  # per contract, fees included
        assert sim.account("DU1234567").cash == Decimal(1_000_000) - 3 * price * 100 - Decimal(
            "1.95"
        )
        [p] = [p for p in await ib.reqPositionsAsync() if p.contract.conId == opt.conId]
        assert p.avgCost == float(pos.avg_cost)
    finally:
        ib.disconnect()


async def test_futures_order_fills_without_moving_cash(msim: Sim, lib: ModuleType) -> None:
    sim, _clock = msim
    ib = await connect(lib, sim, 2)
    try:
        [front] = await ib.qualifyContractsAsync(lib.ContFuture("ES", "CME"))
        fut = lib.Contract(conId=front.conId, exchange="CME")
        [fut] = await ib.qualifyContractsAsync(fut)
        assert fut.secType == "FUT" and float(fut.multiplier) == 50
        trade = ib.placeOrder(fut, order(lib, action="SELL", totalQuantity=2, orderType="MKT"))
        await wait_for(lambda: trade.orderStatus.status == "Filled" and bool(trade.fills))
        await wait_for(lambda: trade.fills[-1].commissionReport.commission > 0)
        assert sum(f.commissionReport.commission for f in trade.fills) == 1.70  # 2 x $0.85
        acct = sim.account("DU1234567")
        assert acct.cash == Decimal(1_000_000)  # futures notional never moves cash
        snap = acct.snapshot(sim.engine.mark, sim.engine.fx)
        assert snap.net_liquidation == acct.cash + snap.unrealized_pnl
        state = await ib.whatIfOrderAsync(
            fut, order(lib, action="SELL", totalQuantity=1, orderType="MKT")
        )
        notional = float(sim.engine.mark(sim.orders()[0].instrument)) * 50  # type: ignore[arg-type]
        assert abs(float(state.initMarginChange) - 0.08 * notional) < 0.01 * notional
    finally:
        ib.disconnect()


async def test_working_option_order_is_cancelled_when_the_option_expires(
    msim: Sim, lib: ModuleType
) -> None:
    from datetime import UTC, datetime, timedelta

    sim, clock = msim
    ib = await connect(lib, sim, 3)
    try:
        spy = await stock(lib, ib, "SPY")
        [params] = [
            p
            for p in await ib.reqSecDefOptParamsAsync("SPY", "", "STK", spy.conId)
            if p.exchange == "SMART"
        ]
        [t] = await ib.reqTickersAsync(spy)
        expiry = sorted(params.expirations)[0]
        strike = min(params.strikes, key=lambda s: abs(s - t.last))
        [opt] = await ib.qualifyContractsAsync(lib.Option("SPY", expiry, strike, "P", "SMART"))
        trade = ib.placeOrder(opt, order(lib, action="SELL", totalQuantity=1, orderType="LMT",
                                         lmtPrice=500.0, tif="GTC"))  # fmt: skip
        await wait_for(lambda: trade.orderStatus.status == "Submitted")
        last = datetime.strptime(expiry, "%Y%m%d").replace(tzinfo=UTC)
        clock.set(last + timedelta(hours=20, minutes=59))  # 15:59 New York on the last day
        sim.tick()
        assert sim.orders()[0].is_live
        clock.set(last + timedelta(hours=21, minutes=1))  # 16:01: expired
        sim.tick()
        await wait_for(lambda: trade.orderStatus.status == "Cancelled")
    finally:
        ib.disconnect()


async def test_daily_pnl_of_a_future_rolls_with_its_multiplier(msim: Sim) -> None:
    import ib_async

    sim, clock = msim
    ib = await connect(ib_async, sim, 4)
    try:
        [front] = await ib.qualifyContractsAsync(ib_async.ContFuture("NQ", "CME"))
        [fut] = await ib.qualifyContractsAsync(ib_async.Contract(conId=front.conId, exchange="CME"))
        trade = ib.placeOrder(fut, order(ib_async, action="BUY", totalQuantity=1, orderType="MKT"))
        await wait_for(lambda: trade.orderStatus.status == "Filled")
        clock.advance(24 * 3600)  # the next New York trading day
        sim.tick()
        inst = sim.orders()[0].instrument
        assert inst is not None
        snap = sim.account("DU1234567").snapshot(sim.engine.mark, sim.engine.fx)
        expected = (sim.engine.mark(inst) - sim.engine.prior_close(inst)) * inst.multiplier
        assert snap.daily_pnl == expected
    finally:
        ib.disconnect()
