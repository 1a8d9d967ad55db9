"""Many clients: account updates on IB's cycle, the changed portfolio row at once, 32 clients."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from ib_async import IB, LimitOrder, Stock

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
