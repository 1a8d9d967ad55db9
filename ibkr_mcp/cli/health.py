"""``ibkr-mcp healthcheck``: the runbook's three checks, with a hard overall timeout."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import typer

from ibkr_mcp.cli.common import configure_cli_logging, err, out, settings_or_exit
from ibkr_mcp.config import Settings
from ibkr_mcp.errors import (
    GatewayTimeoutError,
    GatewayUnavailableError,
    IbkrMcpError,
    cli_exit_code,
)


def remedy_line(exc: IbkrMcpError, port: int) -> str:
    """The runbook's one-line diagnosis for a failed connection."""
    text = exc.message.lower()
    if "refused" in text:
        return f"Connection refused → start IB Gateway or TWS on port {port}, or use --sim"
    if "timed out" in text or isinstance(exc, GatewayTimeoutError):
        return "Timeout → check the firewall and that the API is enabled"
    return f"{exc.message.rstrip('.')} → {exc.remedy or 'see the runbook'}"


async def _check(settings: Settings, sim: bool) -> list[str]:
    """Connect, then ask get_health; return the ✓ lines or raise the connection error."""
    from ibkr_mcp.runtime import open_runtime
    from ibkr_mcp.tools import build_registry

    registry = build_registry()
    async with open_runtime(settings, sim=sim, wait_connected=0) as services:
        # The background connect loop is already trying; this waits for (or makes) a
        # connection and raises the precise reason when there is none.
        await services.gateway.ensure_connected()
        result = await registry.call("get_health", {}, services=services, surface="cli")
        health: Any = result.output
        if not health.connected:
            raise GatewayUnavailableError(
                health.last_error or "Not connected.", remedy="Retry, or use --sim."
            )
        broker = health.broker or "gateway"
        accounts = ", ".join(health.accounts) or "none reported"
        server_time = (
            health.server_time.isoformat(timespec="seconds") if health.server_time else "unknown"
        )
        return [
            f"Connected to {health.host}:{health.port} ({broker}, accounts: {accounts})",
            f"Server time: {server_time}",
            health.summary,
        ]


def healthcheck(sim: bool, timeout: float) -> None:
    """Run the checks within ``timeout`` seconds; exit 0 when ready, non-zero otherwise."""
    settings = settings_or_exit()
    configure_cli_logging(settings)
    port = settings.IBKR_PORT
    started = time.monotonic()

    async def main() -> list[str]:
        async with asyncio.timeout(timeout):
            return await _check(settings, sim)

    try:
        lines = asyncio.run(main())
    except TimeoutError:
        err.print(
            f"[red]✗[/red] No answer from {settings.IBKR_HOST}:{port} within {timeout:g} s",
            soft_wrap=True,
        )
        err.print("  Timeout → check the firewall and that the API is enabled", soft_wrap=True)
        raise typer.Exit(cli_exit_code(GatewayTimeoutError("timeout"))) from None
    except IbkrMcpError as exc:
        err.print(f"[red]✗[/red] {exc.message}", soft_wrap=True)
        err.print(f"  {remedy_line(exc, port)}", soft_wrap=True)
        raise typer.Exit(cli_exit_code(exc)) from None
    for line in lines:
        out.print(f"[green]✓[/green] {line}", soft_wrap=True)
    out.print(f"  (checked in {time.monotonic() - started:.1f} s)", style="dim")
