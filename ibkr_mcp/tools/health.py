"""The health tool: connection, accounts, mode and the effective safety settings in one answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from ibkr_mcp import __version__, metrics
from ibkr_mcp.config import Settings
from ibkr_mcp.models import BrokerKind, GatewayStatus
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
    #: connected, hung, reconnecting, upstream-lost, farm-down or halted (see the runbook).
    state: str = "reconnecting"
    #: The last session notice from IB: code, message, remedy, at, age_seconds.
    last_notice: dict[str, Any] | None = None
    #: Requests waiting / open per queue (market data, historical).
    queues: dict[str, int] = Field(default_factory=dict)
    farms_down: list[str] = Field(default_factory=list)
    reconnects: int = 0
    #: Whether trading is halted (emergency stop, rejection breaker, kill-switch file) and how.
    halted: bool = False
    #: The halt in force: source, reason, since, by (``None`` when not halted).
    halt: dict[str, Any] | None = None


def halted(settings: Settings) -> bool:
    """Whether new orders are stopped (emergency stop, rejection breaker, kill-switch file)."""
    return current_halt(settings).halted


def halt_summary(halt: HaltState) -> str:
    """The one line saying who halted trading, when and why (never "System ready")."""
    since = "" if halt.since is None else f" since {halt.since.isoformat()}"
    return (
        f"HALTED ({halt.source}){since} by {halt.by or 'unknown'}: "
        f"{halt.reason or 'no reason given'}; new orders are refused until a human clears it "
        "(`ibkr-mcp emergency-stop --clear`)"
    )


def health_state(status: GatewayStatus, is_halted: bool) -> str:
    """The one ``state`` word: ``halted`` wins while connected, else the connection's state."""
    if is_halted and status.state in ("connected", "farm-down"):
        return "halted"
    return status.state


def readiness_summary(settings: Settings, status: GatewayStatus, state: str | None = None) -> str:
    """The runbook's one-line readiness, e.g. ``System ready (paper mode, orders disabled)``.

    When not ready it names the real cause (hung, client id clash, IB's servers unreachable),
    not only "no connection".
    """
    where = f"{status.host}:{status.port}"
    state = state or status.state
    if state == "hung":
        return f"Not ready: IB Gateway/TWS at {where} is not answering (hung): {status.last_error}"
    if state == "upstream-lost":
        return f"Not ready: IB Gateway at {where} has lost its connection to IB's servers"
    if not status.connected:
        if status.last_error:  # the real cause: refused, timed out, 326, dropped
            return f"Not ready: {status.last_error}"
        return (
            f"Not ready: no connection to IB Gateway/TWS at {where} "
            "(start it with the API enabled, or use --sim)"
        )
    mode = "paper mode" if settings.TRADING_MODE == "paper" else "LIVE mode"
    orders = "orders enabled" if settings.ORDERS_ENABLED else "orders disabled"
    extra = ""
    if state == "farm-down":
        extra = f"; degraded: data farm down ({', '.join(status.farms_down)}), quotes stale"
    elif state == "halted":
        return f"{halt_summary(current_halt(settings))} ({mode}, {orders})"
    return f"System ready ({mode}, {orders}{extra})"


def notice_dict(status: GatewayStatus, now: datetime | None = None) -> dict[str, Any] | None:
    """The last IB notice as a JSON-safe dict with its age in seconds."""
    notice = status.last_notice
    if notice is None:
        return None
    age = ((now or datetime.now(UTC)) - notice.at).total_seconds()
    return {
        "code": notice.code,
        "message": notice.message,
        "remedy": notice.remedy,
        "at": notice.at.isoformat(),
        "age_seconds": round(max(0.0, age), 1),
    }


async def get_health(params: HealthInput, ctx: CallContext) -> Health:
    """Handler of get_health (never fails because the gateway is down)."""
    settings = ctx.services.settings
    status = await ctx.services.gateway.status()
    policy = describe_policy(settings)
    halt = current_halt(settings)
    state = health_state(status, halt.halted)
    metrics.observe_gateway(status, state)
    return Health(
        ready=status.connected,
        summary=readiness_summary(settings, status, state),
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
        state=state,
        last_notice=notice_dict(status),
        queues=dict(status.queues),
        farms_down=list(status.farms_down),
        reconnects=status.reconnects,
        halted=halt.halted,
        halt=halt.to_dict() if halt.halted else None,
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
