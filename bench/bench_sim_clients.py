"""Many clients on one simulator: quotes/s and orders/s with 1, 4, 16 and 32 ib_async clients.

Run: .venv/bin/python bench/bench_sim_clients.py
What is measured: the throughput of one simulator serving N clients at once. As at IB, every
client is its own program: the simulator runs in its own process, and each client is an
unmodified ib_async ``IB`` connected with ib_async's default start-up (positions, open and
completed orders, account updates, executions) in a process of its own. So every client
subscribes to positions and to the account's portfolio, and each fill reaches all of them (a
position row and a portfolio row each, as IB sends them); each client decodes its own share of
that fan-out, as it would at IB, instead of one process decoding all N shares (which measured
the bench's own decoding, not the simulator: 0.45-0.67x at 16 clients).
Each client connects, then all start together (a barrier) and run a fixed number of sequential
round trips: snapshot quotes (reqTickers), then MKT orders until Filled. A figure is the total
over all clients divided by the span from the first start to the last finish. Every
configuration runs ROUNDS times interleaved and the median counts (the machine is shared).
ib_async's 45 requests/s pacer is lifted and the simulator's 50 msg/s limit is off
(``message_rate=0``): this measures the simulator, not IB's pacing. Ratios are against the
1-client figure of the same run. On a 2-core machine the clients' decoding competes with the
simulator for CPU, so quotes/s grows with clients only until the cores are saturated.
Target (issue 12): orders/s at 16 clients >= 0.8x the single-client figure.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import time
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier

from _results import record
from ib_async import IB, MarketOrder, Stock

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import FixedClock

CLIENTS = (1, 4, 16, 32)
ROUNDS = 3
QUOTES_TOTAL = 640
ORDERS_TOTAL = 640
T0 = datetime(2026, 11, 25, 15, tzinfo=UTC)  # markets open
#: Each client's (quotes start, quotes end, orders start, orders end), on the system clock.
Spans = tuple[float, float, float, float]


async def _client_run(port: int, client_id: int, quotes: int, orders: int, go: Barrier) -> Spans:
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=client_id, timeout=60)
    ib.client.MaxRequests = 0
    try:
        [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        # Wait in a thread so this client keeps reading its socket (the fan-out) meanwhile.
        await asyncio.to_thread(go.wait, 120)
        t0 = time.monotonic()
        for _ in range(quotes):
            [ticker] = await ib.reqTickersAsync(aapl)
            assert ticker.bid > 0
        t1 = time.monotonic()
        await asyncio.to_thread(go.wait, 120)
        t2 = time.monotonic()
        for _ in range(orders):
            trade = ib.placeOrder(aapl, MarketOrder("BUY", 1))
            while not trade.isDone():
                await trade.statusEvent
            assert trade.orderStatus.status == "Filled"
        t3 = time.monotonic()
        await asyncio.to_thread(go.wait, 120)  # keep decoding until every client is done
        return t0, t1, t2, t3
    finally:
        ib.disconnect()


def _client(port: int, client_id: int, counts: tuple[int, int], go: Barrier,
            out: mp.Queue[Spans]) -> None:  # fmt: skip
    out.put(asyncio.run(_client_run(port, client_id, *counts, go)))


def _serve(ports: mp.Queue[int]) -> None:
    async def run() -> None:
        from ibkr_mcp.simulator import serve_forever

        started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        sim = Simulator(seed=42, clock=FixedClock(T0), message_rate=0)
        task = asyncio.create_task(serve_forever("127.0.0.1", 0, started=started, simulator=sim))
        ports.put(await started)
        await task

    asyncio.run(run())


def measure(n: int) -> tuple[float, float]:
    """Quotes/s and orders/s of ``n`` clients, each in its own process, on a fresh simulator."""
    ctx = mp.get_context("fork")
    ports: mp.Queue[int] = ctx.Queue()
    sim = ctx.Process(target=_serve, args=(ports,), daemon=True)
    sim.start()
    workers: list[mp.process.BaseProcess] = []
    try:
        port = ports.get(True, 30)
        go = ctx.Barrier(n)
        out: mp.Queue[Spans] = ctx.Queue()
        per_q, per_o = QUOTES_TOTAL // n, ORDERS_TOTAL // n
        for i in range(n):
            args = (port, i + 1, (per_q, per_o), go, out)
            w = ctx.Process(target=_client, args=args, daemon=True)
            w.start()
            workers.append(w)
        spans = [out.get(True, 300) for _ in range(n)]
        quotes = per_q * n / (max(s[1] for s in spans) - min(s[0] for s in spans))
        orders = per_o * n / (max(s[3] for s in spans) - min(s[2] for s in spans))
        return quotes, orders
    finally:
        for w in workers:
            w.join(30)
        sim.terminate()
        sim.join(10)


def main() -> None:
    runs: dict[int, list[tuple[float, float]]] = {n: [] for n in CLIENTS}
    for _ in range(ROUNDS):
        for n in CLIENTS:
            runs[n].append(measure(n))
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
    main()
