"""SPX option chain latency through unmodified ib_async against a stock details round trip.

Baseline (same run, same simulator): reqContractDetails for one stock (AAPL). Measured: the
SPX chain as a client builds it — reqSecDefOptParams, then reqContractDetails for one expiry
of the SPXW class (every strike, calls and puts: ~850 contracts) — and the parameters request
alone. A few repetitions each, on a fixed clock, so the run takes seconds.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime

from _results import record
from ib_async import IB, Index, Option, Stock

from ibkr_mcp.simulator import Simulator
from ibkr_mcp.simulator.clock import FixedClock

ROUNDS = 5
T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


async def _timed(make: object, rounds: int = ROUNDS) -> list[float]:
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await make()  # type: ignore[operator]
        out.append(time.perf_counter() - t0)
    return out


async def main() -> None:
    sim = Simulator(seed=42, clock=FixedClock(T0))
    port = await sim.start("127.0.0.1", 0)
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=9, timeout=5)
    try:
        [spx] = await ib.qualifyContractsAsync(Index("SPX", "CBOE"))
        stock = Stock("AAPL", "SMART", "USD")
        spxw = Option("SPX", "20261218", exchange="SMART", tradingClass="SPXW")

        async def chain() -> int:
            await ib.reqSecDefOptParamsAsync("SPX", "", "IND", spx.conId)
            return len(await ib.reqContractDetailsAsync(spxw))

        contracts = await chain()  # warm-up (also checks the size)
        base = statistics.median(await _timed(lambda: ib.reqContractDetailsAsync(stock)))
        params = statistics.median(
            await _timed(lambda: ib.reqSecDefOptParamsAsync("SPX", "", "IND", spx.conId))
        )
        full = statistics.median(await _timed(chain))
    finally:
        ib.disconnect()
        await sim.stop()
    print(f"stock contract details (baseline): {base * 1000:8.2f} ms")
    print(f"SPX reqSecDefOptParams:            {params * 1000:8.2f} ms  ({params / base:.1f}x)")
    print(f"SPX chain, one SPXW expiry:        {full * 1000:8.2f} ms  ({full / base:.1f}x, "
          f"{contracts} contracts, {full / contracts * 1e6:.0f} us each)")  # fmt: skip
    record("SPX secdef params", params * 1000, base * 1000, baseline_name="stock details")
    record("SPX chain (params + one expiry)", full * 1000, base * 1000,
           baseline_name="stock details")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
