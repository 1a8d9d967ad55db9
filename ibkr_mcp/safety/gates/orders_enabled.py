"""Gate 2: ORDERS_ENABLED=false turns every placement into an explicit dry run."""

from __future__ import annotations

from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates.base import Verdict, allow

DRY_RUN_REASON = (
    "ORDERS_ENABLED=false: this was a DRY RUN; NOTHING was sent to the broker and no order "
    "exists. To trade, set ORDERS_ENABLED=true and restart the server."
)
DRY_RUN_PREVIEW_REASON = (
    "ORDERS_ENABLED=false: placing this order would be a DRY RUN; NOTHING would be sent to the "
    "broker. To trade, set ORDERS_ENABLED=true and restart the server."
)


class OrdersEnabledGate:
    """Yields ``dry_run`` (not a refusal: the rest of the chain still runs) when disabled."""

    name = "orders_enabled"
    description = (
        "ORDERS_ENABLED=false makes place_order a dry run: every gate still runs, nothing is sent."
    )

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on ORDERS_ENABLED."""
        if ctx.settings.ORDERS_ENABLED:
            return allow(self.name, "ORDERS_ENABLED=true: orders that pass every gate are sent")
        reason = DRY_RUN_PREVIEW_REASON if ctx.mode == "preview" else DRY_RUN_REASON
        return Verdict(
            self.name,
            "dry_run",
            reason,
            "Set ORDERS_ENABLED=true in the environment or .env and restart the server.",
        )
