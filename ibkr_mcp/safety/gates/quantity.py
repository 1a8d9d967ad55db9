"""Risk limit 3: the quantity must be positive and at most MAX_ORDER_QUANTITY."""

from __future__ import annotations

from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse


class QuantityGate:
    """Refuses non-positive quantities and any above MAX_ORDER_QUANTITY."""

    name = "quantity"
    description = "Quantity must be positive and at most MAX_ORDER_QUANTITY."

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on the quantity."""
        qty, limit = ctx.intent.quantity, ctx.settings.MAX_ORDER_QUANTITY
        if not qty.is_finite() or qty <= 0:
            return refuse(
                self.name, f"quantity {qty} is not a positive number", "Pass a positive quantity."
            )
        if qty > limit:
            return refuse(
                self.name,
                f"quantity {qty} exceeds MAX_ORDER_QUANTITY={limit}",
                f"Order at most {limit}, split the order deliberately, or (a human) raise "
                "MAX_ORDER_QUANTITY and restart.",
            )
        return allow(self.name, f"quantity {qty} ≤ MAX_ORDER_QUANTITY={limit}")
