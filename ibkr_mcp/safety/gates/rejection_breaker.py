"""Halt 2: MAX_REJECTIONS broker rejections within REJECTION_WINDOW_MINUTES halt trading."""

from __future__ import annotations

from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse, skip
from ibkr_mcp.safety.halt import BREAKER_REMEDY, halt_refusal


class RejectionBreakerGate:
    """Refuses every order once the breaker tripped, until a human resets it."""

    name = "rejection_breaker"
    description = (
        "MAX_REJECTIONS broker rejections within REJECTION_WINDOW_MINUTES halt trading until a "
        "human resets the breaker (the same way an emergency stop is cleared)."
    )

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on the breaker."""
        s, flow = ctx.settings, ctx.flow
        if not flow.collected:
            return skip(self.name, "flow facts not collected")
        limit = f"MAX_REJECTIONS={s.MAX_REJECTIONS} in {s.REJECTION_WINDOW_MINUTES} min"
        refusal = halt_refusal(flow.halt)
        if refusal is not None and refusal[0] == self.name:
            return refuse(self.name, refusal[1], refusal[2])
        count = flow.rejections_in_window
        if count is None:
            return refuse(
                self.name,
                f"the rejection count cannot be read ({flow.error('rejections')})",
                "Fix the audit database, then retry.",
            )
        if count >= s.MAX_REJECTIONS:
            return refuse(
                self.name,
                f"{count} broker rejections in the window ({limit}); trading is halted",
                BREAKER_REMEDY,
            )
        return allow(self.name, f"{count} broker rejection(s) in the window ({limit})")
