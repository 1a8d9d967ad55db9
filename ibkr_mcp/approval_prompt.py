"""Also ask the human in the MCP client about a queued order: an extra layer, never the only one.

On 2025-11-25 connections the server elicits (``ctx.elicit``); on 2026-07-28 connections the
first leg answers with an input-required result and the client retries with the answer (the
retry replays the queued order through its idempotency key: nothing is queued twice). A "no"
denies the approval at once; a "yes" sends nothing, because a client may answer for the human:
the out-of-band approval (``ibkr-mcp approvals approve``) is still required. Clients without
elicitation are not asked; any failure here leaves the approval pending, as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loguru import logger

from ibkr_mcp.errors import IbkrMcpError

if TYPE_CHECKING:
    from fastmcp.tools.base import ToolResult

    from ibkr_mcp.services import Services

_KEY = "approve_order"


def _question(data: dict[str, Any]) -> str:
    order = data.get("order") or {}
    return (
        f"The agent wants to {order.get('side')} {order.get('quantity')} {order.get('symbol')} "
        f"({order.get('order_type')}) on account {order.get('account')}. Do you want this "
        "order? (It still needs your approval outside this chat: `ibkr-mcp approvals approve "
        f"{data['approval_id']}`.)"
    )


def _answer_of(response: Any) -> bool | None:
    """True/False for an accepted yes/no, None for decline/cancel or anything unreadable."""
    action = getattr(response, "action", None)
    if action != "accept":
        return False if action in ("decline", "cancel") else None
    content = getattr(response, "content", None) or getattr(response, "data", None)
    if isinstance(content, dict):
        content = content.get("value")
    return content if isinstance(content, bool) else None


async def _record(
    services: Services, data: dict[str, Any], answer: bool, client: str
) -> dict[str, Any]:
    from ibkr_mcp.safety.approvals import decide

    if answer:
        data["message"] += (
            " The human confirmed it in the client; the out-of-band approval is still required."
        )
        return data
    try:
        await decide(
            services.audit,
            data["approval_id"],
            approve=False,
            by=f"mcp-elicitation:{client}",
            reason="declined in the MCP client",
            now=services.now(),
            correlation_id=data.get("correlation_id"),
        )
    except IbkrMcpError as exc:
        logger.warning("could not record the in-client denial: {}", exc)
        return data
    data["status"] = "DENIED"
    data["message"] = "The human declined this order in the client; nothing was sent."
    return data


async def ask_in_client(services: Services, data: dict[str, Any]) -> dict[str, Any] | ToolResult:
    """Ask (or read the answer of) the in-client prompt for a PENDING_APPROVAL result."""
    from fastmcp.server.dependencies import get_context

    try:
        ctx = get_context()
        session = ctx.session
        capabilities = session.client_capabilities
        params = session.client_params
        client = (params.client_info.name if params and params.client_info else None) or "client"
        modern = bool(getattr(ctx, "_is_modern_protocol", lambda: False)())
        if not modern:
            if data.get("replayed") or capabilities is None or capabilities.elicitation is None:
                return data
            response = await ctx.elicit(_question(data), bool)
            answer = _answer_of(response)
            return data if answer is None else await _record(services, data, answer, client)
        responses = ctx.input_responses
        if responses and ctx.request_state == data["approval_id"] and _KEY in responses:
            answer = _answer_of(responses[_KEY])
            return data if answer is None else await _record(services, data, answer, client)
        if data.get("replayed") or capabilities is None or capabilities.elicitation is None:
            return data
        return _input_required(data)
    except Exception as exc:  # noqa: BLE001 - an extra layer: its failure changes nothing
        logger.debug("no in-client approval prompt: {}", exc)
        return data


def _input_required(data: dict[str, Any]) -> ToolResult:
    from fastmcp.tools.base import InputRequiredToolResult
    from mcp_types import ElicitRequest, ElicitRequestFormParams, InputRequiredResult

    schema = {
        "type": "object",
        "properties": {"value": {"type": "boolean", "title": "Do you want this order?"}},
        "required": ["value"],
    }
    request = ElicitRequest(
        params=ElicitRequestFormParams(message=_question(data), requested_schema=schema)
    )
    return InputRequiredToolResult(
        InputRequiredResult(input_requests={_KEY: request}, request_state=data["approval_id"])
    )
