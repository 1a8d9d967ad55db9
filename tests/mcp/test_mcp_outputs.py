"""Snapshots of tool outputs on the seeded simulator with a fixed clock: nothing scrubbed."""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client

from ibkr_mcp.mcp_server import build_mcp

CASES = {
    "quote_aapl": ("get_quote", {"symbol": "AAPL"}),
    "quotes": ("get_quotes", {"symbols": ["SPY", "QQQ", "IWM"]}),
    "bars_spy_5d": ("get_bars", {"symbol": "SPY", "duration": "5 D", "bar_size": "1 day"}),
    "bars_aapl_hourly": ("get_bars", {"symbol": "AAPL", "duration": "1 D", "bar_size": "1 hour"}),
    "details_aapl": ("get_contract_details", {"symbol": "AAPL"}),
    "search_app": ("search_contracts", {"pattern": "APP"}),
    "account_summary": ("get_account_summary", {}),
    "positions": ("get_positions", {}),
    "pnl": ("get_pnl", {}),
    "open_orders": ("get_open_orders", {}),
    "executions": ("get_executions", {}),
    "option_chain_aapl": ("get_option_chain", {"symbol": "AAPL", "strikes_around_spot": 2}),
    "option_quotes_aapl": (
        "get_option_quotes",
        {
            "contracts": [
                {"symbol": "AAPL", "expiry": "20261218", "strike": 210, "right": "C"},
                {"symbol": "AAPL", "expiry": "20261218", "strike": 210, "right": "P"},
            ]
        },
    ),
    "details_spx_index": ("get_contract_details", {"symbol": "SPX", "sec_type": "IND"}),
    "quote_es_front_month": ("get_quote", {"symbol": "ES", "sec_type": "FUT"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_tool_output_snapshot(services: Any, snapshot: Any, case: str) -> None:
    tool, args = CASES[case]
    async with Client(build_mcp(services)) as client:
        result = await client.call_tool(tool, args, raise_on_error=False)
    assert not result.is_error, result.content[0].text
    assert result.structured_content == snapshot
