"""An agent cannot approve its own order over MCP; another server's admin client can."""

from __future__ import annotations

from typing import Any

from controls_helpers import place, resting, runtime, sent_orders
from fastmcp import Client

from ibkr_mcp.mcp_server import build_mcp
from ibkr_mcp.safety.approvals import list_approvals
from ibkr_mcp.tools.approval_runner import process_approvals


async def test_the_agent_cannot_approve_its_own_order(controls_settings: Any, sim: Any) -> None:
    settings = controls_settings(REQUIRE_APPROVAL="always", TOOLSETS="read,trade,admin")
    supervisor = controls_settings(
        REQUIRE_APPROVAL="always", TOOLSETS="read,admin", IBKR_CLIENT_ID=9
    )
    async with runtime(settings) as agent:
        queued = await place(agent, resting(1), "self-approve-1")
        assert queued.status == "PENDING_APPROVAL"
        async with Client(build_mcp(agent)) as client:
            own = await client.call_tool(
                "approve_order", {"approval_id": queued.approval_id}, raise_on_error=False
            )
        assert own.is_error
        assert "cannot approve its own order" in own.content[0].text  # type: ignore[union-attr]
        await process_approvals(agent)
        assert sent_orders(sim) == []
        (still,) = await list_approvals(agent.audit, agent.now())
        assert still.state == "pending"
        # A supervisor's MCP client on another server (same audit database) may approve it;
        # the agent's server, which queued it, sends it after every gate again.
        async with runtime(supervisor) as other, Client(build_mcp(other)) as client:
            done = await client.call_tool("approve_order", {"approval_id": queued.approval_id})
        assert done.structured_content["approvals"][0]["state"] == "approved"
        await process_approvals(agent)
        orders = sent_orders(sim)
        assert len(orders) == 1 and orders[0].client_id == settings.IBKR_CLIENT_ID
