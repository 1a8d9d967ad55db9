"""``ibkr-mcp sim``: the IB Gateway simulator standalone, until Ctrl-C."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ibkr_mcp.cli.common import configure_cli_logging, err, out, run_async, settings_or_exit
from ibkr_mcp.cli.render import fmt
from ibkr_mcp.config import Settings
from ibkr_mcp.errors import InvalidInputError


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


def simulator_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``Simulator`` from the settings (the drills block included)."""
    return {
        "accounts": settings.SIM_ACCOUNTS,
        "starting_cash": settings.SIM_STARTING_CASH,
        "trading_hours": settings.SIM_TRADING_HOURS,
        "master_client_id": (
            settings.SIM_MASTER_CLIENT_ID if settings.SIM_MASTER_CLIENT_ID >= 0 else None
        ),
        "reject_mkt_remainder": settings.SIM_REJECT_MKT_REMAINDER,
        "reset_refuse_seconds": settings.SIM_RESET_SECONDS,
        "control": settings.SIM_CONTROL_DIR or True,
        "pacing": settings.SIM_PACING == "ib",
        "market_data_lines": settings.SIM_MARKET_DATA_LINES,
        "account_update_seconds": settings.SIM_ACCOUNT_UPDATE_SECONDS,
        "no_live_data": settings.SIM_NO_MARKET_DATA,
        "market_data_gaps": settings.sim_market_data_gaps(),
        "delayed_data": settings.SIM_DELAYED_DATA,
        "historical_seconds": settings.SIM_HISTORICAL_SECONDS,
        "state_file": settings.resolve(settings.SIM_STATE_FILE)
        if settings.SIM_STATE_FILE
        else None,
    }


def run_simulator(
    *,
    host: str,
    port: int,
    seed: int | None,
    faults: list[str] | None = None,
    state_file: Path | None = None,
) -> None:
    """Start the simulator on ``host:port``, print how to connect, serve until interrupted."""
    overrides: dict[str, Any] = {"SIM_STATE_FILE": state_file} if state_file else {}
    settings = settings_or_exit(**overrides)
    configure_cli_logging(settings)
    chosen_seed = settings.SIM_SEED if seed is None else seed
    specs = [*settings.SIM_FAULTS, *(faults or [])]
    from ibkr_mcp.simulator.control import parse_fault
    from ibkr_mcp.simulator.faults import DrillError

    try:
        for spec in specs:
            parse_fault(spec)
    except DrillError as exc:
        err.print(f"[red]✗[/red] --fault: {exc}", soft_wrap=True)
        raise typer.Exit(2) from None

    async def main() -> None:
        from ibkr_mcp.simulator.state import StateFileError

        try:
            await serve(settings, host, port, chosen_seed, specs)
        except StateFileError as exc:  # the operator's file: a usage error with a way out
            raise InvalidInputError(
                str(exc),
                remedy="Move the file away, or pass another --state-file (SIM_STATE_FILE).",
            ) from None
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise InvalidInputError(
                f"port {port} is already in use on {host}",
                remedy="Pass another --port (0 picks a free one), or stop what listens there.",
            ) from None

    run_async(main)


async def serve(settings: Settings, host: str, port: int, seed: int, specs: list[str]) -> None:
    """Start the simulator, print how to reach it, and serve until cancelled."""
    from ibkr_mcp.simulator import Simulator, serve_forever

    simulator = Simulator(seed=seed, **simulator_options(settings))
    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve_forever(host, port, started=started, simulator=simulator, faults=specs)
    )
    waiters: set[asyncio.Future[Any]] = {task, started}
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # raises why it could not start (e.g. the port is in use)
    _banner(settings, host, started.result(), seed)
    if simulator.control is not None and simulator.control.path is not None:
        out.print(
            f"Fault drills: ibkr-mcp sim-ctl --port {started.result()} status "
            f"(control socket {simulator.control.path})",
            soft_wrap=True,
            markup=False,
        )
    for spec in specs:
        out.print(f"Start-up fault: {spec}", markup=False)
    if simulator.state is not None:
        out.print(f"State file: {simulator.state.path}", markup=False, soft_wrap=True)
    await task
