"""Gate 1: TRADING_MODE must match the account type, and the gateway must manage the account."""

from __future__ import annotations

from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse


class TradingModeGate:
    """Refuses a live account in paper mode (and vice versa) or an account not managed."""

    name = "trading_mode"
    description = (
        "TRADING_MODE must match the account (DU…/DF… paper, else live) and the gateway must "
        "manage the account."
    )

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on the account and the trading mode."""
        account = ctx.intent.account
        mode = ctx.settings.TRADING_MODE
        kind = "live" if ctx.intent.is_live_account else "paper"
        if not account:
            return refuse(self.name, "the order names no account", "Pass an account id.")
        if kind != mode:
            remedy = (
                "Use a paper account (DU…) or, only if you really mean to trade real money, set "
                "TRADING_MODE=live, create the live override file and restart."
                if kind == "live"
                else "Set TRADING_MODE=paper and restart, or connect to a live account."
            )
            return refuse(
                self.name,
                f"account {account} is a {kind.upper()} account but TRADING_MODE={mode}; "
                "refusing to mix paper and live",
                remedy,
            )
        if account not in ctx.managed_accounts:
            managed = ", ".join(ctx.managed_accounts) or "none (not connected?)"
            return refuse(
                self.name,
                f"account {account} is not managed by the connected gateway (managed: {managed})",
                "Use one of the managed accounts (see get_accounts / health), or check that the "
                "gateway is connected and logged in to the right user.",
            )
        return allow(self.name, f"{kind} account {account} matches TRADING_MODE={mode}")
