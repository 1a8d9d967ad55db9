"""Order read tools: open orders, one order's status, executions with commissions."""

from __future__ import annotations

from pydantic import Field

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


class ExecutionsResult(ToolOutput):
    """Today's fills with commissions."""

    account: str
    fills: list[Fill]


async def get_open_orders(params: OpenOrdersInput, ctx: CallContext) -> OrdersResult:
    """Handler of get_open_orders."""
    account = await resolve_account(ctx, params.account)
    orders = await ctx.services.gateway.open_orders()
    return OrdersResult(orders=[o for o in orders if o.account == account])


async def get_order_status(params: OrderStatusInput, ctx: CallContext) -> OrderInfo:
    """Handler of get_order_status."""
    await ctx.services.gateway.ensure_connected()
    return await ctx.services.gateway.order_status(params.order_id)


async def get_executions(params: ExecutionsInput, ctx: CallContext) -> ExecutionsResult:
    """Handler of get_executions."""
    account = await resolve_account(ctx, params.account)
    fills = await ctx.services.gateway.executions(account)
    if params.symbol:
        fills = [f for f in fills if f.symbol.upper() == params.symbol.upper()]
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
        name="get_order_status",
        description="Status, fills and average price of one order by id.",
        input_model=OrderStatusInput,
        output_model=OrderInfo,
        handler=get_order_status,
        http_method="GET",
        http_path="/api/orders/{order_id}/status",
        cli_name="order-status",
        cli_arguments=("order_id",),
    ),
    ToolSpec(
        name="get_executions",
        description="Today's fills with price, commission and realized PnL.",
        input_model=ExecutionsInput,
        output_model=ExecutionsResult,
        handler=get_executions,
        http_method="GET",
        http_path="/api/orders/executions",
        cli_name="executions",
    ),
)
