"""Halt 1: while an emergency stop is engaged (persisted halt file) every new order is refused."""

from __future__ import annotations

from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse, skip


class EmergencyStopGate:
    """Refuses everything while the persisted halt state says an emergency stop is engaged."""

    name = "emergency_stop"
    description = (
        "While an emergency stop is engaged (MCP emergency_stop, `ibkr-mcp emergency-stop`, "
        "POST /api/emergency-stop; persisted in HALT_STATE_FILE) every new order is refused."
    )

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on the halt state."""
        flow = ctx.flow
        if not flow.collected:
            return skip(self.name, "flow facts not collected")
        halt = flow.halt
        if halt.halted and halt.source != "rejection_breaker":
            since = "" if halt.since is None else f" since {halt.since.isoformat()}"
            return refuse(
                self.name,
                f"trading is HALTED by an emergency stop{since} (by {halt.by or 'unknown'}: "
                f"{halt.reason or 'no reason given'}): every new order is refused",
                "Only a human can clear it: `ibkr-mcp emergency-stop --clear` or "
                "DELETE /api/emergency-stop with the API token, once it is safe to trade.",
            )
        return allow(self.name, "no emergency stop engaged")
