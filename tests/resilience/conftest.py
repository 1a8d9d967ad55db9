"""Fixtures for the connection supervisor tests: fast liveness settings, a runtime, helpers."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "http"))

#: Liveness tuned for tests: probe after 1 s of silence, hung after 0.3 s without an answer.
FAST = {"IBKR_LIVENESS_SECONDS": 1.0, "IBKR_LIVENESS_PROBE_TIMEOUT": 0.3}


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> float:
    """Wait for ``predicate`` (polling the loop); returns the seconds it took, fails on timeout."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not predicate():
        if loop.time() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)
    return loop.time() - start


def notify(sim: Any, code: int, text: str, req_id: int = -1) -> None:
    """Have the simulator send IB notice ``code`` to every connected client (over the socket)."""
    for session in list(sim._sessions.values()):  # until the sim-ctl drills land (issue 12)
        session.error(req_id, code, text)
    sim.flush()


def count(sim: Any, name: str) -> int:
    """How many requests named ``name`` the simulator received."""
    return sum(1 for m in sim.received() if m.name == name)


@pytest.fixture
async def fast_services(settings_for: Any, sim: Any) -> AsyncIterator[Any]:
    """The runtime against the simulator with fast liveness settings."""
    from ibkr_mcp.runtime import open_runtime

    async with open_runtime(settings_for(sim.port, **FAST), wait_connected=5.0) as svc:
        assert svc.gateway.connected
        yield svc
