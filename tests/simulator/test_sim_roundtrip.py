"""Round trips with an unmodified ib_async client over a real socket."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from ib_async import IB, ExecutionFilter, Forex, LimitOrder, MarketOrder, Stock

from ibkr_mcp.simulator import SIMULATOR_NOTICE_CODE, Simulator
from ibkr_mcp.simulator.clock import ManualClock


async def wait_for(cond: Any, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_connect_is_fast_and_announces_simulator(fsim: Simulator) -> None:
    ib = IB()
    errors: list[tuple[int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((code, text))
    start = time.perf_counter()
    await ib.connectAsync("127.0.0.1", fsim.port, clientId=7, timeout=5)
    try:
        assert time.perf_counter() - start < 0.5
        assert ib.managedAccounts() == ["DU1234567"]
        await wait_for(lambda: any(c == SIMULATOR_NOTICE_CODE for c, _ in errors))
        notice = next(t for c, t in errors if c == SIMULATOR_NOTICE_CODE)
        assert notice.startswith("IBKR-MCP SIMULATOR:")
        assert [c for c, _ in errors][:3] == [2104, 2106, 2158]
        assert ib.client.serverVersion() == 178
    finally:
        ib.disconnect()


async def test_contract_details_and_unknown_symbol(ib: IB, ib_logs: Any) -> None:
    [cd] = await ib.reqContractDetailsAsync(Stock("MSFT", "SMART", "USD"))
    assert cd.contract.conId == 272093
    assert cd.stockType == "COMMON" and cd.minTick == 0.01
    assert cd.longName == "MICROSOFT CORP" and cd.timeZoneId == "US/Eastern"
    assert "0930-" in cd.liquidHours and cd.industry == "Technology"
    assert "LMT" in cd.orderTypes and "SMART" in cd.validExchanges
    ib_logs.allow("Error 200")
    assert await ib.reqContractDetailsAsync(Stock("NOPE", "SMART", "USD")) == []
    [fx] = await ib.qualifyContractsAsync(Forex("EURUSD"))
    assert fx.secType == "CASH" and fx.localSymbol == "EUR.USD"
    samples = await ib.reqMatchingSymbolsAsync("AAP")
    assert samples and samples[0].contract.symbol == "AAPL"


async def test_snapshot_streaming_and_delayed_quotes(ib: IB) -> None:
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    [t] = await ib.reqTickersAsync(aapl)
    assert 0 < t.bid < t.ask and t.last > 0 and t.volume > 0 and t.close > 0
    assert t.marketDataType == 1 and t.lastTimestamp is not None
    stream = ib.reqMktData(aapl)
    await wait_for(lambda: stream.bid > 0)
    assert stream.bid == t.bid and stream.ask == t.ask
    ib.cancelMktData(aapl)
    ib.reqMarketDataType(3)
    [d] = await ib.reqTickersAsync(aapl)
    assert d.marketDataType == 3
    assert 0 < d.bid < d.ask
    assert {tick.tickType for tick in d.ticks} >= {66, 67, 68}
    [fx] = await ib.qualifyContractsAsync(Forex("EURUSD"))
    ib.reqMarketDataType(1)
    [f] = await ib.reqTickersAsync(fx)
    assert 0 < f.bid < f.ask and f.midpoint() > 0


async def test_historical_bars_and_errors(ib: IB, ib_logs: Any) -> None:
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    bars = await ib.reqHistoricalDataAsync(aapl, "", "5 D", "1 day", "TRADES", True)
    assert 3 <= len(bars) <= 6
    assert all(b.low <= b.open <= b.high and b.volume > 0 for b in bars)
    mins = await ib.reqHistoricalDataAsync(aapl, "", "3600 S", "5 mins", "MIDPOINT", False)
    assert len(mins) == 12
    codes: list[int] = []
    ib.errorEvent += lambda rid, code, text, c: codes.append(code)
    # IB answers a bad duration with 321, which ib_async treats as a warning (so: timeout).
    bad = await ib.reqHistoricalDataAsync(aapl, "", "5 X", "1 day", "TRADES", True, timeout=0.3)
    assert len(bad) == 0
    assert codes == [321], codes
    head = await ib.reqHeadTimeStampAsync(aapl, "TRADES", True, 1)
    assert head.year < 2020


async def test_account_summary_updates_positions_pnl(ib: IB, fsim: Simulator) -> None:
    summary = await ib.accountSummaryAsync()
    tags = {v.tag: v.value for v in summary}
    assert float(tags["NetLiquidation"]) == 1_000_000
    assert float(tags["BuyingPower"]) == 4_000_000
    assert tags["AccountType"] == "INDIVIDUAL"
    values = {(v.tag, v.currency): v.value for v in ib.accountValues()}
    assert float(values[("TotalCashValue", "USD")]) == 1_000_000
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 100))
    await wait_for(trade.isDone)
    await wait_for(lambda: bool(ib.portfolio()))
    [item] = ib.portfolio()
    assert item.position == 100 and item.contract.conId == aapl.conId
    positions = await ib.reqPositionsAsync()
    assert [(p.contract.conId, p.position) for p in positions] == [(aapl.conId, 100)]
    pnl = ib.reqPnL("DU1234567")
    single = ib.reqPnLSingle("DU1234567", "", aapl.conId)
    await wait_for(lambda: pnl.unrealizedPnL == pnl.unrealizedPnL and single.position == 100)
    assert pnl.unrealizedPnL < 0  # bought at the ask, marked at the mid, paid commission
    assert single.value > 0
    ib.cancelPnL("DU1234567")
    ib.cancelPnLSingle("DU1234567", "", aapl.conId)
    fsim.push_account_updates()  # summaries follow IB's 3-minute cycle, not each fill

    gross = 0.0
    for _ in range(200):  # poll the cached subscription until the cycle's update arrived
        summary = await ib.accountSummaryAsync()
        gross = float(next(v.value for v in summary if v.tag == "GrossPositionValue"))
        if gross > 0:
            break
        await asyncio.sleep(0.01)
    assert gross > 0


async def test_market_order_fill_sequence_and_commission(ib: IB, fsim: Simulator) -> None:
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    [t] = await ib.reqTickersAsync(aapl)
    order = MarketOrder("BUY", 300, orderRef="ref-1")
    trade = ib.placeOrder(aapl, order)
    await wait_for(
        lambda: (
            trade.isDone() and bool(trade.fills) and trade.fills[0].commissionReport.commission > 0
        )
    )
    assert trade.orderStatus.status == "Filled"
    assert trade.orderStatus.avgFillPrice == t.ask
    fill = trade.fills[0]
    assert fill.execution.orderRef == "ref-1" and fill.execution.side == "BOT"
    assert fill.commissionReport.commission == 1.5  # 300 x $0.005
    sent = [m.name for m in fsim.sent()]
    i = sent.index("EXECUTION_DATA")
    assert sent[i - 2 : i + 4] == [
        "OPEN_ORDER",
        "ORDER_STATUS",
        "EXECUTION_DATA",
        "OPEN_ORDER",
        "ORDER_STATUS",
        "COMMISSION_REPORT",
    ]
    [sim_order] = fsim.orders()
    assert sim_order.perm_id == trade.order.permId and sim_order.status == "Filled"
    fills = await ib.reqExecutionsAsync(ExecutionFilter(symbol="AAPL"))
    assert [f.execution.execId for f in fills] == [fill.execution.execId]
    assert await ib.reqExecutionsAsync(ExecutionFilter(symbol="MSFT")) == []
    done = await ib.reqCompletedOrdersAsync(False)
    assert [(d.order.permId, d.orderStatus.status) for d in done] == [
        (trade.order.permId, "Filled")
    ]


async def test_limit_order_rests_then_cancels(ib: IB, ib_logs: Any) -> None:
    ib_logs.allow("Error 202")
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    [t] = await ib.reqTickersAsync(aapl)
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 10, round(t.bid - 5, 2), tif="GTC"))
    await wait_for(lambda: trade.orderStatus.status == "Submitted")
    open_trades = await ib.reqOpenOrdersAsync()
    assert [o.order.orderId for o in open_trades] == [trade.order.orderId]
    ib.cancelOrder(trade.order)
    await wait_for(lambda: trade.orderStatus.status == "Cancelled")
    assert await ib.reqOpenOrdersAsync() == []


async def test_limit_fills_when_market_crosses(msim: tuple[Simulator, ManualClock]) -> None:
    sim, clock = msim
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=3, timeout=5)
    try:
        [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        [t] = await ib.reqTickersAsync(aapl)
        limit = round(t.ask - 0.05, 2)
        trade = ib.placeOrder(aapl, LimitOrder("BUY", 10, limit, tif="GTC"))
        await wait_for(lambda: trade.orderStatus.status == "Submitted")
        for _ in range(2000):
            clock.advance(30)
            sim.tick()
            if sim.orders()[0].status == "Filled":
                break
        await wait_for(lambda: trade.orderStatus.status == "Filled")
        assert trade.orderStatus.avgFillPrice == limit
    finally:
        ib.disconnect()


async def test_ioc_not_marketable_is_cancelled_and_global_cancel(ib: IB, ib_logs: Any) -> None:
    ib_logs.allow("Error 202")
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    [t] = await ib.reqTickersAsync(aapl)
    ioc = ib.placeOrder(aapl, LimitOrder("BUY", 5, round(t.bid - 1, 2), tif="IOC"))
    await wait_for(lambda: ioc.orderStatus.status == "Cancelled")
    a = ib.placeOrder(aapl, LimitOrder("BUY", 5, round(t.bid - 2, 2)))
    b = ib.placeOrder(aapl, LimitOrder("SELL", 5, round(t.ask + 2, 2)))
    await wait_for(lambda: a.orderStatus.status == b.orderStatus.status == "Submitted")
    ib.reqGlobalCancel()
    await wait_for(lambda: a.orderStatus.status == b.orderStatus.status == "Cancelled")


async def test_rejections_tick_size_and_buying_power(ib: IB, ib_logs: Any) -> None:
    ib_logs.allow("Error 110", "Error 201", "Canceled order")
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    off_tick = ib.placeOrder(aapl, LimitOrder("BUY", 1, 100.001))
    await wait_for(lambda: off_tick.orderStatus.status == "Cancelled")
    assert any(e.errorCode == 110 for e in off_tick.log)
    huge = ib.placeOrder(aapl, MarketOrder("BUY", 100_000))
    await wait_for(lambda: huge.orderStatus.status == "Cancelled")
    assert any(e.errorCode == 201 and "insufficient" in e.message for e in huge.log)


async def test_what_if_returns_margin_and_commission(ib: IB, fsim: Simulator) -> None:
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    state = await ib.whatIfOrderAsync(aapl, MarketOrder("BUY", 100))
    assert float(state.initMarginChange) > 0 and float(state.maintMarginAfter) > 0
    assert float(state.equityWithLoanBefore) == 1_000_000
    assert state.commission == 1.0 and state.commissionCurrency == "USD"
    [order] = fsim.orders()
    assert order.what_if and not order.fills
    assert fsim.account("DU1234567").positions == {}


async def test_fx_order_commission(ib: IB) -> None:
    [eur] = await ib.qualifyContractsAsync(Forex("EURUSD"))
    trade = ib.placeOrder(eur, MarketOrder("BUY", 20000))
    await wait_for(
        lambda: (
            trade.isDone() and bool(trade.fills) and trade.fills[0].commissionReport.commission > 0
        )
    )
    assert trade.fills[0].commissionReport.commission == 2.0


async def test_two_clients_and_duplicate_client_id(fsim: Simulator, ib_logs: Any) -> None:
    a, b = IB(), IB()
    await a.connectAsync("127.0.0.1", fsim.port, clientId=11, timeout=5)
    await b.connectAsync("127.0.0.1", fsim.port, clientId=12, timeout=5)
    try:
        [aapl] = await a.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        [t] = await a.reqTickersAsync(aapl)
        ta = a.placeOrder(aapl, LimitOrder("BUY", 1, round(t.bid - 3, 2)))
        tb = b.placeOrder(aapl, LimitOrder("BUY", 2, round(t.bid - 4, 2)))
        await wait_for(lambda: ta.orderStatus.status == tb.orderStatus.status == "Submitted")
        assert [o.order.totalQuantity for o in await a.reqOpenOrdersAsync()] == [1]
        assert [o.order.totalQuantity for o in await b.reqOpenOrdersAsync()] == [2]
        every = await a.reqAllOpenOrdersAsync()
        assert sorted(o.order.totalQuantity for o in every) == [1, 2]
        ib_logs.allow("already in use", "API connection failed", "Peer closed")
        dup = IB()
        errors: list[int] = []
        dup.errorEvent += lambda rid, code, text, c: errors.append(code)
        with pytest.raises((ConnectionError, TimeoutError, asyncio.TimeoutError)):
            await dup.connectAsync("127.0.0.1", fsim.port, clientId=11, timeout=2)
        assert 326 in errors
        assert a.isConnected() and (await a.reqCurrentTimeAsync()).year == 2026
    finally:
        a.disconnect()
        b.disconnect()


async def test_unsupported_request_gets_an_error_not_silence(ib: IB, ib_logs: Any) -> None:
    ib_logs.allow("Error 503")
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    result = await asyncio.wait_for(ib.reqFundamentalDataAsync(aapl, "ReportSnapshot"), 2)
    assert not result


async def test_day_order_expires_at_the_close_not_utc_midnight(
    msim: tuple[Simulator, ManualClock],
) -> None:
    from datetime import timedelta

    sim, clock = msim  # 15:00 UTC = 10:00 New York
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=4, timeout=5)
    try:
        [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        [t] = await ib.reqTickersAsync(aapl)
        trade = ib.placeOrder(aapl, LimitOrder("BUY", 1, round(t.bid * 0.5, 2), tif="DAY"))
        await wait_for(lambda: trade.orderStatus.status == "Submitted")
        clock.set(clock.now() + timedelta(hours=5, minutes=59))  # 15:59 New York
        sim.tick()
        assert sim.orders()[-1].status == "Submitted"
        clock.set(clock.now() + timedelta(minutes=1))  # 16:00 New York: the session is over
        sim.tick()
        await wait_for(lambda: trade.orderStatus.status == "Cancelled")
    finally:
        ib.disconnect()


async def test_account_updates_multi_keep_streaming_on_the_account_cycle(
    ib: IB, fsim: Simulator
) -> None:
    await ib.reqAccountUpdatesMultiAsync("DU1234567")
    # ib_async's own start-up subscribed once too; ours is the newest.
    subscribed = {m.req_id for m in fsim.sent() if m.name == "ACCOUNT_UPDATE_MULTI_END"}
    ours = max(r for r in subscribed if r is not None)

    def cycle_rows() -> set[int | None]:
        seen = {m.seq for m in fsim.sent()}
        fsim.push_account_updates()  # IB's account cycle, now
        return {
            m.req_id for m in fsim.sent() if m.name == "ACCOUNT_UPDATE_MULTI" and m.seq not in seen
        }

    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 100))
    await wait_for(trade.isDone)
    assert cycle_rows() == subscribed  # every multi subscription is updated, not only once
    ib.client.cancelAccountUpdatesMulti(ours)
    await wait_for(lambda: any("CANCEL_ACCOUNT_UPDATES_MULTI" in m.name for m in fsim.received()))
    trade = ib.placeOrder(aapl, MarketOrder("SELL", 100))
    await wait_for(trade.isDone)
    assert cycle_rows() == subscribed - {ours}


async def test_executions_time_filter_keeps_that_second_on(
    msim: tuple[Simulator, ManualClock],
) -> None:
    """IB stamps executions in whole seconds; the filter keeps its own second and later."""
    sim, clock = msim
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=4, timeout=5)
    try:
        [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        first = ib.placeOrder(aapl, MarketOrder("BUY", 1))  # fills at T0 (15:00:00)
        await wait_for(lambda: first.isDone() and bool(first.fills))
        clock.advance(2.5)
        second = ib.placeOrder(aapl, MarketOrder("BUY", 1))  # fills at 15:00:02.5
        await wait_for(lambda: second.isDone() and bool(second.fills))
        ids = {first.fills[0].execution.execId: "first", second.fills[0].execution.execId: "2nd"}

        async def since(text: str) -> list[str]:
            fills = await ib.reqExecutionsAsync(ExecutionFilter(time=text))
            return [ids[f.execution.execId] for f in fills]

        assert await since("") == ["first", "2nd"]
        assert await since("20261125-15:00:00") == ["first", "2nd"]
        assert await since("20261125 15:00:01") == ["2nd"]
        assert await since("20261125-15:00:02") == ["2nd"]  # its own second is kept
        assert await since("20261125-15:00:03") == []
    finally:
        ib.disconnect()
