"""IB's decoder reads every instrument message exactly; ib_insync round trips; determinism."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ib_async import IB, ContFuture, Index, MarketOrder, Option, Stock

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import FixedClock

T0 = datetime(2026, 11, 25, 15, 0, 0, tzinfo=UTC)

Decode = Callable[[bytes, int], list[tuple[str, tuple[Any, ...]]]]


async def _instrument_session(
    ib: Any, option: Any, index: Any, cont: Any, stock: Any, market_order: Any
) -> None:
    [spx] = await ib.qualifyContractsAsync(index("SPX", "CBOE"))
    await ib.reqSecDefOptParamsAsync("SPX", "", "IND", spx.conId)
    [und] = await ib.qualifyContractsAsync(stock("IBM", "SMART", "USD"))
    [t] = await ib.reqTickersAsync(und)
    strike = 5 * round(t.last / 5)
    await ib.reqContractDetailsAsync(option("IBM", "20261218", right="C", exchange="SMART"))
    [opt] = await ib.qualifyContractsAsync(option("IBM", "20261218", strike, "P", "SMART"))
    [quote] = await ib.reqTickersAsync(opt)
    assert quote.modelGreeks is not None and quote.bidGreeks is not None
    ticker = ib.reqMktData(opt, "100,101")
    ib.reqMktData(und, "100,101,104,106")
    await asyncio.sleep(0.25)  # a few simulator ticks stream (unchanged values are not resent)
    ib.cancelMktData(opt)
    ib.cancelMktData(und)
    ib.reqMarketDataType(4)
    await ib.reqTickersAsync(opt, spx)
    trade = ib.placeOrder(opt, market_order("BUY", 2))
    for _ in range(200):
        if trade.isDone():
            break
        await asyncio.sleep(0.01)
    assert trade.orderStatus.status == "Filled"
    positions = await ib.reqPositionsAsync()
    assert any(p.contract.conId == opt.conId and p.contract.right == "P" for p in positions)
    fills = await ib.reqExecutionsAsync()
    assert any(f.contract.secType == "OPT" for f in fills)
    await ib.reqCompletedOrdersAsync(False)
    [front] = await ib.qualifyContractsAsync(cont("ES", "CME"))
    await ib.reqHistoricalDataAsync(spx, "", "1 D", "1 hour", "TRADES", True)
    await ib.reqTickersAsync(front)
    assert ticker.modelGreeks is not None and front.localSymbol == "ESZ6"


async def test_ibapi_decoder_reads_every_instrument_message(
    fsim: Simulator, decode_all: Decode
) -> None:
    ib = IB()
    raw = bytearray()
    ib.client.conn.hasData += raw.extend
    await ib.connectAsync("127.0.0.1", fsim.port, clientId=1, timeout=5)
    try:
        await _instrument_session(ib, Option, Index, ContFuture, Stock, MarketOrder)
    finally:
        ib.disconnect()
    calls = decode_all(bytes(raw), 178)
    names = {name for name, _ in calls}
    assert {"securityDefinitionOptionParameter", "securityDefinitionOptionParameterEnd",
            "tickOptionComputation", "contractDetails"} <= names  # fmt: skip
    ticks = {args[1] for name, args in calls if name == "tickOptionComputation"}
    assert {10, 11, 12, 13, 80, 81, 82, 83} <= ticks
    details = [args[1] for name, args in calls if name == "contractDetails"]
    opt = next(d for d in details if d.contract.secType == "OPT")
    assert opt.contract.multiplier == "100" and opt.underSymbol == "IBM"
    assert opt.realExpirationDate == "20261218" and opt.contractMonth == "202612"
    assert {"position", "execDetails", "updatePortfolio", "completedOrder"} <= names
    held = [args for name, args in calls if name == "position" and args[1].secType == "OPT"]
    assert held and held[0][1].multiplier == "100" and held[0][1].strike > 0
    cont = next(d for d in details if d.contract.secType == "CONTFUT")
    assert cont.contract.localSymbol == "ESZ6" and cont.contract.multiplier == "50"


async def test_ib_insync_round_trip_at_version_176(fsim: Simulator, decode_all: Decode) -> None:
    from ib_insync import IB as InsyncIB
    from ib_insync import ContFuture as InsyncContFuture
    from ib_insync import Index as InsyncIndex
    from ib_insync import MarketOrder as InsyncMarketOrder
    from ib_insync import Option as InsyncOption
    from ib_insync import Stock as InsyncStock

    ib = InsyncIB()
    raw = bytearray()
    ib.client.conn.hasData += raw.extend
    await ib.connectAsync("127.0.0.1", fsim.port, clientId=5, timeout=5)
    try:
        assert ib.client.serverVersion() == 176
        await _instrument_session(
            ib, InsyncOption, InsyncIndex, InsyncContFuture, InsyncStock, InsyncMarketOrder
        )
        [spx] = await ib.qualifyContractsAsync(InsyncIndex("SPX", "CBOE"))
        chains = await ib.reqSecDefOptParamsAsync("SPX", "", "IND", spx.conId)
        assert {c.tradingClass for c in chains} == {"SPX", "SPXW"}
    finally:
        ib.disconnect()
    decode_all(bytes(raw), 176)


async def _option_stream(seed: int) -> tuple[list[tuple[Any, ...]], str]:
    sim = Simulator(seed=seed, clock=FixedClock(T0))
    await sim.start()
    ib = IB()
    raw = bytearray()
    ib.client.conn.hasData += raw.extend
    try:
        await ib.connectAsync("127.0.0.1", sim.port, clientId=1, timeout=5)
        [spx] = await ib.qualifyContractsAsync(Index("SPX", "CBOE"))
        await ib.reqSecDefOptParamsAsync("SPX", "", "IND", spx.conId)
        [opt] = await ib.qualifyContractsAsync(
            Option("SPX", "20261218", 6800, "C", "SMART", tradingClass="SPXW")
        )
        await ib.reqTickersAsync(opt)
        ib.reqMarketDataType(3)
        await ib.reqTickersAsync(opt)
    finally:
        ib.disconnect()
        await sim.stop()
    return [tuple(m) for m in sim.sent()], raw.hex()


async def test_same_seed_and_clock_give_the_same_option_ticks() -> None:
    first = await _option_stream(7)
    second = await _option_stream(7)
    assert first == second  # byte for byte, greeks included
    other = await _option_stream(8)
    assert other[1] != first[1]  # another seed: another volatility surface and prices
