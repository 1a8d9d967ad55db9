"""Simulator test fixtures: a started simulator and an ib_async log watchdog."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sim_watch import T0, IbLogWatch, fsim, ib_logs, msim

from ibkr_mcp.simulator import Simulator

__all__ = ["T0", "IbLogWatch", "fsim", "ib_logs", "msim"]


@pytest.fixture
async def ib(fsim: Simulator) -> AsyncIterator[Any]:
    """A connected, unmodified ib_async client (clientId 1)."""
    from ib_async import IB

    client = IB()
    await client.connectAsync("127.0.0.1", fsim.port, clientId=1, timeout=5)
    try:
        yield client
    finally:
        client.disconnect()
