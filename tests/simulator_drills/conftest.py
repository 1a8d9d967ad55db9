"""Drill fixtures: a simulator with its control channel in a short temp dir, ib_async helpers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ib_async import IB

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import FixedClock

#: Wednesday 2026-11-25 15:00 UTC = 10:00 New York: markets open.
T0 = datetime(2026, 11, 25, 15, 0, 0, tzinfo=UTC)


async def _wait_for(cond: Callable[[], Any], timeout: float = 3.0) -> None:
    """Poll ``cond`` until true (the drills are driven by the real loop's timers)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture
def wait() -> Callable[..., Any]:
    """``await wait(cond, timeout=3.0)``: poll until ``cond()`` is true."""
    return _wait_for


@pytest.fixture
def control_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short directory for control sockets (Unix socket paths are limited to ~100 bytes)."""
    return tmp_path_factory.mktemp("ctl")


@pytest.fixture
async def dsim(control_dir: Path) -> AsyncIterator[Simulator]:
    """A simulator with a control channel, fixed clock, short reset; no fault may outlive it."""
    sim = Simulator(seed=42, clock=FixedClock(T0), control=control_dir, reset_refuse_seconds=0.3)
    await sim.start()
    try:
        yield sim
        assert sim.drills.active() == {}, f"a test left a fault active: {sim.drills.active()}"
    finally:
        sim.drills.clear()
        await sim.stop()


@pytest.fixture
async def connect(dsim: Simulator) -> AsyncIterator[Callable[..., Any]]:
    """``await connect(client_id)``: an ib_async IB connected to the drill simulator."""
    clients: list[IB] = []

    async def make(client_id: int = 1, **kw: Any) -> IB:
        ib = IB()
        await ib.connectAsync("127.0.0.1", dsim.port, clientId=client_id, timeout=3, **kw)
        clients.append(ib)
        return ib

    yield make
    for ib in clients:
        ib.disconnect()
