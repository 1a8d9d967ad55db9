"""Account tools: summary, positions, PnL."""

from __future__ import annotations

from ibkr_mcp.models import AccountSummary, PnL, Position
from ibkr_mcp.tools.common import Account, ToolInput, ToolOutput, resolve_account
from ibkr_mcp.tools.registry import CallContext, ToolSpec


class AccountInput(ToolInput):
    """Input of the account-scoped tools."""

    account: Account = None


class PositionsResult(ToolOutput):
    """Positions of one account."""

    account: str
    positions: list[Position]


async def get_account_summary(params: AccountInput, ctx: CallContext) -> AccountSummary:
    """Handler of get_account_summary."""
    account = await resolve_account(ctx, params.account)
    return await ctx.services.gateway.account_summary(account)


async def get_positions(params: AccountInput, ctx: CallContext) -> PositionsResult:
    """Handler of get_positions."""
    account = await resolve_account(ctx, params.account)
    positions = await ctx.services.gateway.positions(account)
    return PositionsResult(account=account, positions=positions)


async def get_pnl(params: AccountInput, ctx: CallContext) -> PnL:
    """Handler of get_pnl."""
    account = await resolve_account(ctx, params.account)
    return await ctx.services.gateway.pnl(account)


SPECS: tuple[ToolSpec, ...] = (  # type: ignore[type-arg]
    ToolSpec(
        name="get_account_summary",
        description="Net liquidation, cash, buying power, margin and PnL of an account.",
        input_model=AccountInput,
        output_model=AccountSummary,
        handler=get_account_summary,
        http_method="GET",
        http_path="/api/account/summary",
        cli_name="account",
    ),
    ToolSpec(
        name="get_positions",
        description="Positions with average cost, market value and unrealized PnL.",
        input_model=AccountInput,
        output_model=PositionsResult,
        handler=get_positions,
        http_method="GET",
        http_path="/api/account/positions",
        cli_name="positions",
    ),
    ToolSpec(
        name="get_pnl",
        description="Daily, unrealized and realized PnL of an account and of each position.",
        input_model=AccountInput,
        output_model=PnL,
        handler=get_pnl,
        http_method="GET",
        http_path="/api/account/pnl",
        cli_name="pnl",
    ),
)
