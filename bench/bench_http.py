"""HTTP benchmark: GET /api/market/quote?symbol=AAPL under 20 concurrent workers.

The server is the real ``ibkr-mcp start-api --sim`` (uvicorn, one event loop, embedded
simulator) in a subprocess on an ephemeral loopback port; the load comes from one
``httpx.AsyncClient`` here. The baseline is ``Registry.call("get_quote")`` in-process on its
own simulator, with the same concurrency, in the same run: the ratio is the cost of the HTTP
surface (uvicorn + FastAPI + auth/correlation middleware + JSON).

Two variants: QUOTE_CACHE_SECONDS=0 (every request reaches the broker, so ib_async's pacing of
45 requests/s dominates both sides and the ratio is ~1) and QUOTE_CACHE_SECONDS=5 (quotes are
served from the gateway's cache, so the HTTP stack itself is measured).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from ibkr_mcp.config import load_settings
from ibkr_mcp.logs import configure_logging
from ibkr_mcp.runtime import open_runtime
from ibkr_mcp.tools import build_registry

WORKERS = 20
MAX_REQUESTS = 2000
MAX_SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
EXE = str(Path(sys.executable).with_name("ibkr-mcp"))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def load(call: Callable[[], Awaitable[None]], seconds: float) -> tuple[float, list[float]]:
    """Run ``call`` from WORKERS workers until MAX_REQUESTS or ``seconds``; (req/s, latencies)."""
    latencies: list[float] = []
    issued = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal issued
        while issued < MAX_REQUESTS and time.perf_counter() < deadline:
            issued += 1
            t0 = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies


async def direct(cache: float, seconds: float) -> tuple[float, list[float]]:
    tmp = tempfile.mkdtemp()
    settings = load_settings(
        _env_file=None, DATA_DIR=tmp, QUOTE_CACHE_SECONDS=cache, LOG_LEVEL="ERROR"
    )
    configure_logging(settings)
    registry = build_registry()
    async with open_runtime(settings, sim=True) as services:

        async def call() -> None:
            await registry.call("get_quote", {"symbol": "AAPL"}, services=services, surface="http")

        await call()  # warm-up: contract resolution and the first quote
        return await load(call, seconds)


async def over_http(
    cache: float, seconds: float, floor: bool = False
) -> tuple[float, list[float], tuple[float, list[float]] | None]:
    port = free_port()
    tmp = tempfile.mkdtemp()
    env = {k: v for k, v in os.environ.items() if not k.isupper() or k in ("PATH", "HOME")}
    env.update(DATA_DIR=tmp, QUOTE_CACHE_SECONDS=str(cache), LOG_LEVEL="ERROR")
    server = subprocess.Popen(
        [EXE, "start-api", "--sim", "--port", str(port)],
        env=env,
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30
        ) as client:
            for _ in range(300):
                try:
                    if (await client.get("/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise SystemExit("start-api did not become ready")

            async def call() -> None:
                resp = await client.get("/api/market/quote", params={"symbol": "AAPL"})
                resp.raise_for_status()

            async def health() -> None:
                (await client.get("/health")).raise_for_status()

            await call()
            result = await load(call, seconds)
            # The floor: the same stack without a tool call (no registry, no audit row).
            return (*result, await load(health, seconds) if floor else None)
    finally:
        server.terminate()
        server.wait(10)


async def main() -> None:
    print(f"GET /api/market/quote?symbol=AAPL, {WORKERS} concurrent workers, "
          f"at most {MAX_REQUESTS} requests or {MAX_SECONDS:g} s per run")  # fmt: skip
    print(f"{'variant':<42} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'n':>6}")
    for cache in (0.0, 5.0):
        label = f"cache {'ON (5 s)' if cache else 'OFF'}"
        seconds = MAX_SECONDS if cache else min(MAX_SECONDS, 10.0)
        base_rps, base_lat = await direct(cache, seconds)
        http_rps, http_lat, floor = await over_http(cache, seconds, floor=bool(cache))
        for name, rps, lat in (
            (f"Registry.call in-process, {label}", base_rps, base_lat),
            (f"HTTP (uvicorn, loopback), {label}", http_rps, http_lat),
        ):
            print(
                f"{name:<42} {rps:9.1f} {pct(lat, 0.5) * 1000:8.2f} "
                f"{pct(lat, 0.99) * 1000:8.2f} {len(lat):6d}"
            )
        if floor is not None:
            f_rps, f_lat = floor
            p50, p99 = pct(f_lat, 0.5) * 1000, pct(f_lat, 0.99) * 1000
            name = "HTTP GET /health (stack floor)"
            print(f"{name:<42} {f_rps:9.1f} {p50:8.2f} {p99:8.2f} {len(f_lat):6d}")
        print(f"  ratio HTTP/direct throughput: {http_rps / base_rps:.2f}x; "
              f"p99 {pct(http_lat, 0.99) / pct(base_lat, 0.99):.2f}x")  # fmt: skip
    print("With the cache off every quote is a broker request, so ib_async's 45 req/s pacing "
          "bounds both sides; with it on, the numbers measure the HTTP stack.")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
