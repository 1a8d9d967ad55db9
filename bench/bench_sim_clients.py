"""Many clients on one simulator: quotes/s and orders/s with 1, 4, 16 and 32 ib_async clients.

Run: .venv/bin/python bench/bench_sim_clients.py
What is measured: the throughput of one simulator serving N clients at once. The simulator runs
in its own process (as IB Gateway does); the clients are unmodified ib_async ``IB`` objects with
ib_async's default start-up (positions, open/completed orders, account updates, executions), on
their own sockets, all in this one process. So every client subscribes to positions and to the
account's portfolio, and each fill reaches all of them as IB routes it; this process decodes all
N shares of that fan-out. That bills the clients' decoding to the many-client figures (at IB each
client is its own program, usually elsewhere), so the ratios are conservative. Clients in a
process each were tried and rejected: on this shared 2-core machine 17 processes take a larger
CPU share from other jobs than 2 do, which flatters the many-client figures (0.70-1.51x, 2.1x
quotes/s in one round).
Each client runs a fixed number of sequential round trips (snapshot quote, or MKT order until
Filled), so the run is bounded; every configuration runs ROUNDS times interleaved and the median
counts (the machine is shared). ib_async's 45 requests/s pacer is lifted and the simulator's
50 msg/s limit is off (``message_rate=0``): this measures the simulator, not IB's pacing. Ratios
are against the 1-client figure of the same run.
Target (issue 12): orders/s at 16 clients >= 0.8x the single-client figure.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import time
from datetime import UTC, datetime

from _results import record
from ib_async import IB, MarketOrder, Stock

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import FixedClock

CLIENTS = (1, 4, 16, 32)
ROUNDS = 3
QUOTES_TOTAL = 640
ORDERS_TOTAL = 640
T0 = datetime(2026, 11, 25, 15, tzinfo=UTC)  # markets open


async def connect(port: int, n: int) -> list[IB]:
    clients = [IB() for _ in range(n)]
    await asyncio.gather(
        *(ib.connectAsync("127.0.0.1", port, clientId=i + 1, timeout=10)
          for i, ib in enumerate(clients))
    )  # fmt: skip
    for ib in clients:
        ib.client.MaxRequests = 0
    return clients


async def quotes(clients: list[IB], per_client: int) -> float:
    [aapl] = await clients[0].qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))

    async def run(ib: IB) -> None:
        for _ in range(per_client):
            [ticker] = await ib.reqTickersAsync(aapl)
            assert ticker.bid > 0

    t0 = time.perf_counter()
    await asyncio.gather(*(run(ib) for ib in clients))
    return per_client * len(clients) / (time.perf_counter() - t0)


async def orders(clients: list[IB], per_client: int) -> float:
    [aapl] = await clients[0].qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))

    async def run(ib: IB) -> None:
        for _ in range(per_client):
            trade = ib.placeOrder(aapl, MarketOrder("BUY", 1))
            while not trade.isDone():
                await trade.statusEvent
            assert trade.orderStatus.status == "Filled"

    t0 = time.perf_counter()
    await asyncio.gather(*(run(ib) for ib in clients))
    return per_client * len(clients) / (time.perf_counter() - t0)


def _serve(ports: mp.Queue[int]) -> None:
    async def run() -> None:
        from ibkr_mcp.simulator import serve_forever

        started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        sim = Simulator(seed=42, clock=FixedClock(T0), message_rate=0)
        task = asyncio.create_task(serve_forever("127.0.0.1", 0, started=started, simulator=sim))
        ports.put(await started)
        await task

    asyncio.run(run())


async def measure(n: int) -> tuple[float, float]:
    ports: mp.Queue[int] = mp.Queue()
    proc = mp.Process(target=_serve, args=(ports,), daemon=True)
    proc.start()
    try:
        port = await asyncio.to_thread(ports.get, True, 30)
        clients = await connect(port, n)
        try:
            q = await quotes(clients, QUOTES_TOTAL // n)
            o = await orders(clients, ORDERS_TOTAL // n)
            return q, o
        finally:
            for ib in clients:
                ib.disconnect()
    finally:
        proc.terminate()
        proc.join(10)


async def main() -> None:
    runs: dict[int, list[tuple[float, float]]] = {n: [] for n in CLIENTS}
    for _ in range(ROUNDS):
        for n in CLIENTS:
            runs[n].append(await measure(n))
    results = {
        n: (statistics.median(q for q, _ in r), statistics.median(o for _, o in r))
        for n, r in runs.items()
    }
    q1, o1 = results[1]
    print(f"{'clients':>7} {'quotes/s':>10} {'ratio':>6} {'orders/s':>10} {'ratio':>6}")
    for n, (q, o) in results.items():
        print(f"{n:7d} {q:10.0f} {q / q1:5.2f}x {o:10.0f} {o / o1:5.2f}x")
    for n in CLIENTS[1:]:
        q, o = results[n]
        record(f"sim quotes/s, {n} clients", q, q1, unit="quotes/s", higher_is_better=True,
               baseline_name="1 client")  # fmt: skip
        record(f"sim orders/s, {n} clients", o, o1, unit="orders/s", higher_is_better=True,
               target=0.8 if n == 16 else None, baseline_name="1 client")  # fmt: skip
    ratio = results[16][1] / o1
    print(f"target: orders/s at 16 clients >= 0.8x one client -> {ratio:.2f}x "
          f"{'PASS' if ratio >= 0.8 else 'FAIL'}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
