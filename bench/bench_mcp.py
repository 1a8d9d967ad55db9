"""MCP benchmarks: get_quote via MCP vs raw ib_async, get_quotes vs sequential, stdio start-up.

Every ratio is against a baseline measured in the same run on the same simulator. ib_async paces
itself to 45 requests/s; batches here stay within 40 symbols.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _common import pct
from _results import record
from fastmcp import Client, FastMCP
from ib_async import IB, Stock

from ibkr_mcp.config import load_settings
from ibkr_mcp.mcp_server import build_mcp
from ibkr_mcp.runtime import open_runtime
from ibkr_mcp.simulator import Simulator

N = 200
SYMBOLS = [
    "AAPL", "MSFT", "SPY", "QQQ", "IWM", "AMZN", "NVDA", "GOOGL", "META", "TSLA",
]  # fmt: skip


async def timed(call: Callable[[], Awaitable[object]], into: list[float]) -> None:
    """One timed call, then the pause that keeps every row under ib_async's 45 req/s pacing."""
    t0 = time.perf_counter()
    await call()
    into.append(time.perf_counter() - t0)
    await asyncio.sleep(1 / 44)


def floor_server() -> FastMCP[Any]:
    """A one-tool FastMCP server doing nothing: the framework's own floor."""
    floor: FastMCP[Any] = FastMCP("floor")

    @floor.tool
    def noop(symbol: str) -> dict[str, str]:
        return {"symbol": symbol}

    return floor


async def main() -> None:
    sim = Simulator(seed=42)
    port = await sim.start("127.0.0.1", 0)
    tmp = tempfile.mkdtemp()
    settings = load_settings(_env_file=None, DATA_DIR=tmp, IBKR_PORT=port, LOG_LEVEL="ERROR")
    from ibkr_mcp.logs import configure_logging
    from ibkr_mcp.tools import build_registry

    configure_logging(settings)
    raw: list[float] = []
    via_mcp: list[float] = []
    floor: list[float] = []
    registry_lat: list[float] = []
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", port, clientId=99, timeout=5)
        contract = Stock("AAPL", "SMART", "USD")
        await ib.qualifyContractsAsync(contract)
        registry = build_registry()
        async with (
            open_runtime(settings, wait_connected=5) as services,
            Client(build_mcp(services)) as client,
            Client(floor_server()) as bare,
        ):
            await client.call_tool("get_quote", {"symbol": "AAPL"})
            await bare.call_tool("noop", {"symbol": "AAPL"})
            # The rows are interleaved round by round (same pacing, same moment): timed in
            # blocks one after the other, the machine's drift between blocks moved the ratio
            # by ±0.25 from run to run.
            for _ in range(N):
                await timed(lambda: ib.reqTickersAsync(contract), raw)
                await timed(lambda: client.call_tool("get_quote", {"symbol": "AAPL"}), via_mcp)
                await timed(lambda: bare.call_tool("noop", {"symbol": "AAPL"}), floor)
                await timed(
                    lambda: registry.call(
                        "get_quote", {"symbol": "AAPL"}, services=services, surface="internal"
                    ),
                    registry_lat,
                )
            symbols = (SYMBOLS * 4)[:40]
            t0 = time.perf_counter()
            for s in symbols:
                await client.call_tool("get_quote", {"symbol": s})
            sequential = time.perf_counter() - t0
            await asyncio.sleep(1.0)
            t0 = time.perf_counter()
            await client.call_tool("get_quotes", {"symbols": symbols})
            batch = time.perf_counter() - t0
            tools = await client.list_tools()
            listing = json.dumps([t.model_dump(mode="json", exclude_none=True) for t in tools])
    finally:
        ib.disconnect()
        await sim.stop()

    def ms(x: float) -> str:
        return f"{x * 1000:8.3f} ms"

    print(f"{'measure':44} {'p50':>11} {'p99':>11}")
    rows = [
        ("raw ib_async reqTickers (baseline)", raw),
        ("registry.call get_quote (no MCP)", registry_lat),
        ("FastMCP floor: no-op tool, in-memory", floor),
        ("MCP get_quote (in-memory client)", via_mcp),
    ]
    for label, values in rows:
        print(f"{label:44} {ms(pct(values, 0.5))} {ms(pct(values, 0.99))}")
    raw50 = statistics.median(raw)
    floor50 = statistics.median(floor)
    mcp50 = statistics.median(via_mcp)
    ratio = mcp50 / raw50
    ours = statistics.median(registry_lat) / raw50
    net = (mcp50 - floor50) / raw50
    print(f"MCP / raw ratio at p50: {ratio:.2f}x")
    print(f"  registry+gateway / raw: {ours:.2f}x; (MCP - FastMCP floor) / raw: {net:.2f}x")
    floor_plus_raw = (floor50 + raw50) * 1000
    record(
        "MCP get_quote p50 (in-memory client)",
        mcp50 * 1000,
        floor_plus_raw,
        target=1.15,
        baseline_name="FastMCP no-op tool + raw ib_async snapshot, same pacing",
    )
    record(
        "one get_quotes(40) vs 40 sequential get_quote",
        sequential * 1000,
        batch * 1000,
        target=10,
        higher_is_better=True,
        baseline_name="one get_quotes(40) call (ratio = speed-up)",
    )
    print(
        f"40 sequential get_quote: {ms(sequential)}; one get_quotes(40): {ms(batch)}; "
        f"speed-up {sequential / batch:.1f}x (target >= 10x)"
    )
    print(f"tools/list: {len(tools)} tools, {len(listing)} characters")
    print("stdio cold start: see bench_startup.py")


if __name__ == "__main__":
    asyncio.run(main())
