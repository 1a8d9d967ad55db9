"""Flow limit 2: the value sent per account and currency per day stays within MAX_DAILY_NOTIONAL."""

from __future__ import annotations

from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse, skip
from ibkr_mcp.safety.pricing import Notional, added_value, order_notional


class DailyNotionalGate:
    """Refuses an order that would take today's sent value past MAX_DAILY_NOTIONAL."""

    name = "daily_notional"
    description = (
        "The value of every order sent today for the account and currency (working, filled or "
        "since cancelled: what was sent, as market-access rules count it; a broker rejection "
        "does not count), "
        "plus this order's bounded value (a modification: what it adds to the order's value), "
        "must be at most MAX_DAILY_NOTIONAL."
    )

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on the day's sent value."""
        s, flow, intent = ctx.settings, ctx.flow, ctx.intent
        if not flow.collected:
            return skip(self.name, "flow facts not collected")
        sent = flow.notional_today
        if sent is None:
            return refuse(
                self.name,
                f"today's sent value cannot be read ({flow.error('counters')})",
                "Fix the audit database, then retry.",
            )
        notional = order_notional(intent, ctx.quote, s.PRICE_BAND_PCT)
        if not isinstance(notional, Notional):
            return refuse(
                self.name,
                f"the order's value cannot be bounded: {notional}",
                "Use a LMT order, or retry when a quote is available.",
            )
        where = f"{intent.account} in {intent.currency}"
        added, what = notional.value, f"this order (up to {notional.value:,.2f})"
        if intent.modifies is not None and ctx.standing is not None:
            # A change is judged by what it adds to the order as it stands, valued the same
            # way (quote, band): counting the new value whole refused even reducing an order
            # near the limit. Never less than what its intent row will record.
            added = added_value(notional.value, ctx.standing, ctx.quote, s.PRICE_BAND_PCT)
            what = (
                f"this modification (order {intent.modifies}: up to {notional.value:,.2f}, "
                f"{added:,.2f} more than it stands)"
            )
        total = sent + added
        if total > s.MAX_DAILY_NOTIONAL:
            return refuse(
                self.name,
                f"{sent:,.2f} already sent today for {where}; {what} would reach "
                f"{total:,.2f} > MAX_DAILY_NOTIONAL={s.MAX_DAILY_NOTIONAL}",
                "Reduce the order, or wait for the next trading day; a human may raise "
                "MAX_DAILY_NOTIONAL and restart.",
            )
        return allow(
            self.name,
            f"{total:,.2f} sent today for {where} with this order ≤ "
            f"MAX_DAILY_NOTIONAL={s.MAX_DAILY_NOTIONAL}",
        )
