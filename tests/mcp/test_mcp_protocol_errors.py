"""Protocol details: the spec's error codes, structured error results, prompt argument texts."""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client
from mcp.shared.exceptions import MCPError

from ibkr_mcp.mcp_server import build_mcp


@pytest.fixture(params=["auto", "legacy"])
async def client(request: pytest.FixtureRequest, services: Any) -> Any:
    async with Client(build_mcp(services), mode=request.param) as c:
        yield c


@pytest.mark.parametrize("uri", ["ibkr://contract/NOPE", "ibkr://no/such/thing"])
async def test_unknown_resource_is_32002(client: Any, uri: str) -> None:
    with pytest.raises(MCPError) as info:
        await client.read_resource(uri)
    assert info.value.error.code == -32002


async def test_prompt_without_required_argument_is_32602(client: Any) -> None:
    with pytest.raises(MCPError) as info:
        await client.get_prompt("pre_trade_checklist", {})
    assert info.value.error.code == -32602
    assert "symbol" in info.value.error.message


async def test_unknown_tool_is_a_protocol_error(client: Any) -> None:
    with pytest.raises(MCPError) as info:
        await client.call_tool("no_such_tool", {})
    assert info.value.error.code == -32602
    assert "no_such_tool" in info.value.error.message


async def test_error_results_carry_structured_content(client: Any) -> None:
    result = await client.call_tool("get_quote", {"symbol": "ZZZZQ"}, raise_on_error=False)
    assert result.is_error
    error = result.structured_content
    assert set(error) == {"code", "message", "remedy", "details"}
    assert error["code"] == "CONTRACT_NOT_FOUND"
    assert result.content[0].text.startswith("CONTRACT_NOT_FOUND:")
    bad = await client.call_tool("get_quote", {"symbol": ""}, raise_on_error=False)
    assert bad.structured_content["code"] == "INVALID_INPUT"
    assert bad.structured_content["details"]["errors"][0]["field"] == "symbol"


async def test_prompt_arguments_have_real_descriptions(client: Any) -> None:
    prompts = {p.name: p for p in await client.list_prompts()}
    for prompt in prompts.values():
        for argument in prompt.arguments or []:
            assert argument.description, (prompt.name, argument.name)
            assert "JSON schema" not in argument.description
    symbol = next(a for a in prompts["pre_trade_checklist"].arguments if a.name == "symbol")
    assert symbol.required and "AAPL" in symbol.description
