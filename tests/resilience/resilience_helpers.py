"""Helpers for the connection supervisor tests (imported by name: test dirs have no __init__)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

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


def notify(sim: Any, code: int, text: str | None = None, req_id: int = -1) -> None:
    """The simulator's ``error CODE`` drill: IB notice ``code`` to every client, over the socket."""
    sim.drills.error(code, text, req_id)


def count(sim: Any, name: str) -> int:
    """How many requests named ``name`` the simulator received."""
    return sum(1 for m in sim.received() if m.name == name)
