"""Every order type and TIF through unmodified ib_async and ib_insync, on a manual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

from sim_orders_support import connect, order, step, stock, wait_for

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import ManualClock

Sim = tuple[Simulator, ManualClock]


def status(trade: Any) -> str:
    return str(trade.orderStatus.status)


async def test_stops_and_touches_already_crossed_fire_at_once(msim: Sim, lib: ModuleType) -> None:
    sim, _clock = msim
    ib = await connect(lib, sim, 1)
    try:
        aapl = await stock(lib, ib, "AAPL")
        [t] = await ib.reqTickersAsync(aapl)
        stp = ib.placeOrder(aapl, order(lib, action="BUY", totalQuantity=10, orderType="STP",
                                        auxPrice=round(t.last - 5, 2)))  # fmt: skip
        stp_lmt = ib.placeOrder(aapl, order(lib, action="BUY", totalQuantity=10,
                                            orderType="STP LMT", auxPrice=round(t.last - 5, 2),
                                            lmtPrice=round(t.ask + 1, 2)))  # fmt: skip
        mit = ib.placeOrder(aapl, order(lib, action="BUY", totalQuantity=10, orderType="MIT",
                                        auxPrice=round(t.last + 5, 2)))  # fmt: skip
        lit = ib.placeOrder(aapl, order(lib, action="SELL", totalQuantity=10, orderType="LIT",
                                        auxPrice=round(t.last - 5, 2),
                                        lmtPrice=round(t.bid - 1, 2)))  # fmt: skip
        await wait_for(lambda: all(status(x) == "Filled" for x in (stp, stp_lmt, mit, lit)))
        assert stp.orderStatus.avgFillPrice == t.ask  # a triggered stop is a market order
        assert stp_lmt.orderStatus.avgFillPrice == t.ask  # marketable at trigger: the touch
        assert lit.orderStatus.avgFillPrice == t.bid
        assert all(len(x.fills) == 1 for x in (stp, stp_lmt, mit, lit))
    finally:
        ib.disconnect()


async def test_resting_stop_waits_presubmitted_then_triggers(msim: Sim, lib: ModuleType) -> None:
    sim, clock = msim
    ib = await connect(lib, sim, 2)
    try:
        aapl = await stock(lib, ib, "AAPL")
        [t] = await ib.reqTickersAsync(aapl)
        stop = round(t.last + 0.20, 2)
        trade = ib.placeOrder(aapl, order(lib, action="BUY", totalQuantity=5, orderType="STP",
                                          auxPrice=stop, tif="GTC"))  # fmt: skip
        await wait_for(lambda: status(trade) == "PreSubmitted")
        [sim_order] = sim.orders()
        for _ in range(3000):
            if sim_order.status == "Filled":
                break
            clock.advance(5)
            sim.tick()
        await wait_for(lambda: status(trade) == "Filled")
        assert sim_order.triggered
        statuses = [e.status for e in trade.log]
        assert (
            statuses.index("PreSubmitted") < statuses.index("Submitted") < statuses.index("Filled")
        )
        assert trade.orderStatus.avgFillPrice >= stop - 0.05
    finally:
        ib.disconnect()


async def test_trailing_stop_ratchets_and_is_reported(msim: Sim, lib: ModuleType) -> None:
    sim, clock = msim
    ib = await connect(lib, sim, 3)
    try:
        aapl = await stock(lib, ib, "AAPL")
        [t] = await ib.reqTickersAsync(aapl)
        trail = ib.placeOrder(aapl, order(lib, action="SELL", totalQuantity=3, orderType="TRAIL",
                                          auxPrice=2.0, tif="GTC"))  # fmt: skip
        pct = ib.placeOrder(aapl, order(lib, action="BUY", totalQuantity=3, orderType="TRAIL",
                                        trailingPercent=1.5, tif="GTC"))  # fmt: skip
        tlim = ib.placeOrder(aapl, order(lib, action="SELL", totalQuantity=3,
                                         orderType="TRAIL LIMIT", auxPrice=3.0,
                                         lmtPriceOffset=0.5, tif="GTC"))  # fmt: skip
        await wait_for(lambda: all(status(x) == "PreSubmitted" for x in (trail, pct, tlim)))
        # ib_async keeps its own Order objects; a fresh client reads what the gateway reports.
        viewer = await connect(lib, sim, 0)
        seen = {x.order.orderId: x.order for x in await viewer.reqAllOpenOrdersAsync()}
        viewer.disconnect()
        assert seen[trail.order.orderId].trailStopPrice == round(t.last - 2.0, 2)
        assert seen[tlim.order.orderId].lmtPriceOffset == 0.5
        s_trail, s_pct, s_tlim = sim.orders()
        assert s_trail.trail_stop == Decimal(str(round(t.last - 2.0, 2)))
        assert s_pct.trail_stop is not None and s_pct.trail_stop > Decimal(str(t.last))
        assert s_tlim.trail_stop == Decimal(str(round(t.last - 3.0, 2)))
        stops = [s_trail.trail_stop]
        for _ in range(2000):
            clock.advance(30)
            sim.tick()
            if not s_trail.is_live:
                break
            stops.append(s_trail.trail_stop)
        assert stops == sorted(stops)  # a sell trail only ever moves up
        assert len(set(stops)) > 1
        if not s_trail.is_live:  # it triggered: at or below its last stop
            await wait_for(lambda: status(trail) == "Filled")
            assert trail.orderStatus.avgFillPrice <= float(stops[-1]) + 0.05
    finally:
        ib.disconnect()


async def test_moc_and_loc_execute_at_the_close(msim: Sim, lib: ModuleType) -> None:
    sim, clock = msim
    ib = await connect(lib, sim, 4)
    try:
        aapl = await stock(lib, ib, "AAPL")
        moc = ib.placeOrder(aapl, order(lib, action="BUY", totalQuantity=7, orderType="MOC"))
        loc = ib.placeOrder(aapl, order(lib, action="SELL", totalQuantity=7, orderType="LOC",
                                        lmtPrice=9999.0))  # fmt: skip
        await wait_for(lambda: status(moc) == status(loc) == "Submitted")
        clock.set(datetime(2026, 11, 25, 20, 59, 59, tzinfo=UTC))  # 15:59:59 New York
        sim.tick()
        assert sim.orders()[0].status == "Submitted"
        clock.set(datetime(2026, 11, 25, 21, 0, 5, tzinfo=UTC))
        sim.tick()
        await wait_for(lambda: status(moc) == "Filled" and status(loc) == "Cancelled")
        close = sim.market.quote_at(sim.orders()[0].instrument,  # type: ignore[arg-type]
                                    datetime(2026, 11, 25, 21, 0, tzinfo=UTC)).last  # fmt: skip
        assert moc.orderStatus.avgFillPrice == float(close)
        assert moc.fills[0].execution.shares == 7
    finally:
        ib.disconnect()


async def test_ioc_fok_gtd_and_opg(msim: Sim, lib: ModuleType, ib_logs: Any) -> None:
    sim, clock = msim
    ib = await connect(lib, sim, 5)
    try:
        spy = await stock(lib, ib, "SPY")
        [t] = await ib.reqTickersAsync(spy)
        big = int(t.askSize) * 3
        fok = ib.placeOrder(spy, order(lib, action="BUY", totalQuantity=big, orderType="MKT",
                                       tif="FOK"))  # fmt: skip
        await wait_for(lambda: status(fok) == "Cancelled")
        assert not fok.fills
        ioc = ib.placeOrder(spy, order(lib, action="BUY", totalQuantity=big, orderType="LMT",
                                       lmtPrice=round(t.ask + 1, 2), tif="IOC"))  # fmt: skip
        await wait_for(lambda: status(ioc) == "Cancelled" and bool(ioc.fills))
        assert ioc.orderStatus.filled == int(t.askSize) < big  # what was there, then cancelled
        until = (clock.now() + timedelta(minutes=10)).strftime("%Y%m%d %H:%M:%S") + " UTC"
        gtd = ib.placeOrder(spy, order(lib, action="BUY", totalQuantity=1, orderType="LMT",
                                       lmtPrice=round(t.bid - 20, 2), tif="GTD",
                                       goodTillDate=until))  # fmt: skip
        await wait_for(lambda: status(gtd) == "Submitted")
        await step(sim, clock, 301, ticks=2)
        await wait_for(lambda: status(gtd) == "Cancelled")
        opg = ib.placeOrder(spy, order(lib, action="BUY", totalQuantity=2, orderType="MKT",
                                       tif="OPG"))  # fmt: skip
        await wait_for(lambda: status(opg) == "Submitted")
        clock.set(datetime(2026, 11, 26, 14, 30, 1, tzinfo=UTC))  # next day 09:30 New York
        sim.tick()
        await wait_for(lambda: status(opg) == "Filled")
        ib_logs.allow("Error 201", "Error 387", "Canceled order")
        past = ib.placeOrder(spy, order(lib, action="BUY", totalQuantity=1, orderType="LMT",
                                        lmtPrice=1.0, tif="GTD",
                                        goodTillDate="20200101 00:00:00 UTC"))  # fmt: skip
        bad_opg = ib.placeOrder(spy, order(lib, action="BUY", totalQuantity=1, orderType="STP",
                                           auxPrice=1.0, tif="OPG"))  # fmt: skip
        [eur] = await ib.qualifyContractsAsync(lib.Forex("EURUSD"))
        fx_moc = ib.placeOrder(eur, order(lib, action="BUY", totalQuantity=20000,
                                          orderType="MOC"))  # fmt: skip
        await wait_for(lambda: all(status(x) in ("Cancelled", "Inactive")
                                   for x in (past, bad_opg, fx_moc)))  # fmt: skip
        codes = {x.log[-1].errorCode for x in (past, bad_opg, fx_moc)}
        assert codes == {201, 387}
    finally:
        ib.disconnect()


async def test_outside_rth_with_trading_hours(lib: ModuleType) -> None:
    clock = ManualClock(datetime(2026, 11, 25, 13, 0, tzinfo=UTC))  # 08:00 New York: pre-market
    sim = Simulator(seed=42, clock=clock, trading_hours=True)
    await sim.start()
    ib = await connect(lib, sim, 6)
    try:
        aapl = await stock(lib, ib, "AAPL")
        tick = sim.market.quote(sim.catalogue.find("AAPL", sec_type="STK")[0])
        limit = float(tick.ask + 1)
        rth_only = ib.placeOrder(aapl, order(lib, action="BUY", totalQuantity=1,
                                             orderType="LMT", lmtPrice=limit))  # fmt: skip
        extended = ib.placeOrder(aapl, order(lib, action="BUY", totalQuantity=1,
                                             orderType="LMT", lmtPrice=limit,
                                             outsideRth=True))  # fmt: skip
        await wait_for(lambda: status(extended) == "Filled")
        assert status(rth_only) == "PreSubmitted" and not rth_only.fills
        clock.set(datetime(2026, 11, 25, 14, 30, 1, tzinfo=UTC))  # 09:30:01: the open
        sim.tick()
        await wait_for(lambda: status(rth_only) == "Filled")
    finally:
        ib.disconnect()
        await sim.stop()
