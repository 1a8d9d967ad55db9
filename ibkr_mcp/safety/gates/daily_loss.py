"""Loss limit: below -MAX_DAILY_LOSS only orders that reduce a position may be sent."""

from __future__ import annotations

from decimal import Decimal

from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse, skip


def is_closing(side: str, quantity: Decimal, position: Decimal | None) -> bool:
    """Whether an order only reduces the position (never opens or flips it)."""
    if position is None or position == 0:
        return False
    if side == "SELL":
        return position > 0 and quantity <= position
    return position < 0 and quantity <= -position


class DailyLossGate:
    """Refuses exposure-increasing orders once the day's PnL is below -MAX_DAILY_LOSS."""

    name = "daily_loss"
    description = (
        "When realized plus unrealized PnL of the day is below -MAX_DAILY_LOSS (off by "
        "default), orders that increase exposure are refused; closing orders still pass."
    )

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on the day's loss."""
        s, flow, intent = ctx.settings, ctx.flow, ctx.intent
        limit = s.MAX_DAILY_LOSS
        if limit is None:
            return skip(self.name, "MAX_DAILY_LOSS not set: daily loss limit off")
        if not flow.collected:
            return skip(self.name, "flow facts not collected")
        if is_closing(intent.side, intent.quantity, flow.position):
            return allow(self.name, "the order reduces an existing position (always allowed)")
        pnl = flow.daily_pnl
        if pnl is None:
            return refuse(
                self.name,
                f"the day's PnL cannot be read ({flow.error('pnl') or 'no data'})",
                "Retry when the broker reports PnL; closing orders still pass.",
            )
        if pnl < -limit:
            return refuse(
                self.name,
                f"the day's PnL {pnl:,.2f} is below -MAX_DAILY_LOSS={limit}: orders that "
                "increase exposure are refused",
                "Only orders that reduce a position pass today (e.g. close_position).",
            )
        return allow(self.name, f"the day's PnL {pnl:,.2f} ≥ -MAX_DAILY_LOSS={limit}")
