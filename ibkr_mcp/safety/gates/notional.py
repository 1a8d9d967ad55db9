"""Risk limit 4: the order's bounded value must be at most MAX_ORDER_NOTIONAL."""

from __future__ import annotations

from ibkr_mcp.safety.context import GateContext, OrderIntent
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse
from ibkr_mcp.safety.pricing import Notional, order_notional


def currency_note(intent: OrderIntent) -> str:
    """Which currency the notional is in (FX: the quote currency, said explicitly)."""
    if intent.sec_type.upper() == "CASH":
        return f"{intent.currency} (FX: notional is in the quote currency {intent.currency})"
    return intent.currency


class NotionalGate:
    """Refuses orders worth more than MAX_ORDER_NOTIONAL, or whose value cannot be bounded."""

    name = "notional"
    description = (
        "Order value must be at most MAX_ORDER_NOTIONAL: qty × multiplier × price, the price "
        "being the limit (LMT, LOC, STP_LMT, LIT), else (ask for BUY / bid for SELL, else last, "
        "else mid; for stops the higher of it and the trigger; for trails plus the trail) × "
        "(1 + PRICE_BAND_PCT/100); an order without a usable quote or limit is refused. A "
        "bracket is worth its parent."
    )

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on the order's notional value."""
        s, intent = ctx.settings, ctx.intent
        notional = order_notional(intent, ctx.quote, s.PRICE_BAND_PCT)
        if not isinstance(notional, Notional):
            return refuse(
                self.name,
                f"the order's value cannot be bounded: {notional}",
                "Use a LMT order with an explicit limit price, or retry when a quote (live or "
                "delayed) is available for the contract.",
            )
        limit = s.MAX_ORDER_NOTIONAL
        currency = currency_note(intent)
        if notional.value > limit:
            return refuse(
                self.name,
                f"order value up to {notional.value:,.2f} {currency} ({notional.basis}) exceeds "
                f"MAX_ORDER_NOTIONAL={limit}",
                "Reduce the quantity, or (a human) raise MAX_ORDER_NOTIONAL and restart.",
            )
        return allow(
            self.name,
            f"order value up to {notional.value:,.2f} {currency} ({notional.basis}) ≤ "
            f"MAX_ORDER_NOTIONAL={limit}",
        )
