"""Fixtures for order tests: services with orders enabled, and helpers reading the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ibkr_mcp.config import Settings


@pytest.fixture
def enabled_settings(settings_for: Any, sim: Any) -> Settings:
    """Orders enabled, paper mode, default limits."""
    return settings_for(sim.port, ORDERS_ENABLED=True)


@pytest.fixture
async def enabled(enabled_settings: Settings) -> AsyncIterator[Any]:
    """A runtime with orders enabled, connected to the simulator."""
    from ibkr_mcp.runtime import open_runtime

    async with open_runtime(enabled_settings, wait_connected=5.0) as svc:
        assert svc.gateway.connected
        yield svc
