"""get_quotes sends every request before the simulator answers any (concurrency, not a loop)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastmcp import Client

from ibkr_mcp.mcp_server import build_mcp

SYMBOLS = ["AAPL", "MSFT", "SPY", "QQQ", "IWM", "AMZN", "NVDA", "GOOGL", "META", "TSLA",
           "IBM", "JPM", "XOM", "DIA", "GLD", "TLT", "XLF", "KO", "PEP", "WMT"]  # fmt: skip


@pytest.mark.slow
async def test_get_quotes_requests_all_before_first_answer(services: Any, sim: Any) -> None:
    # 12 symbols: with the warm-up's requests still inside ib_async's 45/s pacing window, a
    # larger batch is (correctly) spread over time by the client library itself.
    known = [s for s in SYMBOLS if sim.catalogue.find(s)][:12]
    assert len(known) == 12
    async with Client(build_mcp(services)) as client:
        warm = await client.call_tool("get_quotes", {"symbols": known})  # resolves contracts
        assert not warm.structured_content["errors"]
        await asyncio.sleep(1.1)  # leave ib_async's 45 requests/s pacing window
        mark = max(m.seq for m in [*sim.received(), *sim.sent()])
        result = await client.call_tool("get_quotes", {"symbols": known})
    data = result.structured_content
    assert [q["symbol"] for q in data["quotes"]] == known
    reqs = [m for m in sim.received() if m.seq > mark and m.name == "REQ_MKT_DATA"]
    ticks = [m for m in sim.sent() if m.seq > mark and m.name == "TICK_PRICE"]
    assert len(reqs) == len(known)
    assert ticks
    assert max(m.seq for m in reqs) < min(m.seq for m in ticks)
