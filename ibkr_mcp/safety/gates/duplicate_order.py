"""Flow limit 3: the same order under a different idempotency key within the window is refused."""

from __future__ import annotations

from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse, skip


class DuplicateOrderGate:
    """Refuses a probable duplicate: same account/contract/side/quantity/type, another key."""

    name = "duplicate_order"
    description = (
        "The same account, contract, side, quantity and order type sent under a different "
        "idempotency key within DUPLICATE_ORDER_WINDOW_SECONDS is refused as a probable duplicate."
    )

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on duplicates."""
        s, flow = ctx.settings, ctx.flow
        window = s.DUPLICATE_ORDER_WINDOW_SECONDS
        if ctx.intent.modifies is not None:
            # modify_order changes a working order in place: it cannot duplicate one.
            return allow(self.name, f"a change of working order {ctx.intent.modifies}")
        if not flow.collected:
            return skip(self.name, "flow facts not collected")
        if window == 0:
            return skip(self.name, "DUPLICATE_ORDER_WINDOW_SECONDS=0: duplicate check off")
        if flow.orders_today is None:
            return refuse(
                self.name,
                f"recent orders cannot be read ({flow.error('counters')})",
                "Fix the audit database, then retry.",
            )
        if flow.duplicate_of is not None:
            # Never "-0 s ago": the audit stamps rows with its own clock, a hair after ours.
            age = max(flow.duplicate_age_seconds or 0.0, 0.0)
            wait = max(1, int(window - age) + 1)
            return refuse(
                self.name,
                f"the same order was sent {age:.0f} s ago under idempotency key "
                f"{flow.duplicate_of!r} (window {window} s): probable duplicate",
                f"If it is a retry, reuse key {flow.duplicate_of!r} (it replays, never re-sends). "
                f"If you really want a second identical order, wait {wait} s, or change the order.",
            )
        return allow(self.name, f"no identical order in the last {window} s")
