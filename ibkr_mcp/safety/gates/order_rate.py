"""Flow limit 1: at most MAX_ORDERS_PER_MINUTE and MAX_ORDERS_PER_DAY orders are sent."""

from __future__ import annotations

from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse, skip


class OrderRateGate:
    """Refuses an order that would exceed the per-minute or per-day order count."""

    name = "order_rate"
    description = (
        "At most MAX_ORDERS_PER_MINUTE orders in any 60 s and MAX_ORDERS_PER_DAY per New York "
        "trading day, counted from the audit trail across every process and restart."
    )

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on the order rate."""
        s, flow = ctx.settings, ctx.flow
        if not flow.collected:
            return skip(self.name, "flow facts not collected")
        minute, day = flow.orders_last_minute, flow.orders_today
        if minute is None or day is None:
            return refuse(
                self.name,
                f"the order counters cannot be read ({flow.error('counters')})",
                "Fix the audit database, then retry.",
            )
        if minute >= s.MAX_ORDERS_PER_MINUTE:
            return refuse(
                self.name,
                f"{minute} orders were sent in the last 60 s "
                f"(MAX_ORDERS_PER_MINUTE={s.MAX_ORDERS_PER_MINUTE})",
                "Wait a minute and retry; if this is a runaway loop, stop it.",
            )
        if day >= s.MAX_ORDERS_PER_DAY:
            return refuse(
                self.name,
                f"{day} orders were sent today (MAX_ORDERS_PER_DAY={s.MAX_ORDERS_PER_DAY})",
                "No more orders today; a human may raise MAX_ORDERS_PER_DAY and restart.",
            )
        return allow(
            self.name,
            f"{minute} order(s) in the last 60 s (max {s.MAX_ORDERS_PER_MINUTE}), {day} today "
            f"(max {s.MAX_ORDERS_PER_DAY})",
        )
