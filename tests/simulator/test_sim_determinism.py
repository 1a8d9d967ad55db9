"""Same seed, same clock, same requests: identical message streams."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from ib_async import IB, LimitOrder, MarketOrder, Stock

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import FixedClock

T0 = datetime(2026, 11, 25, 15, 0, 0, tzinfo=UTC)


async def _session() -> tuple[list[tuple[int, int, int, str, int | None]], list[str]]:
    sim = Simulator(seed=7, clock=FixedClock(T0))
    await sim.start()
    ib = IB()
    raw = bytearray()
    ib.client.conn.hasData += raw.extend
    try:
        await ib.connectAsync("127.0.0.1", sim.port, clientId=1, timeout=5)
        [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        [t] = await ib.reqTickersAsync(aapl)
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 10))
        ib.placeOrder(aapl, LimitOrder("BUY", 10, round(t.bid - 1, 2)))
        while not trade.isDone():
            await asyncio.sleep(0.01)
        await ib.reqExecutionsAsync()
        await ib.reqHistoricalDataAsync(aapl, "", "1 D", "30 mins", "TRADES", False)
    finally:
        ib.disconnect()
        await sim.stop()
    return [tuple(m) for m in sim.sent()], [raw.hex()]


async def test_same_seed_and_clock_give_identical_streams() -> None:
    first = await _session()
    second = await _session()
    assert first[0] == second[0]
    assert first[1] == second[1]  # byte for byte, execIds and permIds included


async def test_all_concurrent_requests_arrive_before_the_first_tick(fsim: Simulator) -> None:
    ib = IB()
    await ib.connectAsync("127.0.0.1", fsim.port, clientId=2, timeout=5)
    try:
        stocks = [Stock(s, "SMART", "USD") for s in ("AAPL", "MSFT", "IBM", "JPM", "XOM")]
        stocks = await ib.qualifyContractsAsync(*stocks)
        tickers = await ib.reqTickersAsync(*stocks)
        assert all(t.bid > 0 for t in tickers)
    finally:
        ib.disconnect()
    reqs = [m.seq for m in fsim.received() if m.name == "REQ_MKT_DATA"]
    ticks = [m.seq for m in fsim.sent() if m.name == "TICK_PRICE"]
    assert len(reqs) == 5 and ticks
    # ib_async writes all five in one loop iteration: all are logged before any tick is sent
    assert max(reqs) < min(ticks)


async def test_a_restarted_simulator_never_reuses_execution_or_perm_ids() -> None:
    """IB never reuses them; an audit kept across runs would take a new fill for an old one."""
    from datetime import timedelta

    async def run(start: datetime) -> tuple[str, int]:
        sim = Simulator(seed=7, clock=FixedClock(start))
        await sim.start()
        ib = IB()
        try:
            await ib.connectAsync("127.0.0.1", sim.port, clientId=1, timeout=5)
            [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
            trade = ib.placeOrder(aapl, MarketOrder("BUY", 1))
            while not (trade.isDone() and trade.fills):
                await asyncio.sleep(0.01)
            return trade.fills[0].execution.execId, trade.order.permId
        finally:
            ib.disconnect()
            await sim.stop()

    first = await run(T0)
    restarted = await run(T0 + timedelta(seconds=30))  # same seed, a later start
    assert first[0] != restarted[0] and first[1] != restarted[1]
    assert await run(T0) == first  # the same start on a fixed clock: the same ids
    assert 0 < restarted[1] < 2**31  # a perm id fits IB's 32-bit field
