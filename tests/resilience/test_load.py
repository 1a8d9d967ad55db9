"""Single flight, pacing and shedding through the simulator, on MCP and HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

from fastmcp import Client
from http_helpers import http_client
from resilience_helpers import count, wait_until

from ibkr_mcp.mcp_server import build_mcp
from ibkr_mcp.models import ContractRef
from ibkr_mcp.runtime import open_runtime


async def test_simultaneous_identical_quotes_are_one_request(services: Any, sim: Any) -> None:
    async with Client(build_mcp(services)) as client:
        await client.call_tool("get_quote", {"symbol": "IBM"})  # resolve the contract once
        before = count(sim, "REQ_MKT_DATA")
        sim.pause(True)  # hold the answer so all 25 calls are misses at the same time
        calls = [
            asyncio.ensure_future(client.call_tool("get_quote", {"symbol": "IBM"}))
            for _ in range(25)
        ]
        await wait_until(lambda: count(sim, "REQ_MKT_DATA") == before + 1)
        limiter = services.gateway.market_data.limiter
        await wait_until(lambda: limiter.callers == 25)  # every call joined the one in flight
        sim.pause(False)
        results = await asyncio.gather(*calls)
    assert all(r.structured_content["symbol"] == "IBM" for r in results)
    assert count(sim, "REQ_MKT_DATA") == before + 1


async def test_identical_bars_share_one_answer(services: Any, sim: Any) -> None:
    args = {"symbol": "AAPL", "duration": "1 D", "bar_size": "1 hour"}
    async with Client(build_mcp(services)) as client:
        results = await asyncio.gather(*(client.call_tool("get_bars", args) for _ in range(30)))
        again = await client.call_tool("get_bars", args)  # within 15 s: the same answer
    assert count(sim, "REQ_HISTORICAL_DATA") == 1
    first = results[0].structured_content
    assert all(r.structured_content == first for r in results)
    assert again.structured_content == first


async def test_small_bars_beyond_ibs_pacing_answer_pacing_limit(
    settings_for: Any, sim: Any
) -> None:
    settings = settings_for(sim.port, IBKR_REQUEST_TIMEOUT=1.0)
    async with (
        open_runtime(settings, wait_connected=5.0) as services,
        http_client(settings, services) as http,
    ):
        answers = []
        for duration in ("60 S", "120 S", "180 S", "240 S", "300 S", "360 S"):
            params = {"symbol": "AAPL", "duration": duration, "bar_size": "1 secs"}
            answers.append(await http.get("/api/market/bars", params=params))
    assert [a.status_code for a in answers[:5]] == [200] * 5
    refused = answers[5]
    assert refused.status_code == 429
    body = refused.json()["error"]
    assert body["code"] == "PACING_LIMIT"
    assert 0 < body["details"]["retry_after_seconds"] <= 2
    assert int(refused.headers["Retry-After"]) >= 1
    assert count(sim, "REQ_HISTORICAL_DATA") == 5  # the sixth never reached the gateway


async def test_overload_is_refused_at_once_with_retry_after(settings_for: Any, sim: Any) -> None:
    settings = settings_for(sim.port, IBKR_REQUEST_TIMEOUT=1.0, MARKET_DATA_MESSAGES_PER_SECOND=2)
    symbols = ["AAPL", "MSFT", "IBM", "SPY", "QQQ", "IWM", "NVDA", "AMZN", "GOOGL", "META"]
    async with open_runtime(settings, wait_connected=5.0) as services:
        for symbol in symbols:  # resolved up front: only the quotes compete
            await services.gateway.resolve_contract(ContractRef(symbol=symbol))
        async with http_client(settings, services) as http:
            loop = asyncio.get_running_loop()
            started = loop.time()
            answers = await asyncio.gather(
                *(http.get("/api/market/quote", params={"symbol": s}) for s in symbols)
            )
            elapsed = loop.time() - started
    codes = [a.status_code for a in answers]
    assert codes.count(200) >= 2 and codes.count(503) >= 5, codes
    shed = next(a for a in answers if a.status_code == 503)
    assert shed.json()["error"]["code"] == "OVERLOADED"
    assert int(shed.headers["Retry-After"]) >= 1
    assert elapsed < 2.5  # nobody waited past the timeout to be told
