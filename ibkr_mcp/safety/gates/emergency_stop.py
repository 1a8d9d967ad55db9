"""Halt 1: while an emergency stop is engaged (persisted halt file) every new order is refused."""

from __future__ import annotations

from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse, skip
from ibkr_mcp.safety.halt import halt_refusal


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
        refusal = halt_refusal(flow.halt)
        if refusal is not None and refusal[0] == self.name:
            return refuse(self.name, refusal[1], refusal[2])
        return allow(self.name, "no emergency stop engaged")
