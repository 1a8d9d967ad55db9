"""Risk limit 1: while the kill switch file exists every new order is refused."""

from __future__ import annotations

from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse


class KillSwitchGate:
    """Refuses everything while ``KILL_SWITCH_FILE`` exists."""

    name = "kill_switch"
    description = "While the KILL_SWITCH_FILE exists every new order is refused."

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on the kill switch."""
        path = ctx.kill_switch_path or ctx.settings.kill_switch_path
        if ctx.kill_switch_active:
            return refuse(
                self.name,
                f"the kill switch is ACTIVE (file {path} exists): every new order is refused",
                f"A human engaged the kill switch on purpose; only a human should remove {path} "
                "once it is safe to trade again.",
            )
        return allow(self.name, f"kill switch not engaged ({path} absent)")
