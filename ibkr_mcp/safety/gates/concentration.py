"""Concentration limit: the position after a full fill stays within a share of net liquidation."""

from __future__ import annotations

from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse, skip
from ibkr_mcp.safety.pricing import Notional, order_notional


class ConcentrationGate:
    """Refuses an order whose resulting position exceeds MAX_POSITION_PCT_OF_NET_LIQ."""

    name = "concentration"
    description = (
        "The position after a full fill, valued at the order's bounded price, must be at most "
        "MAX_POSITION_PCT_OF_NET_LIQ percent of net liquidation (off by default)."
    )

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on concentration."""
        s, flow, intent = ctx.settings, ctx.flow, ctx.intent
        pct = s.MAX_POSITION_PCT_OF_NET_LIQ
        if pct is None:
            return skip(self.name, "MAX_POSITION_PCT_OF_NET_LIQ not set: concentration off")
        if not flow.collected:
            return skip(self.name, "flow facts not collected")
        position, net_liq = flow.position, flow.net_liquidation
        if position is None or net_liq is None or net_liq <= 0:
            why = flow.error("position") or flow.error("net_liquidation") or "no data"
            return refuse(
                self.name,
                f"position or net liquidation cannot be read ({why})",
                "Retry when the broker reports the account.",
            )
        signed = intent.quantity if intent.side == "BUY" else -intent.quantity
        after = position + signed
        if abs(after) <= abs(position):
            return allow(self.name, "the order does not increase the position")
        notional = order_notional(intent, ctx.quote, s.PRICE_BAND_PCT)
        if not isinstance(notional, Notional):
            return refuse(self.name, f"the position cannot be valued: {notional}", None)
        price = notional.value / intent.quantity
        share = abs(after) * price / net_liq * 100
        if share > pct:
            return refuse(
                self.name,
                f"the position after a full fill ({after} × {price:,.2f}) would be "
                f"{share:.2f}% of net liquidation {net_liq:,.2f} > "
                f"MAX_POSITION_PCT_OF_NET_LIQ={pct}",
                "Reduce the quantity.",
            )
        return allow(
            self.name, f"the position after a full fill is {share:.2f}% of net liq (≤ {pct}%)"
        )
