"""Read-only checks against a REAL IB Gateway / TWS (deselected by default; `-m integration`).

Uses IBKR_HOST / IBKR_PORT / IBKR_CLIENT_ID from the environment (default 127.0.0.1:4002, the
paper IB Gateway). Never places, modifies or cancels an order.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ibkr_mcp.config import load_settings
from ibkr_mcp.runtime import open_runtime
from ibkr_mcp.tools import build_registry

pytestmark = pytest.mark.integration

REGISTRY = build_registry()


@pytest.fixture
async def live_services(tmp_path: Path) -> Any:
    env = {
        k: os.environ[k] for k in ("IBKR_HOST", "IBKR_PORT", "IBKR_CLIENT_ID") if k in os.environ
    }
    settings = load_settings(_env_file=None, DATA_DIR=tmp_path, **env)
    async with open_runtime(settings, wait_connected=10) as services:
        if not services.gateway.connected:
            pytest.skip(f"no IB Gateway at {settings.IBKR_HOST}:{settings.IBKR_PORT}")
        yield services


async def test_health_quote_and_account(live_services: Any) -> None:
    health = (
        await REGISTRY.call("get_health", {}, services=live_services, surface="internal")
    ).output
    assert health.connected and health.broker == "gateway"
    assert health.accounts
    quote = (
        await REGISTRY.call(
            "get_quote", {"symbol": "SPY"}, services=live_services, surface="internal"
        )
    ).output
    assert quote.market_data_type in ("live", "frozen", "delayed", "delayed_frozen")
    summary = (
        await REGISTRY.call("get_account_summary", {}, services=live_services, surface="internal")
    ).output
    assert summary.net_liquidation is not None
