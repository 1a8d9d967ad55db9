"""Simulator benchmark: connect time, snapshot-quote round trips, 40 concurrent snapshots.

Run: .venv/bin/python bench/bench_simulator.py
Uses an unmodified ib_async client. ib_async paces itself at 45 requests/s; the sequential
round-trip loop LIFTS that limit (client.MaxRequests = 0) so it measures the simulator, not the
pacer. The 40-concurrent batch stays within 45 requests and runs with pacing on.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime

from _common import pct
from ib_async import IB, Stock

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import FixedClock

ROUNDS = 300


async def loopback_floor(rounds: int = ROUNDS) -> list[float]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            writer.write(data)

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        writer.write(b"x" * 64)
        await reader.readexactly(64)
        out.append(time.perf_counter() - t)
    writer.close()
    server.close()
    await server.wait_closed()
    return out


async def main() -> None:
    floor = await loopback_floor()
    # message_rate=0: the unpaced loop below would otherwise meet IB's 50 msg/s limit (error 100)
    sim = Simulator(
        seed=42, clock=FixedClock(datetime(2026, 11, 25, 15, tzinfo=UTC)), message_rate=0
    )
    port = await sim.start()
    ib = IB()
    t = time.perf_counter()
    await ib.connectAsync("127.0.0.1", port, clientId=1, timeout=5)
    connect = time.perf_counter() - t
    symbols = [i.symbol for i in sim.catalogue.all() if i.sec_type == "STK"][:40]
    contracts = await ib.qualifyContractsAsync(*[Stock(s, "SMART", "USD") for s in symbols])
    await asyncio.sleep(1.1)  # let the pacing window drain before the paced batch
    batch_contracts = [contracts[i % len(contracts)] for i in range(40)]
    t = time.perf_counter()
    tickers = await ib.reqTickersAsync(*batch_contracts)
    batch = time.perf_counter() - t
    assert all(tk.bid > 0 for tk in tickers)
    ib.client.MaxRequests = 0  # lift ib_async's 45 req/s pacing for the sequential loop
    rtts = []
    for i in range(ROUNDS):
        c = contracts[i % len(contracts)]
        t = time.perf_counter()
        await ib.reqTickersAsync(c)
        rtts.append(time.perf_counter() - t)
    ib.disconnect()
    await sim.stop()
    f50 = statistics.median(floor)
    q50 = statistics.median(rtts)
    rows = [
        ("loopback echo floor (p50)", f50 * 1e3, "1.0x"),
        ("loopback echo floor (p99)", pct(floor, 0.99) * 1e3, ""),
        ("connectAsync (full sync)", connect * 1e3, ""),
        ("snapshot round trip p50", q50 * 1e3, f"{q50 / f50:.1f}x floor"),
        ("snapshot round trip p99", pct(rtts, 0.99) * 1e3, f"{pct(rtts, 0.99) / f50:.1f}x floor"),
        (f"{len(batch_contracts)} concurrent snapshots", batch * 1e3, "paced by ib_async"),
    ]
    print(f"{'measure':34} {'ms':>9}  ratio")
    for name, ms, ratio in rows:
        print(f"{name:34} {ms:9.3f}  {ratio}")
    print(f"target: snapshot p50 < 2 ms -> {'PASS' if q50 < 0.002 else 'FAIL'}")


if __name__ == "__main__":
    asyncio.run(main())
