"""Gateway test fixtures: an IBGateway connected to the simulator over a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ibkr_mcp.gateway.ib_gateway import IBGateway


@pytest.fixture
async def gw(settings: Any) -> AsyncIterator[IBGateway]:
    """A started, connected gateway (closed after the test)."""
    gateway = IBGateway(settings)
    await gateway.start()
    await gateway.ensure_connected()
    try:
        yield gateway
    finally:
        await gateway.close()
