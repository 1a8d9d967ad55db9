"""Order path benchmark: what the gate chain + audit add to a place_order round trip.

Baseline (same run, same simulator): a raw ib_async MKT order round trip (placeOrder → Filled).
The simulator runs in its own process, as IB Gateway does, so its work is not billed to either.
Measured: the registry's place_order (idempotency lookup, contract + quote, gate chain, durable
intent row, send, 'sent' row) with a token from a preview made beforehand (not timed), and the
preview itself. ib_async's 45 requests/s pacing is respected by sleeping between orders.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from typing import Any

from _common import pct, simulator_process
from _results import record
from ib_async import IB, MarketOrder, Stock

from ibkr_mcp.config import load_settings
from ibkr_mcp.logs import configure_logging
from ibkr_mcp.runtime import open_runtime
from ibkr_mcp.tools import build_registry

N = int(os.environ.get("BENCH_ORDERS", "60"))
#: Seconds between calls: keeps both sides under ib_async's 45 requests/s pacing (each order
#: cycle makes ~8 broker requests: quotes, what-if, broker order lookups, the order itself).
PAUSE = float(os.environ.get("BENCH_ORDER_PAUSE", "0.15"))
ORDER = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "order_type": "MKT"}


async def raw_orders(port: int) -> list[float]:
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=77, timeout=5)
    try:
        contract = (await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD")))[0]
        out = []
        for _ in range(N):
            t0 = time.perf_counter()
            trade = ib.placeOrder(contract, MarketOrder("BUY", 1))
            while not trade.isDone():
                await trade.statusEvent
            out.append(time.perf_counter() - t0)
            await asyncio.sleep(0.05)
        return out
    finally:
        ib.disconnect()


async def main() -> None:
    home = tempfile.mkdtemp()
    with simulator_process(home) as port:
        await run(port, home)


async def run(port: int, home: str) -> None:
    settings = load_settings(
        _env_file=None, DATA_DIR=home, IBKR_PORT=port, ORDERS_ENABLED=True,
        LOG_LEVEL="ERROR", MAX_ORDER_QUANTITY=10, CONFIRMATION_TOKEN_TTL_SECONDS=3600,
        # 120 identical orders in two minutes: lift the flow limits (their facts still run).
        MAX_ORDERS_PER_MINUTE=10_000, MAX_ORDERS_PER_DAY=10_000, DUPLICATE_ORDER_WINDOW_SECONDS=0,
        ALLOW_SHORT=True,
    )  # fmt: skip
    configure_logging(settings)
    registry = build_registry()
    raw = await raw_orders(port)
    placed: list[float] = []
    previews: list[float] = []
    async with open_runtime(settings, wait_connected=5) as services:

        async def call(tool: str, args: dict[str, Any]) -> Any:
            return (await registry.call(tool, args, services=services, surface="internal")).output

        for i in range(N):
            t0 = time.perf_counter()
            preview = await call("preview_order", ORDER)
            previews.append(time.perf_counter() - t0)
            args = {**ORDER, "confirmation_token": preview.confirmation_token,
                    "idempotency_key": f"bench-{i:06d}"}  # fmt: skip
            await asyncio.sleep(PAUSE)
            t0 = time.perf_counter()
            result = await call("place_order", args)
            placed.append(time.perf_counter() - t0)
            assert result.sent
            await asyncio.sleep(PAUSE)

    def ms(x: float) -> str:
        return f"{x * 1000:8.3f} ms"

    print(f"{'measure':46} {'p50':>11} {'p99':>11}")
    for label, values in (
        ("raw ib_async MKT order round trip (baseline)", raw),
        ("place_order via registry (gates + audit)", placed),
        ("preview_order via registry (what-if + token)", previews),
    ):
        print(f"{label:46} {ms(pct(values, 0.5))} {ms(pct(values, 0.99))}")
    added = statistics.median(placed) - statistics.median(raw)
    print(f"place_order / raw at p50: {statistics.median(placed) / statistics.median(raw):.2f}x "
          f"(target <= 2x); added at p50: {added * 1000:.3f} ms")  # fmt: skip
    print("  by design the added time holds the broker reads the order needs before it may be "
          "sent (quote, every client's open orders, new executions), the gates and one durable "
          "(synchronous=FULL) intent commit; see .context/03_DECISIONS.md (the place_order "
          "floor) and bench/bench_audit.py for the commit alone")  # fmt: skip
    record(
        "place_order p50 (preview excluded) -> Filled",
        statistics.median(placed) * 1000,
        statistics.median(raw) * 1000,
        target=2.0,
        baseline_name="raw ib_async placeOrder -> Filled",
    )


if __name__ == "__main__":
    asyncio.run(main())
