"""The MCP server over an in-memory fastmcp.Client, on both protocol versions, vs the simulator."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from fastmcp import Client

from ibkr_mcp.mcp_server import build_mcp

MODES = ["auto", "legacy"]
EXPECTED_PROTOCOL = {"auto": "2026-07-28", "legacy": "2025-11-25"}
READ_TOOLS = {
    "get_health": {},
    "get_quote": {"symbol": "AAPL"},
    "get_quotes": {"symbols": ["AAPL", "MSFT", "SPY"]},
    "get_bars": {"symbol": "SPY", "duration": "5 D", "bar_size": "1 day"},
    "search_contracts": {"pattern": "APP"},
    "get_contract_details": {"symbol": "AAPL"},
    "get_account_summary": {},
    "get_positions": {},
    "get_pnl": {},
    "get_open_orders": {},
    "get_executions": {},
}


@pytest.fixture(params=MODES)
async def client(request: pytest.FixtureRequest, services: Any) -> Any:
    mcp = build_mcp(services)
    async with Client(mcp, mode=request.param) as c:
        assert c.protocol_version == EXPECTED_PROTOCOL[request.param]
        yield c


async def call(client: Any, name: str, args: dict[str, Any]) -> Any:
    result = await client.call_tool(name, args, raise_on_error=False)
    return result


async def test_tool_list(client: Any, snapshot: Any) -> None:
    tools = await client.list_tools()
    listing = [
        {
            "name": t.name,
            "description": t.description,
            "input_schema": t.input_schema,
            "output_schema": t.output_schema,
            "annotations": t.annotations.model_dump(exclude_none=True),
        }
        for t in tools
    ]
    names = [t["name"] for t in listing]
    assert set(READ_TOOLS) | {
        "get_order_status",
        "preview_order",
        "place_order",
        "cancel_order",
        "modify_order",
        "close_position",
        "cancel_all_orders",
        "wait_for_order",
        "get_option_chain",
        "get_option_quotes",
    } == set(names)
    for t in listing:
        # Arguments are the model's fields at top level, never nested under one parameter.
        assert "params" not in t["input_schema"]["properties"]
        assert t["input_schema"].get("additionalProperties") is False
    place = next(t for t in listing if t["name"] == "place_order")
    assert place["annotations"]["destructive_hint"] is True
    assert place["annotations"]["read_only_hint"] is False
    quote = next(t for t in listing if t["name"] == "get_quote")
    assert quote["annotations"]["read_only_hint"] is True
    assert listing == snapshot


#: The whole tools/list an agent loads into its context (every tool, read and trade).
TOOL_LIST_BUDGET = 25_000


async def test_tool_list_fits_the_context_budget(client: Any) -> None:
    import orjson

    tools = await client.list_tools()
    size = len(orjson.dumps([t.model_dump(mode="json", exclude_none=True) for t in tools]))
    assert size <= TOOL_LIST_BUDGET, f"tools/list is {size} characters"


@pytest.mark.parametrize("tool", sorted(READ_TOOLS))
async def test_every_read_tool_answers(client: Any, tool: str) -> None:
    result = await call(client, tool, READ_TOOLS[tool])
    assert not result.is_error, result.content[0].text
    data = result.structured_content
    assert isinstance(data, dict) and data
    assert json.loads(result.content[0].text) == data


async def test_quote_is_labelled_and_from_simulator(client: Any) -> None:
    result = await call(client, "get_quote", {"symbol": "aapl"})
    q = result.structured_content
    assert q["symbol"] == "AAPL"
    assert q["source"] == "simulator"
    assert q["market_data_type"] in ("live", "delayed", "frozen", "delayed_frozen")
    assert q["timestamp"].endswith("+00:00") or q["timestamp"].endswith("Z")
    assert Decimal(q["bid"]) < Decimal(q["ask"])


async def test_health_says_ready_paper_orders_disabled(client: Any) -> None:
    h = (await call(client, "get_health", {})).structured_content
    assert h["ready"] is True
    assert h["broker"] == "simulator"
    assert h["summary"] == "System ready (paper mode, orders disabled)"
    assert h["accounts"] == ["DU1234567"]
    assert h["trading_mode"] == "paper" and h["orders_enabled"] is False
    assert h["safety"]


@pytest.mark.parametrize(
    ("tool", "args", "field"),
    [
        ("get_quote", {}, "symbol"),
        ("get_quote", {"symbol": "AAPL", "bogus": 1}, "bogus"),
        ("get_quote", {"symbol": "AA PL$"}, "symbol"),
        ("get_bars", {"symbol": "SPY", "duration": "5 days"}, "duration"),
        ("get_bars", {"symbol": "SPY", "bar_size": "7 mins"}, "bar_size"),
        ("get_quotes", {"symbols": []}, "symbols"),
        ("get_order_status", {"order_id": 0}, "order_id"),
        ("preview_order", {"symbol": "AAPL", "side": "BUY", "quantity": 10}, "limit_price"),
        (
            "preview_order",
            {"symbol": "AAPL", "side": "HOLD", "quantity": 1, "order_type": "MKT"},
            "side",
        ),
        (
            "preview_order",
            {"symbol": "AAPL", "side": "BUY", "quantity": -1, "order_type": "MKT"},
            "quantity",
        ),
    ],
)
async def test_bad_input_names_the_field(
    client: Any, tool: str, args: dict[str, Any], field: str
) -> None:
    result = await call(client, tool, args)
    assert result.is_error
    text = result.content[0].text
    assert text.startswith("INVALID_INPUT:")
    assert field in text
    assert "Traceback" not in text


async def test_unknown_symbol_is_contract_not_found(client: Any) -> None:
    result = await call(client, "get_quote", {"symbol": "ZZZZQ"})
    assert result.is_error
    assert result.content[0].text.startswith("CONTRACT_NOT_FOUND:")
    assert "Remedy:" in result.content[0].text


async def test_unmanaged_account_rejected(client: Any) -> None:
    result = await call(client, "get_positions", {"account": "DU9999999"})
    assert result.is_error
    assert result.content[0].text.startswith("ACCOUNT_NOT_MANAGED:")
    assert "DU1234567" in result.content[0].text


async def test_get_quotes_reports_per_symbol_errors(client: Any) -> None:
    data = (await call(client, "get_quotes", {"symbols": "AAPL,ZZZZQ,MSFT"})).structured_content
    assert [q["symbol"] for q in data["quotes"]] == ["AAPL", "MSFT"]
    assert data["errors"][0]["symbol"] == "ZZZZQ"
    assert data["errors"][0]["code"] == "CONTRACT_NOT_FOUND"


async def test_resources(client: Any) -> None:
    resources = {str(r.uri) for r in await client.list_resources()}
    assert {
        "ibkr://account/summary",
        "ibkr://positions",
        "ibkr://orders/open",
        "ibkr://safety/policy",
        "ibkr://audit/recent",
    } <= resources
    templates = {t.uri_template for t in await client.list_resource_templates()}
    assert "ibkr://contract/{symbol}" in templates
    for uri in sorted(resources):
        contents = await client.read_resource(uri)
        assert contents[0].mime_type == "application/json"
        json.loads(contents[0].text)
    contract = json.loads((await client.read_resource("ibkr://contract/AAPL"))[0].text)
    assert contract["details"][0]["contract"]["symbol"] == "AAPL"
    policy = json.loads((await client.read_resource("ibkr://safety/policy"))[0].text)
    assert policy["orders_enabled"] is False


async def test_prompts(client: Any) -> None:
    names = {p.name for p in await client.list_prompts()}
    assert names == {"pre_trade_checklist", "portfolio_review", "end_of_day_summary"}
    msg = await client.get_prompt("pre_trade_checklist", {"symbol": "aapl"})
    text = msg.messages[0].content.text
    assert "AAPL" in text and "preview_order" in text
    review = await client.get_prompt("portfolio_review", {})
    assert "get_positions" in review.messages[0].content.text
    eod = await client.get_prompt("end_of_day_summary", {})
    assert "get_executions" in eod.messages[0].content.text


async def test_preview_then_place_is_a_dry_run_by_default(client: Any, sim: Any) -> None:
    order = {"symbol": "AAPL", "side": "BUY", "quantity": 10, "order_type": "MKT"}
    preview = (await call(client, "preview_order", order)).structured_content
    assert preview["confirmation_token"]
    assert preview["would_send"] is False
    assert preview["refusals"] == []
    assert preview["passed"].split(": ", 1)[1].startswith("trading_mode")
    placed = await call(
        client,
        "place_order",
        {
            **order,
            "confirmation_token": preview["confirmation_token"],
            "idempotency_key": "demo-0001",
        },
    )
    assert not placed.is_error, placed.content[0].text
    data = placed.structured_content
    assert data["status"] == "SIMULATED"
    assert data["sent"] is False
    assert "NOTHING" in data["message"].upper()
    # Asserted on the simulator's side: nothing but what-if previews ever reached it.
    assert [o for o in sim.orders() if not getattr(o, "what_if", False)] == []


async def test_fx_quote(client: Any) -> None:
    result = await call(client, "get_quote", {"symbol": "EUR.USD", "sec_type": "CASH"})
    assert not result.is_error, result.content[0].text
    q = result.structured_content
    assert (q["symbol"], q["currency"]) == ("EUR", "USD")
    assert Decimal(q["bid"]) < Decimal(q["ask"])
