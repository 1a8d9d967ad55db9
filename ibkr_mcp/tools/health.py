"""The health tool: connection, accounts, mode and the effective safety settings in one answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ibkr_mcp import __version__
from ibkr_mcp.config import Settings
from ibkr_mcp.models import BrokerKind
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


def readiness_summary(settings: Settings, connected: bool, host: str, port: int) -> str:
    """The runbook's one-line readiness, e.g. ``System ready (paper mode, orders disabled)``."""
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
    return Health(
        ready=status.connected,
        summary=readiness_summary(settings, status.connected, status.host, status.port),
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
