"""Gateway absent at start, then started: tools recover without restarting the server."""

from __future__ import annotations

import asyncio
from typing import Any

from fastmcp import Client

from ibkr_mcp.mcp_server import build_mcp
from ibkr_mcp.runtime import open_runtime


async def test_tools_recover_when_gateway_appears(settings_for: Any, unused_port: int) -> None:
    from ibkr_mcp.simulator import Simulator

    settings = settings_for(unused_port)
    async with open_runtime(settings, wait_connected=0) as services:
        mcp = build_mcp(services)
        async with Client(mcp) as client:
            health = (await client.call_tool("get_health", {})).structured_content
            assert health["ready"] is False
            assert health["summary"].startswith("Not ready")
            down = await client.call_tool("get_quote", {"symbol": "AAPL"}, raise_on_error=False)
            assert down.is_error
            assert down.content[0].text.startswith("GATEWAY_UNAVAILABLE:")
            assert "--sim" in down.content[0].text

            simulator = Simulator(seed=42)
            await simulator.start("127.0.0.1", unused_port)
            try:
                result = None
                for _ in range(100):
                    result = await client.call_tool(
                        "get_quote", {"symbol": "AAPL"}, raise_on_error=False
                    )
                    if not result.is_error:
                        break
                    await asyncio.sleep(0.1)
                assert result is not None and not result.is_error, result.content[0].text
                assert result.structured_content["source"] == "simulator"
            finally:
                await simulator.stop()
