"""Trading hours: orders outside the instrument's session are refused (TRADING_HOURS_ONLY)."""

from __future__ import annotations

from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse, skip


class TradingHoursGate:
    """Refuses an order outside regular hours unless outside_rth and inside the extended session."""

    name = "trading_hours"
    description = (
        "With TRADING_HOURS_ONLY (default: true live, false paper) an order outside the "
        "instrument's regular session is refused, unless outside_rth=true and the extended "
        "session is open."
    )

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on the session."""
        s, flow = ctx.settings, ctx.flow
        if not s.trading_hours_only:
            return skip(self.name, "TRADING_HOURS_ONLY=false")
        if not flow.collected:
            return skip(self.name, "flow facts not collected")
        note = flow.session_note or "the session"
        if flow.session_open is None:
            return refuse(
                self.name,
                f"the instrument's session is unknown ({flow.error('session') or 'no hours'})",
                "Retry when contract details are available.",
            )
        if not flow.session_open:
            remedy = "Wait for the session to open."
            if not ctx.intent.outside_rth:
                remedy += " To trade in the extended session, pass outside_rth=true."
            return refuse(self.name, f"outside {note}", remedy)
        return allow(self.name, f"inside {note}")
