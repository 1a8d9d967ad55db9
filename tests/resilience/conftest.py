"""Fixtures for the connection supervisor tests: a runtime with fast liveness settings."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "http"))

from resilience_helpers import FAST


@pytest.fixture
async def fast_services(settings_for: Any, sim: Any) -> AsyncIterator[Any]:
    """The runtime against the simulator with fast liveness settings."""
    from ibkr_mcp.runtime import open_runtime

    async with open_runtime(settings_for(sim.port, **FAST), wait_connected=5.0) as svc:
        assert svc.gateway.connected
        yield svc
