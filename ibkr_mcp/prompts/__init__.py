"""MCP prompts: a pre-trade checklist, a portfolio review and an end-of-day summary."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastmcp import FastMCP


def pre_trade_checklist_text(symbol: str, side: str, quantity: str) -> str:
    """The pre-trade checklist for one order idea."""
    order = f"{side.upper()} {quantity} {symbol.upper()}".replace("  ", " ").strip()
    return f"""Pre-trade checklist for: {order}

Work through every step and report what you found; stop and ask me if any step fails.
1. get_health: the system must say ready; note paper or LIVE mode and whether orders are enabled.
2. get_quote {symbol.upper()}: record bid, ask, last, and whether the quote is live or delayed
   (and its timestamp). Do not size an order from a delayed or stale quote without saying so.
3. get_bars {symbol.upper()} (duration "5 D", bar_size "1 day"): recent range and trend.
4. get_positions and get_account_summary: current exposure to {symbol.upper()}, buying power,
   and what this order would do to concentration (order value vs net liquidation).
5. get_open_orders: any working order on {symbol.upper()} that this would duplicate? To change
   one, use modify_order (same order id, no gap) rather than cancel and re-place.
6. Protection: decide where the position is wrong and where you take profit. Prefer one bracket
   (take_profit_price and stop_loss_price on the same preview_order; a BUY's take-profit above
   and stop below the entry, a SELL's the reverse), or a STP / TRAIL order for an existing
   position. A stop beyond the 5% price band or on the wrong side of the market is refused.
7. preview_order: a refused preview says REFUSED first; read the refusals (gate, reason, remedy),
   the passed gates, the what-if margin and commission. Do not try to work around a gate.
8. Summarize the order (with its stop and target), its estimated cost, and the risks in three
   lines, then ASK ME to confirm before calling place_order with the confirmation_token and a
   new idempotency_key. Afterwards wait_for_order reports fills; close_position flattens.
"""


def portfolio_review_text(account: str | None) -> str:
    """The portfolio review prompt."""
    which = f"account {account}" if account else "the default account"
    return f"""Review the portfolio of {which}.

1. get_account_summary: net liquidation, cash, buying power, margin use.
2. get_positions: for each position, quantity, average cost, market value, unrealized PnL and
   its weight in net liquidation. Flag any position above 20% of net liquidation.
3. get_pnl: today's PnL, unrealized and realized.
4. get_quotes for every held symbol in one call; say which quotes are delayed.
5. get_open_orders: list working orders and whether they still make sense.
Finish with a short table and at most three observations. Do not place or cancel orders.
"""


def end_of_day_text() -> str:
    """The end-of-day summary prompt."""
    return """Write today's end-of-day summary.

1. get_executions: every fill today with price, commission and realized PnL.
2. get_pnl and get_account_summary: daily PnL, net liquidation, cash.
3. get_open_orders: what is still working overnight (GTC) and what will expire (DAY).
4. Read the resource ibkr://audit/recent: any refused or rejected orders, and why.
Report: fills, PnL, open risk, anything unusual. Do not place or cancel orders.
"""


def register_prompts(mcp: "FastMCP[Any]") -> None:
    """Register the prompts on ``mcp``."""

    # Plain ``str`` parameters (this module has no ``from __future__ import annotations``):
    # FastMCP appends a JSON-schema note to any other annotation; the descriptions come from
    # the docstrings' Args sections.
    @mcp.prompt(name="pre_trade_checklist", description="Checklist before trading a symbol.")
    def pre_trade_checklist(symbol: str, side: str = "BUY", quantity: str = "") -> str:
        """Checklist before trading a symbol.

        Args:
            symbol: Ticker to check, e.g. AAPL (or an FX pair such as EUR.USD).
            side: BUY or SELL (default BUY).
            quantity: The order size you have in mind, in shares, e.g. 10 (optional).
        """
        return pre_trade_checklist_text(symbol, side, quantity)

    @mcp.prompt(name="portfolio_review", description="Review positions, exposure and PnL.")
    def portfolio_review(account: str = "") -> str:
        """Review positions, exposure and PnL.

        Args:
            account: Account id to review (optional; default: the first managed account).
        """
        return portfolio_review_text(account or None)

    @mcp.prompt(name="end_of_day_summary", description="Summarize today's fills, PnL and risk.")
    def end_of_day_summary() -> str:
        return end_of_day_text()
