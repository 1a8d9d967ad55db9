"""The app under a real uvicorn socket on an ephemeral port: REST and MCP streamable HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from http_helpers import TOKEN

from ibkr_mcp.http_api import build_server


async def test_uvicorn_serves_rest_and_mcp(settings_for: Any, sim: Any) -> None:
    from fastmcp import Client

    settings = settings_for(sim.port, API_TOKEN=TOKEN)
    server = build_server(settings, host="127.0.0.1", port=0)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started or task.done():
                break
            await asyncio.sleep(0.02)
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=base, headers=headers) as client:
            quote = await client.get("/api/market/quote", params={"symbol": "AAPL"})
            assert quote.status_code == 200, quote.text
            assert quote.json()["symbol"] == "AAPL"
            assert quote.headers["x-correlation-id"]
            ready = await client.get("/ready")
            assert ready.status_code == 200
        async with Client(f"{base}/mcp", auth=TOKEN) as mcp:
            tools = await mcp.list_tools()
            assert "get_quote" in {t.name for t in tools}
            result = await mcp.call_tool("get_quote", {"symbol": "MSFT"})
            assert result.structured_content is not None
            assert result.structured_content["symbol"] == "MSFT"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
