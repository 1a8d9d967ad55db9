"""Round trips through unmodified ib_async: option chains and details, greeks, futures, indices."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from ib_async import IB, ContFuture, Future, Index, LimitOrder, MarketOrder, Option, Stock

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import ManualClock

GREEK_FIELDS = ("impliedVol", "delta", "optPrice", "pvDividend", "gamma", "vega", "theta",
                "undPrice")  # fmt: skip


@pytest.fixture
async def ib(fsim: Simulator) -> AsyncIterator[IB]:
    client = IB()
    await client.connectAsync("127.0.0.1", fsim.port, clientId=1, timeout=5)
    try:
        yield client
    finally:
        client.disconnect()


async def _atm(ib: IB, symbol: str, step: float) -> float:
    """The listed strike nearest the underlying's last price."""
    [und] = await ib.qualifyContractsAsync(Stock(symbol, "SMART", "USD"))
    [t] = await ib.reqTickersAsync(und)
    return step * round(t.last / step)


def _complete(greeks: Any) -> None:
    assert greeks is not None
    for name in GREEK_FIELDS:
        value = getattr(greeks, name)
        assert value is not None and math.isfinite(value), name


async def test_spx_option_chain_per_exchange_and_trading_class(ib: IB) -> None:
    [spx] = await ib.qualifyContractsAsync(Index("SPX", "CBOE"))
    chains = await ib.reqSecDefOptParamsAsync("SPX", "", "IND", spx.conId)
    rows = {(c.exchange, c.tradingClass): c for c in chains}
    assert set(rows) == {("SMART", "SPX"), ("SMART", "SPXW"), ("CBOE", "SPX"), ("CBOE", "SPXW")}
    weekly, monthly = rows["SMART", "SPXW"], rows["SMART", "SPX"]
    assert weekly.multiplier == "100" and int(weekly.underlyingConId) == spx.conId
    assert "20261127" in weekly.expirations and "20261127" not in monthly.expirations
    assert "20261218" in monthly.expirations and len(monthly.expirations) >= 12
    assert all(s % 5 == 0 for s in weekly.strikes) and len(weekly.strikes) > 200


async def test_stock_option_chain_and_unknown_underlying(ib: IB) -> None:
    [cvx] = await ib.qualifyContractsAsync(Stock("CVX", "SMART", "USD"))
    chains = await ib.reqSecDefOptParamsAsync("CVX", "", "STK", cvx.conId)
    assert {c.tradingClass for c in chains} == {"CVX"} and len(chains) >= 5
    assert len(chains[0].expirations) >= 20 and len(chains[0].strikes) > 10
    assert await ib.reqSecDefOptParamsAsync("CVX", "", "STK", 1) == []


async def test_partial_option_specs_return_matching_contracts(ib: IB, ib_logs: Any) -> None:
    ib_logs.allow("Error 200", "Ambiguous contract")
    calls = await ib.reqContractDetailsAsync(
        Option("AAPL", "20261218", right="C", exchange="SMART")
    )
    assert len(calls) > 5 and {d.contract.right for d in calls} == {"C"}
    details = calls[len(calls) // 2]
    assert details.contract.multiplier == "100" and details.underConId == 265598
    assert details.contract.localSymbol.startswith("AAPL  261218C")
    assert details.underSymbol == "AAPL" and details.underSecType == "STK"
    atm = await _atm(ib, "AAPL", 5)
    month = await ib.reqContractDetailsAsync(Option("AAPL", "202612", atm, exchange="SMART"))
    assert {d.contract.right for d in month} == {"C", "P"}
    assert {d.contract.lastTradeDateOrContractMonth for d in month} >= {"20261218", "20261204"}
    cboe = await ib.reqContractDetailsAsync(Option("AAPL", "20261218", atm, "C", "CBOE"))
    assert [d.contract.exchange for d in cboe] == ["CBOE"]
    assert cboe[0].contract.conId == next(
        d.contract.conId
        for d in month
        if d.contract.right == "C" and d.contract.lastTradeDateOrContractMonth == "20261218"
    )
    both = await ib.reqContractDetailsAsync(Option("SPX", "20261218", 6800, "C", "SMART"))
    assert {d.contract.tradingClass for d in both} == {"SPX", "SPXW"}
    assert await ib.qualifyContractsAsync(Option("SPX", "20261218", 6800, "C", "SMART")) == [None]
    [spxw] = await ib.qualifyContractsAsync(
        Option("SPX", "20261218", 6800, "C", "SMART", tradingClass="SPXW")
    )
    assert spxw.conId > 0 and spxw.localSymbol == "SPXW  261218C06800000"
    spy = await _atm(ib, "SPY", 5)
    [usd] = await ib.qualifyContractsAsync(
        Option("SPY", "20261218", spy, "P", "SMART", currency="USD")
    )
    [bare] = await ib.qualifyContractsAsync(Option("SPY", "20261218", spy, "P", "SMART"))
    assert usd.conId == bare.conId
    off_grid = Option("SPY", "20261218", spy + 1.5, "P", "SMART")
    assert await ib.reqContractDetailsAsync(off_grid) == []


async def test_option_greeks_on_snapshot(ib: IB) -> None:
    strike = await _atm(ib, "SPY", 5)
    [opt] = await ib.qualifyContractsAsync(Option("SPY", "20261218", strike, "C", "SMART"))
    [t] = await ib.reqTickersAsync(opt)
    assert 0 < t.bid < t.ask
    for greeks in (t.bidGreeks, t.askGreeks, t.lastGreeks, t.modelGreeks):
        _complete(greeks)
    model = t.modelGreeks
    assert 0.3 < model.delta < 0.8 and model.gamma > 0 and model.vega > 0 and model.theta < 0
    assert t.bidGreeks.optPrice == t.bid and t.askGreeks.impliedVol > t.bidGreeks.impliedVol
    [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    [und] = await ib.reqTickersAsync(spy)
    assert abs(model.undPrice - (und.bid + und.ask) / 2) < 0.01


async def test_option_greeks_streaming_and_delayed(msim: tuple[Simulator, ManualClock]) -> None:
    sim, clock = msim
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=3, timeout=5)
    try:
        strike = await _atm(ib, "QQQ", 5)
        [opt] = await ib.qualifyContractsAsync(Option("QQQ", "20261218", strike, "P", "SMART"))
        ticker = ib.reqMktData(opt)
        for _ in range(100):
            if ticker.modelGreeks is not None and ticker.bidGreeks is not None:
                break
            await asyncio.sleep(0.01)
        first = ticker.modelGreeks
        _complete(first)
        assert first.delta < 0
        clock.advance(30 * 60)
        for _ in range(100):
            if ticker.modelGreeks != first:
                break
            await asyncio.sleep(0.01)
        assert ticker.modelGreeks != first
        streamed = ticker.modelGreeks
        ib.cancelMktData(opt)
        ib.reqMarketDataType(3)
        [late] = await ib.reqTickersAsync(opt)  # 15 minutes behind: the underlying moved since
        _complete(late.modelGreeks)
        assert late.modelGreeks.undPrice != streamed.undPrice
    finally:
        ib.disconnect()
    kinds = {m.name for m in sim.sent()}
    assert "TICK_OPTION_COMPUTATION" in kinds


async def test_contfut_is_the_front_month_and_expired_months_get_200(ib: IB, ib_logs: Any) -> None:
    ib_logs.allow("Error 200")
    [cont] = await ib.qualifyContractsAsync(ContFuture("ES", "CME"))
    assert cont.secType == "CONTFUT" and cont.localSymbol == "ESZ6"
    [dec] = await ib.qualifyContractsAsync(Future("ES", "202612", "CME"))
    assert dec.conId == cont.conId and dec.secType == "FUT" and dec.multiplier == "50"
    assert dec.lastTradeDateOrContractMonth == "20261218" and dec.tradingClass == "ES"
    assert await ib.reqContractDetailsAsync(Future("ES", "202609", "CME")) == []
    months = await ib.reqContractDetailsAsync(Future("CL", exchange="NYMEX"))
    assert [d.contract.localSymbol for d in months[:3]] == ["CLF7", "CLG7", "CLH7"]
    assert months[0].contractMonth == "202701" and months[0].contract.multiplier == "1000"
    [t] = await ib.reqTickersAsync(dec)
    assert 0 < t.bid < t.ask and (t.ask - t.bid) % 0.25 == 0


async def test_indices_quote_and_chart_but_refuse_orders(ib: IB, ib_logs: Any) -> None:
    ib_logs.allow("Error 201")
    indices = await ib.qualifyContractsAsync(
        *(
            Index(s, e)
            for s, e in (
                ("SPX", "CBOE"),
                ("NDX", "NASDAQ"),
                ("RUT", "RUSSELL"),
                ("VIX", "CBOE"),
                ("DJX", "CBOE"),
            )
        )
    )
    assert all(c is not None and c.secType == "IND" for c in indices)
    tickers = await ib.reqTickersAsync(*indices)
    for t in tickers:
        assert t.last > 0 and t.close > 0 and math.isnan(t.bid) and math.isnan(t.ask)
    bars = await ib.reqHistoricalDataAsync(indices[0], "", "2 D", "1 hour", "TRADES", True)
    assert len(bars) == 8 and all(b.low <= b.close <= b.high for b in bars)
    trade = ib.placeOrder(indices[0], LimitOrder("BUY", 1, 6000))
    for _ in range(100):
        if trade.isDone():
            break
        await asyncio.sleep(0.01)
    assert trade.orderStatus.status in ("Cancelled", "Inactive")
    assert any(e.errorCode == 201 for e in trade.log)


async def test_an_option_and_a_future_fill_with_multipliers(fsim: Simulator, ib: IB) -> None:
    strike = await _atm(ib, "AAPL", 5)
    [opt] = await ib.qualifyContractsAsync(Option("AAPL", "20261218", strike, "C", "SMART"))
    [es] = await ib.qualifyContractsAsync(Future("ES", "202612", "CME"))
    trades = [ib.placeOrder(opt, MarketOrder("BUY", 2)), ib.placeOrder(es, MarketOrder("SELL", 1))]
    for _ in range(200):
        if all(t.isDone() for t in trades):
            break
        await asyncio.sleep(0.01)
    assert [t.orderStatus.status for t in trades] == ["Filled", "Filled"]
    positions = {p.contract.conId: p for p in await ib.reqPositionsAsync()}
    price = trades[0].orderStatus.avgFillPrice
    assert positions[opt.conId].position == 2 and positions[es.conId].position == -1
    assert positions[opt.conId].avgCost == pytest.approx(price * 100, rel=0.01)
    assert positions[opt.conId].contract.secType == "OPT"
    assert positions[opt.conId].contract.lastTradeDateOrContractMonth == "20261218"


async def test_options_expire_at_the_close_itm_into_stock_otm_worthless(
    msim: tuple[Simulator, ManualClock], ib_logs: Any
) -> None:
    ib_logs.allow("Error 200")  # the expired contract no longer resolves
    sim, clock = msim
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=4, timeout=5)
    try:
        [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        [spot] = await ib.reqTickersAsync(aapl)
        itm_k = 5 * math.floor((spot.last - 10) / 5)
        otm_k = 5 * math.ceil((spot.last + 10) / 5)
        itm, otm = await ib.qualifyContractsAsync(
            Option("AAPL", "20261127", itm_k, "C", "SMART"),
            Option("AAPL", "20261127", otm_k, "C", "SMART"),
        )
        trades = [ib.placeOrder(c, MarketOrder("BUY", 1)) for c in (itm, otm)]
        for _ in range(200):
            if all(t.isDone() for t in trades):
                break
            await asyncio.sleep(0.01)
        assert all(t.orderStatus.status == "Filled" for t in trades)
        # Friday 16:01 New York: the weekly expired at the close.
        clock.advance(timedelta(days=2, hours=6, minutes=1).total_seconds())
        sim.tick()
        positions = {p.contract.conId: p.position for p in await ib.reqPositionsAsync()}
        assert positions.get(itm.conId, 0) == 0 and positions.get(otm.conId, 0) == 0
        assert positions[aapl.conId] == 100
        assert sim.account("DU1234567").positions[aapl.conId].avg_cost == itm_k
        assert await ib.reqContractDetailsAsync(Option("AAPL", "20261127", itm_k, "C")) == []
    finally:
        ib.disconnect()


async def test_option_bars_follow_the_underlying_through_the_model(ib: IB) -> None:
    strike = await _atm(ib, "MSFT", 5)
    call, put = await ib.qualifyContractsAsync(
        Option("MSFT", "20261218", strike, "C", "SMART"),
        Option("MSFT", "20261218", strike, "P", "SMART"),
    )
    [msft] = await ib.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"))
    und = await ib.reqHistoricalDataAsync(msft, "", "1 D", "30 mins", "TRADES", True)
    calls = await ib.reqHistoricalDataAsync(call, "", "1 D", "30 mins", "TRADES", True)
    puts = await ib.reqHistoricalDataAsync(put, "", "1 D", "30 mins", "MIDPOINT", True)
    assert len(calls) == len(puts) == len(und) > 0
    for u, c, p in zip(und, calls, puts, strict=True):
        assert c.date == u.date and 0 < c.low <= c.close <= c.high and c.volume > 0
        assert 0 < p.low <= p.open <= p.high and p.volume == -1
    up = und[-1].close > und[0].open
    assert (calls[-1].close > calls[0].open) == up or und[-1].close == und[0].open


async def test_generic_option_ticks_volume_open_interest_and_volatility(ib: IB) -> None:
    [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    strike = await _atm(ib, "SPY", 5)
    [put] = await ib.qualifyContractsAsync(Option("SPY", "20261218", strike, "P", "SMART"))
    und = ib.reqMktData(spy, "100,101,104,106")
    opt = ib.reqMktData(put, "100,101")
    for _ in range(100):
        if und.impliedVolatility == und.impliedVolatility and opt.putOpenInterest > 0:
            break
        await asyncio.sleep(0.01)
    assert 0.05 < und.impliedVolatility < 1 and 0.05 < und.histVolatility < 1
    assert und.callOpenInterest > 0 and und.putOpenInterest > 0 and und.putVolume > 0
    assert opt.putOpenInterest > 0 and opt.putVolume > 0
    assert math.isnan(opt.callOpenInterest) or not opt.callOpenInterest
    ib.cancelMktData(spy)
    ib.cancelMktData(put)
