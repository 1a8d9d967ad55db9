"""``ibkr-mcp cancel-all`` next to a server: it cancels its own client's orders only, and says so.

A runtime with the server's client id places a resting order at the simulator (real socket);
the CLI, a process of its own with its own client id, must name that order as not touched and
point to ``emergency-stop``, and must leave it working (the tool's semantics are unchanged).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from ibkr_mcp.tools import build_registry

REGISTRY = build_registry()
RESTING = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "order_type": "LMT",
           "limit_price": "100.00"}  # fmt: skip


async def _cli(tmp_path: Path, port: int, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ibkr_mcp", *args,
        env={**os.environ, "DATA_DIR": str(tmp_path / "cli"), "IBKR_PORT": str(port),
             "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def _place_as_server(services: Any, key: str, symbol: str = "AAPL") -> int:
    order = {**RESTING, "symbol": symbol}
    preview = (
        await REGISTRY.call("preview_order", order, services=services, surface="internal")
    ).output
    placed = await REGISTRY.call(
        "place_order",
        {**order, "confirmation_token": preview.confirmation_token, "idempotency_key": key},
        services=services,
        surface="internal",
    )
    assert placed.output.sent, placed.output
    return int(placed.output.order_id)


async def test_cancel_all_names_other_clients_orders_it_left(
    settings_for: Any, sim: Any, tmp_path: Path
) -> None:
    from ibkr_mcp.runtime import open_runtime

    settings = settings_for(sim.port, ORDERS_ENABLED=True, PRICE_BAND_PCT=60)
    async with open_runtime(settings, wait_connected=5.0) as services:
        order_id = await _place_as_server(services, "cli-cancel-all-0001")
        code, out, err = await _cli(tmp_path, sim.port, "cancel-all", "--json")
        assert code == 0, err
        data = json.loads(out)
        assert data["cancelled"] == 0 and data["orders"] == []
        message = data["message"]
        assert "NOT touched" in message and f"#{order_id} AAPL" in message, message
        assert f"(client {settings.IBKR_CLIENT_ID})" in message
        assert "ibkr-mcp emergency-stop" in message
        # Another symbol: nothing of it is working elsewhere, so nothing to warn about.
        code, out, err = await _cli(tmp_path, sim.port, "cancel-all", "--symbol", "MSFT", "--json")
        assert code == 0, err
        assert "NOT touched" not in json.loads(out)["message"]
        # The text output says it too, and the order is still working at the broker.
        code, out, err = await _cli(tmp_path, sim.port, "cancel-all")
        assert code == 0, err
        assert "NOT touched" in " ".join(out.split())
        status = await services.gateway.order_status(order_id)
        assert status.status in ("Submitted", "PreSubmitted"), status
