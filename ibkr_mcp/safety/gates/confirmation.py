"""Gate 5: placing needs the unused, unexpired token a preview issued for this exact order."""

from __future__ import annotations

from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse, skip

REMEDY = (
    "Call preview_order with exactly the same order, review it, then call place_order with the "
    "confirmation_token it returns (tokens are single-use and expire)."
)


class ConfirmationGate:
    """Checks the token peek done by the facts collector; consuming happens after the chain."""

    name = "confirmation"
    description = (
        "place_order needs the single-use confirmation token preview_order issued for exactly "
        "this order (account, contract, side, quantity, type, limit, TIF), before it expires."
    )

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on the confirmation token."""
        if ctx.mode == "preview":
            return skip(self.name, "preview: a confirmation token is issued, not required")
        token = ctx.token
        if not token.present:
            return refuse(self.name, "no confirmation token was given", REMEDY)
        if not token.valid:
            return refuse(self.name, f"the confirmation token is not valid: {token.reason}", REMEDY)
        return allow(self.name, "confirmation token valid for this exact order")
