"""Run a simulator until cancelled (what ``ibkr-mcp sim`` and the benches use)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal

from ibkr_mcp.simulator.clock import Clock
from ibkr_mcp.simulator.control import apply_faults
from ibkr_mcp.simulator.server import Simulator


async def serve_forever(
    host: str = "127.0.0.1",
    port: int = 4002,
    seed: int = 42,
    accounts: Sequence[str] = ("DU1234567",),
    starting_cash: Decimal = Decimal(1_000_000),
    *,
    trading_hours: bool = False,
    clock: Clock | None = None,
    started: asyncio.Future[int] | None = None,
    master_client_id: int | None = None,
    reject_mkt_remainder: bool = False,
    simulator: Simulator | None = None,
    faults: Sequence[str] = (),
) -> None:
    """Run a simulator until cancelled (prints nothing; ``started`` receives the bound port).

    ``simulator`` replaces the one built from the other arguments; ``faults`` are start-up
    drills (``latency=200:50``, see ``control.parse_fault``) applied once it listens.
    """
    sim = simulator or Simulator(
        seed=seed,
        accounts=accounts,
        starting_cash=starting_cash,
        clock=clock,
        trading_hours=trading_hours,
        master_client_id=master_client_id,
        reject_mkt_remainder=reject_mkt_remainder,
    )
    bound = await sim.start(host, port)
    try:
        apply_faults(sim.drills, faults)
        if started is not None and not started.done():
            started.set_result(bound)
        await asyncio.Event().wait()
    finally:
        await sim.stop()
