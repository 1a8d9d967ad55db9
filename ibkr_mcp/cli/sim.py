"""``ibkr-mcp sim``: the IB Gateway simulator standalone, until Ctrl-C."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.table import Table

from ibkr_mcp.cli.common import configure_cli_logging, out, run_async, settings_or_exit
from ibkr_mcp.cli.render import fmt
from ibkr_mcp.config import Settings


def _banner(settings: Settings, host: str, port: int, seed: int) -> None:
    table = Table(title="Simulated accounts", title_justify="left")
    table.add_column("Account")
    table.add_column("Starting cash", justify="right")
    for account in settings.SIM_ACCOUNTS:
        table.add_row(account, fmt(settings.SIM_STARTING_CASH))
    out.print(
        f"[green]✓[/green] IB Gateway simulator listening on {host}:{port} "
        f"(seed {seed}, paper accounts)"
    )
    out.print(table)
    out.print(
        "Connect any TWS API client (ib_async, ib_insync, ibapi) to "
        f"{host}:{port} with any client id, or point this server at it:\n"
        f"  IBKR_HOST={host} IBKR_PORT={port} ibkr-mcp healthcheck\n"
        "Press Ctrl-C to stop.",
        soft_wrap=True,
    )


def run_simulator(*, host: str, port: int, seed: int | None) -> None:
    """Start the simulator on ``host:port``, print how to connect, serve until interrupted."""
    settings = settings_or_exit()
    configure_cli_logging(settings)
    chosen_seed = settings.SIM_SEED if seed is None else seed

    async def main() -> None:
        from ibkr_mcp.simulator import serve_forever

        started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(
            serve_forever(
                host,
                port,
                chosen_seed,
                settings.SIM_ACCOUNTS,
                settings.SIM_STARTING_CASH,
                trading_hours=settings.SIM_TRADING_HOURS,
                started=started,
                master_client_id=settings.SIM_MASTER_CLIENT_ID
                if settings.SIM_MASTER_CLIENT_ID >= 0
                else None,
                reject_mkt_remainder=settings.SIM_REJECT_MKT_REMAINDER,
            )
        )
        waiters: set[asyncio.Future[Any]] = {task, started}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # raises why it could not start (e.g. the port is in use)
        _banner(settings, host, started.result(), chosen_seed)
        await task

    run_async(main)
