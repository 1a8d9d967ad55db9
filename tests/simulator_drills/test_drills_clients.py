"""Many clients: account updates on IB's cycle, the changed rows at once to subscribers only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from ib_async import IB, LimitOrder, MarketOrder, Stock
from ib_async.ib import StartupFetch

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import FixedClock

T0 = datetime(2026, 11, 25, 15, 0, 0, tzinfo=UTC)  # markets open


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 5000.0

    def __call__(self) -> float:
        return self.t


def cash(ib: IB) -> float:
    return float(next(v.value for v in ib.accountValues() if v.tag == "TotalCashValue"))


async def test_account_values_follow_the_cycle_portfolio_row_at_once(wait: Any) -> None:
    mono = FakeMonotonic()
    sim = Simulator(seed=42, clock=FixedClock(T0), monotonic=mono, account_update_seconds=180)
    await sim.start()
    trader, watcher = IB(), IB()
    try:
        await trader.connectAsync("127.0.0.1", sim.port, clientId=1, timeout=3)
        await watcher.connectAsync("127.0.0.1", sim.port, clientId=2, timeout=3)
        assert cash(watcher) == 1_000_000
        before = len(sim.sent())
        trade = trader.placeOrder(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 10, 1000.0))
        await wait(lambda: trade.orderStatus.status == "Filled")
        await wait(lambda: bool(watcher.portfolio()))  # the changed row at once
        assert watcher.portfolio()[0].position == 10
        sent = [m for m in sim.sent()[before:] if m.client_id == 2]
        assert "ACCT_VALUE" not in {m.name for m in sent}  # no whole account per fill
        assert cash(watcher) == 1_000_000
        mono.t += 180.0  # IB's three-minute cycle
        await wait(lambda: cash(watcher) < 1_000_000)
        assert cash(watcher) == cash(trader)
    finally:
        trader.disconnect()
        watcher.disconnect()
        await sim.stop()


def names(sim: Simulator, client_id: int, since: int) -> list[str]:
    return [m.name for m in sim.sent()[since:] if m.client_id == client_id]


async def test_fill_rows_go_to_subscribers_only_after_the_executions(wait: Any) -> None:
    sim = Simulator(seed=42, clock=FixedClock(T0))
    await sim.start()
    trader, quiet = IB(), IB()
    try:
        await trader.connectAsync("127.0.0.1", sim.port, clientId=1, timeout=3)
        # A client that never asked for account updates and cancels its positions stream.
        fetch = StartupFetch.ORDERS_OPEN | StartupFetch.EXECUTIONS
        await quiet.connectAsync("127.0.0.1", sim.port, clientId=2, timeout=3, fetchFields=fetch)
        quiet.client.cancelPositions()
        await quiet.reqCurrentTimeAsync()  # the cancel has been read
        before = len(sim.sent())
        trade = trader.placeOrder(Stock("AAPL", "SMART", "USD"), MarketOrder("BUY", 3))
        await wait(lambda: trade.orderStatus.status == "Filled" and bool(trader.portfolio()))
        await wait(lambda: "PORTFOLIO_VALUE" in names(sim, 1, before))
        own = names(sim, 1, before)
        assert own.index("POSITION_DATA") > own.index("EXECUTION_DATA")
        assert own.count("PORTFOLIO_VALUE") == own.count("POSITION_DATA") == 1
        assert trader.portfolio()[0].position == 3
        await quiet.reqCurrentTimeAsync()
        assert {"POSITION_DATA", "PORTFOLIO_VALUE"}.isdisjoint(names(sim, 2, before))
        assert quiet.portfolio() == []
    finally:
        trader.disconnect()
        quiet.disconnect()
        await sim.stop()


async def test_fills_of_one_turn_send_one_row_per_holding(wait: Any) -> None:
    sim = Simulator(seed=42, clock=FixedClock(T0))
    await sim.start()
    trader, watcher = IB(), IB()
    try:
        await trader.connectAsync("127.0.0.1", sim.port, clientId=1, timeout=3)
        await watcher.connectAsync("127.0.0.1", sim.port, clientId=2, timeout=3)
        aapl = Stock("AAPL", "SMART", "USD")
        before = len(sim.sent())
        # Held while paused, both orders are answered in one go, so both fill in one turn.
        sim.pause(True)
        trades = [trader.placeOrder(aapl, MarketOrder("BUY", q)) for q in (2, 5)]
        await wait(lambda: [m.name for m in sim.received()].count("PLACE_ORDER") == 2)
        sim.pause(False)
        await wait(lambda: all(t.orderStatus.status == "Filled" for t in trades))
        await wait(lambda: [p.position for p in watcher.portfolio()] == [7])
        await wait(lambda: [p.position for p in watcher.positions()] == [7])
        await trader.reqCurrentTimeAsync()
        await watcher.reqCurrentTimeAsync()
        for client_id in (1, 2):
            got = names(sim, client_id, before)
            assert got.count("POSITION_DATA") == got.count("PORTFOLIO_VALUE") == 1
        assert names(sim, 1, before).count("EXECUTION_DATA") == 2
        assert [p.position for p in trader.portfolio()] == [7]
    finally:
        trader.disconnect()
        watcher.disconnect()
        await sim.stop()


async def test_32_simultaneous_clients(wait: Any) -> None:
    sim = Simulator(seed=42, clock=FixedClock(T0))
    await sim.start()
    clients = [IB() for _ in range(32)]
    try:
        await asyncio.gather(
            *(ib.connectAsync("127.0.0.1", sim.port, clientId=i + 1, timeout=10)
              for i, ib in enumerate(clients))
        )  # fmt: skip
        assert all(ib.isConnected() for ib in clients)
        assert len(sim.drills.status()["clients"]) == 32
        times = await asyncio.gather(*(ib.reqCurrentTimeAsync() for ib in clients))
        assert all(t is not None for t in times)
    finally:
        for ib in clients:
            ib.disconnect()
        await sim.stop()
