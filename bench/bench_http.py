"""HTTP benchmark: cached quotes under 50 concurrent clients vs a bare FastAPI route.

The server is the real ``ibkr-mcp start-api --sim`` (uvicorn, one event loop, embedded
simulator) in a subprocess on an ephemeral loopback port, with ``QUOTE_CACHE_SECONDS=1``; the
load is GET /api/market/quote over 4 symbols from 50 workers of one ``httpx.AsyncClient``. The
baseline, measured in the same run with the same client and concurrency, is a bare FastAPI app
under uvicorn whose one route returns a constant JSON object: the framework's own floor.

Targets: throughput >= 0.5x the bare route, and p99 <= 3x p50 (each cache expiry must not turn
into 50 simultaneous broker requests).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from itertools import count
from pathlib import Path

import httpx
from _common import free_port, pct
from _results import record

WORKERS = 50
SYMBOLS = ("AAPL", "MSFT", "SPY", "QQQ")
MAX_REQUESTS = int(os.environ.get("BENCH_HTTP_REQUESTS", "6000"))
MAX_SECONDS = float(os.environ.get("BENCH_SECONDS", "12"))
EXE = str(Path(sys.executable).with_name("ibkr-mcp"))

BARE = """
import sys, uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/api/market/quote")
async def quote(symbol: str) -> dict:
    return {"symbol": symbol, "bid": 1.0, "ask": 1.01}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error")
"""


async def load(call: Callable[[str], Awaitable[None]], seconds: float) -> tuple[float, list[float]]:
    """Run ``call`` from WORKERS workers until MAX_REQUESTS or ``seconds``; (req/s, latencies)."""
    latencies: list[float] = []
    issued = count()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            n = next(issued)
            if n >= MAX_REQUESTS:
                return
            t0 = time.perf_counter()
            await call(SYMBOLS[n % len(SYMBOLS)])
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    return len(latencies) / (time.perf_counter() - started), latencies


async def run(cmd: list[str], port: int, env: dict[str, str]) -> tuple[float, list[float]]:
    """Start the server ``cmd``, wait until it answers, load it, stop it."""
    server = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=env["DATA_DIR"]
    )
    try:
        limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30
        ) as client:

            async def call(symbol: str) -> None:
                resp = await client.get("/api/market/quote", params={"symbol": symbol})
                resp.raise_for_status()

            for _ in range(400):
                try:
                    for symbol in SYMBOLS:  # warm-up: contract resolution, first quotes
                        await call(symbol)
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
            else:
                raise SystemExit(f"{cmd[-3:]} did not become ready")
            return await load(call, MAX_SECONDS)
    finally:
        server.terminate()
        server.wait(10)


async def main() -> None:
    """Bare FastAPI route, then our cached quote route; record the ratios."""
    tmp = tempfile.mkdtemp()
    env = {k: v for k, v in os.environ.items() if not k.isupper() or k in ("PATH", "HOME")}
    env.update(DATA_DIR=tmp, QUOTE_CACHE_SECONDS="1", LOG_LEVEL="ERROR")
    bare_file = Path(tmp) / "bare_app.py"
    bare_file.write_text(BARE, encoding="utf-8")
    port = free_port()
    bare_rps, bare_lat = await run([sys.executable, str(bare_file), str(port)], port, env)
    port = free_port()
    ours_rps, ours_lat = await run([EXE, "start-api", "--sim", "--port", str(port)], port, env)
    print(f"GET /api/market/quote over {len(SYMBOLS)} symbols, {WORKERS} workers, cache 1 s")
    print(f"{'variant':<36} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'n':>6}")
    for name, rps, lat in (
        ("bare FastAPI route", bare_rps, bare_lat),
        ("ibkr-mcp", ours_rps, ours_lat),
    ):
        p50, p99 = pct(lat, 0.5) * 1000, pct(lat, 0.99) * 1000
        print(f"{name:<36} {rps:9.1f} {p50:8.2f} {p99:8.2f} {len(lat):6d}")
    record(
        "HTTP cached quotes throughput (req/s)",
        ours_rps,
        bare_rps,
        unit="/s",
        target=0.5,
        higher_is_better=True,
        baseline_name="bare FastAPI route, same client and concurrency",
    )
    record(
        "HTTP cached quotes p99 vs own p50",
        pct(ours_lat, 0.99) * 1000,
        pct(ours_lat, 0.5) * 1000,
        target=3.0,
        baseline_name="the same run's p50",
    )


if __name__ == "__main__":
    asyncio.run(main())
