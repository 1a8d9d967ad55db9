"""Short sales: unless ALLOW_SHORT, a SELL may not exceed the long position not yet for sale."""

from __future__ import annotations

from decimal import Decimal

from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse, skip


class ShortSaleGate:
    """Refuses selling more than is held (a short sale) unless ALLOW_SHORT=true."""

    name = "short_sale"
    description = (
        "Unless ALLOW_SHORT=true, a SELL of more than the long position held, less what working "
        "SELL orders may still sell, is refused (FX is a currency exchange, not a short sale)."
    )

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on short selling."""
        s, flow, intent = ctx.settings, ctx.flow, ctx.intent
        if intent.side != "SELL":
            return skip(self.name, "not a sell")
        if intent.sec_type.upper() == "CASH":
            return skip(self.name, "FX: selling a currency pair is not a short sale")
        if s.ALLOW_SHORT:
            return allow(self.name, "ALLOW_SHORT=true")
        if not flow.collected:
            return skip(self.name, "flow facts not collected")
        if flow.position is None:
            return refuse(
                self.name,
                f"the position cannot be read ({flow.error('position') or 'no data'}), so a "
                "short sale cannot be ruled out",
                "Retry when the broker reports positions.",
            )
        if flow.working_sells is None:
            return refuse(
                self.name,
                "the working orders cannot be read, so a short sale cannot be ruled out",
                "Retry when the broker reports its open orders.",
            )
        held = flow.position if flow.position > 0 else Decimal(0)
        free = max(held - flow.working_sells, Decimal(0))
        pending = (
            f" and {_text(flow.working_sells)} already for sale in working or just-sent orders"
            if flow.working_sells > 0
            else ""
        )
        if intent.quantity > free:
            return refuse(
                self.name,
                f"selling {_text(intent.quantity)} {intent.symbol} with {_text(flow.position)} "
                f"held{pending} would be a short sale (ALLOW_SHORT=false)",
                f"Sell at most {_text(free)} (or cancel or reduce a working sell first); a human "
                "may set ALLOW_SHORT=true.",
            )
        return allow(
            self.name, f"selling {_text(intent.quantity)} of {_text(flow.position)} held{pending}"
        )


def _text(value: Decimal) -> str:
    # IB reports positions as floats: 50.0 reads as 50, 0.5 stays 0.5.
    return f"{value.normalize():f}" if value == value.to_integral_value() else f"{value:f}"
