"""Memory soak through stdio: many quotes and orders; the server's RSS growth after warm-up.

The server is the real ``ibkr-mcp serve`` driven by the official mcp SDK client over stdio; the
simulator runs in its own process (``ibkr-mcp sim``), as IB Gateway would, so the figure is the
server's own memory, not the simulated broker's day of orders. RSS is read from /proc after a
warm-up (imports, caches and first connections paid) and again at the end; the growth is the
figure (target: at most 20 MB). RSS is also read between the quotes and the orders, so the
growth per 1,000 quotes and per 1,000 orders is printed with its extrapolation to the issue's
size. ``make bench`` runs the issue's size, 10,000 quotes and 2,000 orders (about 6 minutes on
a 2-core machine); BENCH_SOAK_QUOTES / BENCH_SOAK_ORDERS run a smaller soak, judged by its
linear extrapolation, which overstates the growth: the first few hundred orders fill caches
(ib_async's newest finished trades, the audit's page cache, live confirmation tokens) once.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _common import free_port
from _results import record
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

QUOTES = int(os.environ.get("BENCH_SOAK_QUOTES", "10000"))
ORDERS = int(os.environ.get("BENCH_SOAK_ORDERS", "2000"))
WARM_QUOTES, WARM_ORDERS = 500, 50
CONCURRENCY = 20
SYMBOLS = ("AAPL", "MSFT", "SPY", "QQQ", "NVDA", "AMZN")
LIMIT_MB = 20.0
#: The issue's soak size; a smaller run is judged by its linear extrapolation to it.
FULL_QUOTES, FULL_ORDERS = 10_000, 2_000


def server_rss_mb() -> float:
    """RSS of our child ``ibkr-mcp serve`` process (found through /proc), in MB."""
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if fields[1] == me and b"serve" in cmdline and b"sim\0--port" not in cmdline:
            for line in (stat.parent / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    raise SystemExit("server process not found")


async def quotes(session: ClientSession, n: int) -> None:
    """``n`` get_quote calls, CONCURRENCY at a time."""
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with sem:
            result = await session.call_tool("get_quote", {"symbol": SYMBOLS[i % len(SYMBOLS)]})
            if result.is_error:
                raise SystemExit(f"get_quote failed: {result.content}")

    await asyncio.gather(*(one(i) for i in range(n)))


async def orders(session: ClientSession, n: int) -> None:
    """``n`` preview + place pairs (1 share, alternating sides), a few at a time."""
    sem = asyncio.Semaphore(4)

    async def one(i: int) -> None:
        order: dict[str, Any] = {
            "symbol": SYMBOLS[i % len(SYMBOLS)],
            "side": "BUY" if i % 2 == 0 else "SELL",
            "quantity": 1,
            "order_type": "MKT",
        }
        async with sem:
            preview = await session.call_tool("preview_order", order)
            if preview.is_error or not preview.structured_content:
                raise SystemExit(f"preview_order failed: {preview.content}")
            token = preview.structured_content["confirmation_token"]
            placed = await session.call_tool(
                "place_order",
                {**order, "confirmation_token": token, "idempotency_key": uuid.uuid4().hex},
            )
            if placed.is_error:
                raise SystemExit(f"place_order failed: {placed.content}")

    await asyncio.gather(*(one(i) for i in range(n)))


async def main() -> None:
    """Warm up, read RSS, soak, read RSS again, record the growth."""
    tmp = tempfile.mkdtemp()
    port = free_port()
    exe = str(Path(sys.executable).with_name("ibkr-mcp"))
    import subprocess

    sim = subprocess.Popen(
        [exe, "sim", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"PATH": os.environ.get("PATH", ""), "HOME": tmp, "LOG_LEVEL": "ERROR"},
    )
    try:
        await _soak(tmp, port, exe)
    finally:
        sim.terminate()
        sim.wait(10)


async def _soak(tmp: str, port: int, exe: str) -> None:
    """Drive ``ibkr-mcp serve`` against the simulator on ``port``."""
    await asyncio.sleep(1.5)  # the simulator process binds its port
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": tmp,
        "DATA_DIR": tmp,
        "LOG_LEVEL": "ERROR",
        "IBKR_PORT": str(port),
        "IBKR_CONNECT_TIMEOUT": "10",
        "QUOTE_CACHE_SECONDS": "1",
        "ORDERS_ENABLED": "true",
        "MAX_ORDERS_PER_MINUTE": "10000",
        "MAX_ORDERS_PER_DAY": "100000",
        "MAX_DAILY_NOTIONAL": "1000000000000",
        "DUPLICATE_ORDER_WINDOW_SECONDS": "0",
        "MAX_ORDER_NOTIONAL": "1000000",
        "ALLOW_SHORT": "true",
    }
    params = StdioServerParameters(
        command=exe,
        args=["serve"],
        env=env,
        cwd=tmp,
    )
    with (Path(tmp) / "stderr.log").open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            await quotes(session, WARM_QUOTES)
            await orders(session, WARM_ORDERS)
            warm = server_rss_mb()
            t0 = time.perf_counter()
            await quotes(session, QUOTES)
            mid = server_rss_mb()
            await orders(session, ORDERS)
            elapsed = time.perf_counter() - t0
            final = server_rss_mb()
    growth = final - warm
    per_quotes = (mid - warm) * 1000 / max(QUOTES, 1)
    per_orders = (final - mid) * 1000 / max(ORDERS, 1)
    print(
        f"{QUOTES} quotes + {ORDERS} orders over stdio in {elapsed:.1f} s: RSS {warm:.1f} MB "
        f"after warm-up -> {final:.1f} MB (growth {growth:+.1f} MB, target <= {LIMIT_MB:g} MB)\n"
        f"  per 1,000 quotes {per_quotes:+.2f} MB, per 1,000 orders {per_orders:+.1f} MB; "
        f"linear extrapolation to 10,000 quotes + 2,000 orders: "
        f"{per_quotes * 10 + per_orders * 2:+.1f} MB"
    )
    full = QUOTES >= FULL_QUOTES and ORDERS >= FULL_ORDERS
    budget = f"the {LIMIT_MB:g} MB budget (ratio = share of the budget used)"
    record(
        f"stdio soak RSS growth ({QUOTES} quotes, {ORDERS} orders)",
        growth,
        LIMIT_MB,
        unit="MB",
        # Judged only at the size: a smaller run's growth says nothing of the budget.
        target=1.0 if full else None,
        baseline_name=budget,
    )
    if not full:
        record(
            f"stdio soak RSS growth extrapolated to {FULL_QUOTES} quotes, {FULL_ORDERS} orders",
            per_quotes * FULL_QUOTES / 1000 + per_orders * FULL_ORDERS / 1000,
            LIMIT_MB,
            unit="MB",
            target=1.0,
            baseline_name=budget,
        )


if __name__ == "__main__":
    asyncio.run(main())
