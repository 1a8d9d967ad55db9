"""An approval's order terms as JSON numbers on every MCP surface (admin tools and resource)."""

from __future__ import annotations

import json
from typing import Any

from controls_helpers import place, resting, runtime
from fastmcp import Client

from ibkr_mcp.mcp_server import build_mcp


async def test_approval_order_terms_are_numbers(controls_settings: Any, sim: Any) -> None:
    settings = controls_settings(REQUIRE_APPROVAL="always", TOOLSETS="read,trade,admin")
    async with runtime(settings) as server:
        queued = await place(server, resting(5), "approve-num-0001")
        assert queued.status == "PENDING_APPROVAL"
        async with Client(build_mcp(server)) as client:
            listed = (await client.call_tool("list_approvals", {})).structured_content
            resource = (await client.read_resource("ibkr://approvals/pending"))[0].text
        for approvals in (listed["approvals"], json.loads(resource)["approvals"]):
            order = approvals[0]["order"]
            assert (order["quantity"], order["limit_price"]) == (5, 100)
