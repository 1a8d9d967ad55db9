"""Human approval: with REQUIRE_APPROVAL the order is queued for a human instead of sent."""

from __future__ import annotations

from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates.base import Verdict, allow, hold, skip


class ApprovalGate:
    """Holds an order that needs a human approval (REQUIRE_APPROVAL=live|always)."""

    name = "approval"
    description = (
        "With REQUIRE_APPROVAL=always, or =live (default) for live trading, place_order queues "
        "the order as PENDING_APPROVAL; a human approves it out of band (`ibkr-mcp approvals`)."
    )

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on approval."""
        flow = ctx.flow
        if not flow.approval_required:
            return skip(self.name, f"REQUIRE_APPROVAL={ctx.settings.REQUIRE_APPROVAL}: not needed")
        if flow.approval_granted:
            return allow(self.name, "approved by a human")
        if ctx.mode == "preview":
            return skip(self.name, "place_order will queue this order for a human's approval")
        return hold(
            self.name,
            "this order needs a human's approval before it is sent "
            f"(REQUIRE_APPROVAL={ctx.settings.REQUIRE_APPROVAL})",
            "A human runs `ibkr-mcp approvals approve <approval_id>`; watch the order with "
            "get_order_status or ibkr://approvals/pending.",
        )
