"""Load benchmark: a quote flood with an order in the middle (priorities and shedding).

The server is the real ``ibkr-mcp start-api --sim`` (uvicorn, embedded simulator, orders
enabled in paper mode, no quote cache) in a subprocess on an ephemeral loopback port. The
flood is ``FLOOD_CLIENTS`` concurrent clients asking GET /api/market/quote over 60 symbols for
``FLOOD_SECONDS``; halfway through, one order is previewed and placed (a resting LMT BUY).

Baselines, measured in the same run against the same server: the same preview + place with no
load (idle), and an idle quote. Figures: the order's latency under the flood vs idle (target:
within a couple of seconds, i.e. <= 2 s absolute, printed with its ratio); the shed requests'
latency vs an idle quote (they must be refused at once, not after the 10 s timeout).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import free_port, pct
from _results import record

FLOOD_CLIENTS = int(os.environ.get("BENCH_LOAD_CLIENTS", "500"))
FLOOD_SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "6"))
SYMBOLS = [
    "AAPL",
    "ABBV",
    "ABT",
    "ACN",
    "ADBE",
    "AIG",
    "AMD",
    "AMGN",
    "AMT",
    "AMZN",
    "AVGO",
    "AXP",
    "BA",
    "BAC",
    "BK",
    "BKNG",
    "BLK",
    "BMY",
    "C",
    "CAT",
    "CHTR",
    "CL",
    "CMCSA",
    "COF",
    "COP",
    "COST",
    "CRM",
    "CSCO",
    "CVS",
    "CVX",
    "DE",
    "DHR",
    "DIS",
    "DUK",
    "EMR",
    "F",
    "FDX",
    "GD",
    "GE",
    "GILD",
    "GM",
    "GOOG",
    "GOOGL",
    "GS",
    "HD",
    "HON",
    "IBM",
    "INTC",
    "INTU",
    "ISRG",
    "JNJ",
    "JPM",
    "KO",
    "LIN",
    "LLY",
    "LMT",
    "LOW",
    "MA",
    "MCD",
    "MDLZ",
]
EXE = str(Path(sys.executable).with_name("ibkr-mcp"))
ORDER = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "order_type": "LMT", "tif": "DAY"}


async def place_order(client: httpx.AsyncClient, key: str, quantity: int, price: float) -> float:
    """Preview then place one resting LMT order; returns the seconds both took.

    The two orders differ in quantity: the duplicate-order gate refuses the same order twice.
    """
    started = time.perf_counter()
    order = {**ORDER, "limit_price": price, "quantity": quantity}
    preview = await client.post("/api/orders/preview", json=order)
    preview.raise_for_status()
    token = preview.json().get("confirmation_token")
    if not token:
        raise SystemExit(f"preview refused: {preview.text[:300]}")
    placed = await client.post(
        "/api/orders", json={**order, "confirmation_token": token, "idempotency_key": key}
    )
    placed.raise_for_status()
    return time.perf_counter() - started


async def _get(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
) -> tuple[int, dict[str, str]]:
    """One HTTP/1.1 keep-alive GET on a raw socket (httpx's pool is too slow at 500 clients)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers


async def flood(port: int, seconds: float) -> tuple[list[float], list[float]]:
    """FLOOD_CLIENTS clients quoting until ``seconds`` pass; (answered, shed) latencies."""
    answered: list[float] = []
    shed: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        i = n
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                symbol = SYMBOLS[i % len(SYMBOLS)]
                i += 7
                t0 = time.perf_counter()
                status, headers = await _get(reader, writer, f"/api/market/quote?symbol={symbol}")
                took = time.perf_counter() - t0
                if status == 200:
                    answered.append(took)
                elif status == 503:
                    shed.append(took)
                    await asyncio.sleep(min(2.0, float(headers.get("retry-after", "1"))))
        except (OSError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    await asyncio.gather(*(worker(n) for n in range(FLOOD_CLIENTS)))
    return answered, shed


def _tool_latency(text: str, tool: str) -> float:
    """Mean server-side latency of ``tool`` from the Prometheus text (seconds)."""
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith(f'ibkr_tool_latency_seconds_sum{{tool="{tool}"}}'):
            total = float(line.split()[-1])
        if line.startswith(f'ibkr_tool_latency_seconds_count{{tool="{tool}"}}'):
            count = float(line.split()[-1])
    return total / count if count else float("nan")


async def main() -> None:
    """Idle order and quote, then the flood with an order in the middle; record the ratios."""
    tmp = tempfile.mkdtemp()
    env = {k: v for k, v in os.environ.items() if not k.isupper() or k in ("PATH", "HOME")}
    env.update(DATA_DIR=tmp, LOG_LEVEL="ERROR", ORDERS_ENABLED="true", QUOTE_CACHE_SECONDS="0")
    port = free_port()
    server = subprocess.Popen(
        [EXE, "start-api", "--sim", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp,
    )
    try:
        limits = httpx.Limits(max_connections=10)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30
        ) as client:
            for _ in range(400):
                try:
                    if (await client.get("/ready")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise SystemExit("the server did not become ready")
            for symbol in SYMBOLS:  # warm-up: contract resolution
                await client.get("/api/market/quote", params={"symbol": symbol})
            t0 = time.perf_counter()
            await client.get("/api/market/quote", params={"symbol": "MSFT"})
            idle_quote = time.perf_counter() - t0
            quote = (await client.get("/api/market/quote", params={"symbol": "AAPL"})).json()
            price = round(float(quote["bid"]) * 0.99, 2)  # rests below the market
            idle_order = await place_order(client, "bench-load-idle", 1, price)
            flooding = asyncio.ensure_future(flood(port, FLOOD_SECONDS))
            await asyncio.sleep(FLOOD_SECONDS / 2)
            busy_order = await place_order(client, "bench-load-flood", 2, price)
            answered, shed = await flooding
            server_side = _tool_latency((await client.get("/metrics")).text, "get_quote")
    finally:
        server.terminate()
        server.wait(10)
    print(f"{FLOOD_CLIENTS} quote clients for {FLOOD_SECONDS:g} s over {len(SYMBOLS)} symbols")
    print(
        f"answered {len(answered)} (p50 {pct(answered, 0.5) * 1000:.0f} ms, p99 "
        f"{pct(answered, 0.99) * 1000:.0f} ms); shed {len(shed)} (p50 "
        f"{pct(shed, 0.5) * 1000:.0f} ms, p99 {pct(shed, 0.99) * 1000:.0f} ms)"
    )
    print(f"server-side get_quote mean {server_side * 1000:.0f} ms (tool pipeline only)")
    print(
        f"preview + place: idle {idle_order * 1000:.0f} ms, under the flood "
        f"{busy_order * 1000:.0f} ms (target <= 2000 ms)"
    )
    record(
        "Order preview+place under a 500-client quote flood",
        busy_order * 1000,
        idle_order * 1000,
        target=2000 / max(idle_order * 1000, 1e-9),
        baseline_name="the same order with no load",
    )
    if shed:
        record(
            "Shed quote (OVERLOADED) latency p99",
            pct(shed, 0.99) * 1000,
            idle_quote * 1000,
            baseline_name="one idle quote",
        )


if __name__ == "__main__":
    asyncio.run(main())
