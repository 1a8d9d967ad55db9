"""Hostile inputs: huge integers, lenient number text, order ids beyond IB's range."""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client

from ibkr_mcp.errors import IbkrMcpError, InvalidInputError
from ibkr_mcp.mcp_server import build_mcp
from ibkr_mcp.tools import build_registry
from ibkr_mcp.tools.registry import drain_audit

REGISTRY = build_registry()
HUGE = 2**64


async def _tool_calls(services: Any, tool: str) -> list[dict[str, Any]]:
    await drain_audit()
    rows = await services.audit.recent(500)
    return [r for r in rows if r.get("kind") == "tool_call" and r.get("tool") == tool]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_out_of_range_integers_are_audited_as_text(services: Any, mode: str) -> None:
    async with Client(build_mcp(services), mode=mode) as client:
        bad_qty = await client.call_tool(
            "preview_order",
            {"symbol": "AAPL", "side": "BUY", "quantity": -(2**63) - 1, "order_type": "MKT"},
            raise_on_error=False,
        )
        bad_symbol = await client.call_tool("get_quote", {"symbol": HUGE}, raise_on_error=False)
    assert bad_qty.is_error and bad_symbol.is_error
    previews = await _tool_calls(services, "preview_order")
    quotes = await _tool_calls(services, "get_quote")
    assert any("-9223372036854775809" in (r["arguments"] or "") for r in previews)
    assert any(str(HUGE) in (r["arguments"] or "") for r in quotes)
    assert all(r["outcome"] == "error:INVALID_INPUT" for r in previews + quotes)


async def test_huge_order_id_over_mcp_is_a_clear_error(services: Any) -> None:
    async with Client(build_mcp(services)) as client:
        result = await client.call_tool(
            "get_order_status", {"order_id": HUGE}, raise_on_error=False
        )
    assert result.is_error
    assert result.content[0].text.startswith("INVALID_INPUT:")
    assert "order_id" in result.content[0].text


def test_error_serialisation_is_safe_for_any_detail() -> None:
    import orjson

    from ibkr_mcp.errors import json_safe

    error = InvalidInputError("x", details={"order_id": HUGE, 3: {HUGE}, "nested": [-(2**70)]})
    body = error.to_dict()
    assert orjson.loads(orjson.dumps(body))["details"]["order_id"] == str(HUGE)
    assert json_safe({1: None}) == {"1": None}


@pytest.mark.parametrize("quantity", ["1_000", "\u0661", " 1 ", "1e3", "", "+1", ".5", "1\n", True])
async def test_lenient_number_text_is_refused(services: Any, quantity: Any) -> None:
    order = {"symbol": "AAPL", "side": "BUY", "quantity": quantity, "order_type": "MKT"}
    with pytest.raises(IbkrMcpError) as info:
        await REGISTRY.call("preview_order", order, services=services, surface="internal")
    assert info.value.code == "INVALID_INPUT"
    assert "quantity" in info.value.message


@pytest.mark.parametrize("quantity", [10, "10", 10.0])
async def test_plain_numbers_and_text_are_accepted(services: Any, quantity: Any) -> None:
    order = {"symbol": "AAPL", "side": "BUY", "quantity": quantity, "order_type": "LMT",
             "limit_price": "150.25"}  # fmt: skip
    result = await REGISTRY.call("preview_order", order, services=services, surface="internal")
    assert result.output.order.quantity == 10
    assert str(result.output.order.limit_price) == "150.25"
