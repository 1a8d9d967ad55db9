"""Helpers for the order-book tests: connecting either library, waiting, stepping the clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from sim_watch import T0  # noqa: F401 - the order tests import T0 from here

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import ManualClock


async def wait_for(cond: Callable[[], Any], timeout: float = 3.0) -> None:
    """Poll until ``cond()`` (socket round trips need the loop; time itself is simulated)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


async def connect(lib: ModuleType, sim: Simulator, client_id: int) -> Any:
    """A connected, unmodified client of ``lib`` (ib_async or ib_insync)."""
    ib = lib.IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=client_id, timeout=5)
    return ib


async def step(sim: Simulator, clock: ManualClock, seconds: float, ticks: int = 1) -> None:
    """Advance simulated time in ``ticks`` equal steps, evaluating after each."""
    for _ in range(ticks):
        clock.advance(seconds)
        sim.tick()
    await asyncio.sleep(0.01)


def order(lib: ModuleType, **kw: Any) -> Any:
    """An ``Order`` of the library (unknown fields raise, as they should)."""
    return lib.Order(**kw)


async def stock(lib: ModuleType, ib: Any, symbol: str) -> Any:
    """A qualified stock contract."""
    [c] = await ib.qualifyContractsAsync(lib.Stock(symbol, "SMART", "USD"))
    return c


def sent_names(sim: Simulator, client_id: int) -> list[str]:
    """Names of the messages the simulator sent to one client."""
    return [m.name for m in sim.sent() if m.client_id == client_id]
