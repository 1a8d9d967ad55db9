"""Risk limit 1: while the kill switch file exists every new order is refused."""

from __future__ import annotations

from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse
from ibkr_mcp.safety.halt import kill_switch_refusal


class KillSwitchGate:
    """Refuses everything while ``KILL_SWITCH_FILE`` exists."""

    name = "kill_switch"
    description = "While the KILL_SWITCH_FILE exists every new order is refused."

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on the kill switch."""
        path = ctx.kill_switch_path or ctx.settings.kill_switch_path
        if ctx.kill_switch_active:
            return refuse(self.name, *kill_switch_refusal(path))
        return allow(self.name, f"kill switch not engaged ({path} absent)")
