"""Order read tools: open orders, one order's status, executions with commissions."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from ibkr_mcp.models import Fill, OrderInfo
from ibkr_mcp.tools.common import (
    Account,
    OrderId,
    Symbol,
    ToolInput,
    ToolOutput,
    resolve_account,
)
from ibkr_mcp.tools.registry import CallContext, ToolSpec


class OpenOrdersInput(ToolInput):
    """Input of get_open_orders."""

    account: Account = None


class OrdersResult(ToolOutput):
    """Orders, newest last."""

    orders: list[OrderInfo]


class OrderStatusInput(ToolInput):
    """Input of get_order_status."""

    order_id: OrderId


class ExecutionsInput(ToolInput):
    """Input of get_executions."""

    account: Account = None
    symbol: Symbol | None = Field(None, description="Only fills of this symbol.")
    since: AwareDatetime | None = Field(None, description="Only fills at or after (ISO-8601).")


class ExecutionsResult(ToolOutput):
    """Today's fills with commissions."""

    account: str
    fills: list[Fill]


async def get_open_orders(params: OpenOrdersInput, ctx: CallContext) -> OrdersResult:
    """Handler of get_open_orders."""
    account = await resolve_account(ctx, params.account)
    orders = await ctx.services.gateway.open_orders()
    return OrdersResult(orders=[o for o in orders if o.account == account])


async def get_executions(params: ExecutionsInput, ctx: CallContext) -> ExecutionsResult:
    """Handler of get_executions."""
    account = await resolve_account(ctx, params.account)
    fills = await ctx.services.gateway.executions(account)
    if params.symbol:
        fills = [f for f in fills if f.symbol.upper() == params.symbol.upper()]
    if params.since is not None:
        fills = [f for f in fills if f.time >= params.since]
    return ExecutionsResult(account=account, fills=fills)


SPECS: tuple[ToolSpec, ...] = (  # type: ignore[type-arg]
    ToolSpec(
        name="get_open_orders",
        description="Working orders of an account (all clients).",
        input_model=OpenOrdersInput,
        output_model=OrdersResult,
        handler=get_open_orders,
        http_method="GET",
        http_path="/api/orders/open",
        cli_name="orders",
    ),
    ToolSpec(
        name="get_executions",
        description="Today's fills (optionally since a time) with price, commission and "
        "realized PnL.",
        input_model=ExecutionsInput,
        output_model=ExecutionsResult,
        handler=get_executions,
        http_method="GET",
        http_path="/api/orders/executions",
        cli_name="executions",
    ),
)
