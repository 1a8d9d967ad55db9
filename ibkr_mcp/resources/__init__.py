"""MCP resources: account, positions, orders, safety policy, approvals, audit, contracts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ibkr_mcp.errors import IbkrMcpError, InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from fastmcp import FastMCP

    from ibkr_mcp.services import ServicesHandle
    from ibkr_mcp.tool_catalog import LazyRegistry
    from ibkr_mcp.tools.registry import Registry

JSON = "application/json"


def _json(data: Any) -> str:
    return orjson.dumps(data, default=str, option=orjson.OPT_INDENT_2).decode()


def register_resources(
    mcp: FastMCP[Any], registry: Registry | LazyRegistry, handle: ServicesHandle
) -> None:
    """Register every resource on ``mcp``; tool-backed ones run through the registry pipeline."""
    from fastmcp.exceptions import ResourceError
    from mcp.shared.exceptions import MCPError

    from ibkr_mcp.mcp_server import INVALID_PARAMS, RESOURCE_NOT_FOUND

    async def via_tool(tool: str, arguments: dict[str, Any]) -> str:
        try:
            services = await handle.get()
            result = await registry.call(tool, arguments, services=services, surface="mcp")
        except (NotFoundError, InvalidInputError) as exc:
            # The URI names nothing (an unknown contract) or nothing valid: the spec's codes.
            code = RESOURCE_NOT_FOUND if isinstance(exc, NotFoundError) else INVALID_PARAMS
            raise MCPError(code=code, message=str(exc), data=exc.to_dict()) from None
        except IbkrMcpError as exc:
            raise ResourceError(str(exc)) from None
        return _json(result.output.model_dump(mode="json"))

    @mcp.resource("ibkr://account/summary", mime_type=JSON, description="Account summary.")
    async def account_summary() -> str:
        return await via_tool("get_account_summary", {})

    @mcp.resource("ibkr://positions", mime_type=JSON, description="Current positions.")
    async def positions() -> str:
        return await via_tool("get_positions", {})

    @mcp.resource("ibkr://orders/open", mime_type=JSON, description="Working orders.")
    async def open_orders() -> str:
        return await via_tool("get_open_orders", {})

    @mcp.resource(
        "ibkr://safety/policy", mime_type=JSON, description="Active safety gates and limits."
    )
    async def safety_policy() -> str:
        from ibkr_mcp.safety.policy import describe_policy

        return _json(describe_policy(handle.settings))

    @mcp.resource("ibkr://audit/recent", mime_type=JSON, description="The 50 newest audit records.")
    async def audit_recent() -> str:
        try:
            services = await handle.get()
            rows = await services.audit.recent(50)
        except IbkrMcpError as exc:
            raise ResourceError(str(exc)) from None
        return _json(rows)

    @mcp.resource(
        "ibkr://approvals/pending",
        mime_type=JSON,
        description="Orders waiting for a human's approval (and their expiry).",
    )
    async def approvals_pending() -> str:
        from ibkr_mcp.safety.approvals import list_approvals

        try:
            services = await handle.get()
            found = await list_approvals(
                services.audit, services.now(), states=frozenset({"pending", "approved"})
            )
        except IbkrMcpError as exc:
            raise ResourceError(str(exc)) from None
        return _json({"approvals": [a.to_dict() for a in found]})

    @mcp.resource(
        "ibkr://contract/{symbol}", mime_type=JSON, description="Contract details of a symbol."
    )
    async def contract(symbol: str) -> str:
        return await via_tool("get_contract_details", {"symbol": symbol})
