"""HTTP fixtures: the app on the simulator-backed runtime, driven through its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from http_helpers import http_client

from ibkr_mcp.config import Settings


@pytest.fixture
async def client(settings: Settings, services: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Default (safe) settings: no token, orders disabled, simulator connected."""
    async with http_client(settings, services) as c:
        yield c
