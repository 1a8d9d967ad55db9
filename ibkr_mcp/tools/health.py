"""The health tool: connection, accounts, mode and the effective safety settings in one answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from ibkr_mcp import __version__
from ibkr_mcp.config import Settings
from ibkr_mcp.models import BrokerKind
from ibkr_mcp.safety.emergency import current_halt
from ibkr_mcp.safety.halt import HaltState
from ibkr_mcp.safety.policy import describe_policy
from ibkr_mcp.tools.common import ToolInput, ToolOutput
from ibkr_mcp.tools.registry import CallContext, ToolSpec


class HealthInput(ToolInput):
    """get_health takes no input."""


class Health(ToolOutput):
    """Whether the system is ready, and why not."""

    ready: bool
    summary: str
    connected: bool
    broker: BrokerKind | None
    host: str
    port: int
    client_id: int
    server_version: int | None
    server_time: datetime | None
    accounts: list[str]
    trading_mode: str
    orders_enabled: bool
    market_data_type: str
    safety: dict[str, Any]
    audit_db: str
    version: str
    last_error: str | None = None
    state: str = Field(
        "connected",
        description="connected, disconnected or halted (trading halted: reason, since, by).",
    )
    halted: bool = False
    halt: dict[str, Any] | None = None


def trading_state(connected: bool, halt: HaltState) -> str:
    """``halted`` whenever trading is halted, else ``connected``/``disconnected``."""
    if halt.halted:
        return "halted"
    return "connected" if connected else "disconnected"


def readiness_summary(
    settings: Settings, connected: bool, host: str, port: int, halt: HaltState | None = None
) -> str:
    """The runbook's one-line readiness, e.g. ``System ready (paper mode, orders disabled)``.

    Never "System ready" while trading is halted.
    """
    if halt is not None and halt.halted:
        since = "" if halt.since is None else f" since {halt.since.isoformat()}"
        return (
            f"HALTED ({halt.source}){since} by {halt.by or 'unknown'}: "
            f"{halt.reason or 'no reason given'}; no new orders until a human clears it "
            "(`ibkr-mcp emergency-stop --clear`)"
        )
    if not connected:
        return (
            f"Not ready: no connection to IB Gateway/TWS at {host}:{port} "
            "(start it with the API enabled, or use --sim)"
        )
    mode = "paper mode" if settings.TRADING_MODE == "paper" else "LIVE mode"
    orders = "orders enabled" if settings.ORDERS_ENABLED else "orders disabled"
    return f"System ready ({mode}, {orders})"


async def get_health(params: HealthInput, ctx: CallContext) -> Health:
    """Handler of get_health (never fails because the gateway is down)."""
    settings = ctx.services.settings
    status = await ctx.services.gateway.status()
    policy = describe_policy(settings)
    halt = current_halt(settings)
    return Health(
        ready=status.connected,
        summary=readiness_summary(settings, status.connected, status.host, status.port, halt),
        state=trading_state(status.connected, halt),
        halted=halt.halted,
        halt=halt.to_dict() if halt.halted else None,
        connected=status.connected,
        broker=status.broker,
        host=status.host,
        port=status.port,
        client_id=status.client_id,
        server_version=status.server_version,
        server_time=status.server_time,
        accounts=list(status.accounts),
        trading_mode=settings.TRADING_MODE,
        orders_enabled=settings.ORDERS_ENABLED,
        market_data_type=settings.MARKET_DATA_TYPE,
        safety=policy,
        audit_db=str(settings.audit_db_path),
        version=__version__,
        last_error=status.last_error,
    )


SPECS: tuple[ToolSpec, ...] = (  # type: ignore[type-arg]
    ToolSpec(
        name="get_health",
        description="Connection, accounts, trading mode, orders enabled and safety limits.",
        input_model=HealthInput,
        output_model=Health,
        handler=get_health,
        http_method="GET",
        http_path="/api/health",
        cli_name="status",
    ),
)
