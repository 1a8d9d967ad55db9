"""``ibkr-mcp healthcheck``: the runbook's three checks, with a hard overall timeout."""

from __future__ import annotations

import asyncio
import time
from typing import Any, NoReturn

import typer

from ibkr_mcp.cli.common import (
    configure_cli_logging,
    connecting_status,
    err,
    out,
    settings_or_exit,
    write_json,
)
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


async def _check(settings: Settings, sim: bool) -> Any:
    """Connect, then ask get_health; return the ready health report or raise the reason."""
    from ibkr_mcp.runtime import open_runtime
    from ibkr_mcp.tools import build_registry

    registry = build_registry()
    # The CLI's own client id (never the running server's: IB would answer 326).
    client_id = settings.cli_client_id
    async with open_runtime(settings, sim=sim, wait_connected=0, client_id=client_id) as services:
        # The background connect loop is already trying; this waits for (or makes) a
        # connection and raises the precise reason when there is none.
        with connecting_status(settings, sim=sim):
            await services.gateway.ensure_connected()
        result = await registry.call("get_health", {}, services=services, surface="cli")
        health: Any = result.output
        if not health.connected:
            raise GatewayUnavailableError(
                health.last_error or "Not connected.", remedy="Retry, or use --sim."
            )
        return health


def _lines(health: Any) -> list[str]:
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


def _fail(exc: IbkrMcpError, line: str, *, as_json: bool) -> NoReturn:
    """Print the failure (and with ``as_json`` its error object on stdout), then exit."""
    if as_json:
        write_json({"error": {**exc.to_dict(), "remedy": line.split("→", 1)[-1].strip()}})
    err.print(f"[red]✗[/red] {exc.message}", soft_wrap=True)
    err.print(f"  {line}", soft_wrap=True)
    raise typer.Exit(cli_exit_code(exc))


def healthcheck(sim: bool, timeout: float, *, as_json: bool = False) -> None:
    """Run the checks within ``timeout`` seconds; exit 0 when ready, non-zero otherwise."""
    settings = settings_or_exit(as_json=as_json)
    configure_cli_logging(settings)
    port = settings.IBKR_PORT
    started = time.monotonic()

    async def main() -> Any:
        async with asyncio.timeout(timeout):
            return await _check(settings, sim)

    try:
        health = asyncio.run(main())
    except TimeoutError:
        exc = GatewayTimeoutError(
            f"No answer from {settings.IBKR_HOST}:{port} within {timeout:g} s",
            remedy="Check the firewall and that the API is enabled.",
        )
        _fail(exc, "Timeout → check the firewall and that the API is enabled", as_json=as_json)
    except IbkrMcpError as exc:
        _fail(exc, remedy_line(exc, port), as_json=as_json)
    elapsed = time.monotonic() - started
    if as_json:
        write_json({"ready": True, **health.model_dump(mode="json"), "checked_in_s": elapsed})
        return
    for line in _lines(health):
        out.print(f"[green]✓[/green] {line}", soft_wrap=True)
    out.print(f"  (checked in {elapsed:.1f} s)", style="dim")
