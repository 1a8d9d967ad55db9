"""Gate 3: live trading needs a fresh, private override file naming the account."""

from __future__ import annotations

from datetime import datetime, timedelta

from ibkr_mcp.safety.context import GateContext, OverrideFile
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse, skip
from ibkr_mcp.safety.pricing import Notional, order_notional


def example_override(account: str, now: datetime) -> str:
    """An example override file for ``account`` valid for 8 hours (shown in remedies)."""
    expires = (now + timedelta(hours=8)).replace(microsecond=0).isoformat()
    return (
        f"account={account}\nexpires={expires}\n"
        "# optional: max_notional=10000\n# optional: symbols=AAPL,MSFT"
    )


class LiveOverrideGate:
    """Refuses live orders unless the override file allows this exact account, now."""

    name = "live_override"
    description = (
        "Live trading only: the override file must exist, be owned by the server's user, not be "
        "group/world-writable, name this account and not be expired (optional max_notional, "
        "symbols)."
    )

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on the override file (read fresh for every order by the facts collector)."""
        if not ctx.live_applies:
            return skip(self.name, "paper trading: no live override needed")
        path = ctx.settings.live_override_path
        account = ctx.intent.account
        example = example_override(account, ctx.now)
        how = (
            f"A human must create {path} (owned by the server's user, chmod 600) containing, "
            f"e.g.: {example}"
        )
        ov = ctx.override
        if ov is None or not ov.exists:
            return refuse(
                self.name, f"live trading needs the override file {path}, which does not exist", how
            )
        problem = _file_problem(ov)
        if problem is not None:
            reason, remedy = problem
            return refuse(self.name, reason, f"{remedy} {how}")
        if ov.account != account:
            return refuse(
                self.name,
                f"the override file {path} is for account {ov.account}, not {account}",
                f"A human must set account={account} in {path} (no wildcards).",
            )
        if ov.expires is None or ov.expires <= ctx.now:
            when = "(no expiry)" if ov.expires is None else ov.expires.isoformat()
            return refuse(
                self.name,
                f"the override file {path} expired at {when}",
                f"A human must set a new future expires= in {path}. {how}",
            )
        return self._restrictions(ctx, ov)

    def _restrictions(self, ctx: GateContext, ov: OverrideFile) -> Verdict:
        intent = ctx.intent
        if ov.symbols is not None and intent.symbol.upper() not in ov.symbols:
            return refuse(
                self.name,
                f"symbol {intent.symbol} is not in the override file's "
                f"symbols={','.join(ov.symbols)}",
                f"Trade one of {','.join(ov.symbols)}, or a human must extend symbols= in "
                f"{ov.path}.",
            )
        if ov.max_notional is not None:
            notional = order_notional(intent, ctx.quote, ctx.settings.PRICE_BAND_PCT)
            if not isinstance(notional, Notional):
                return refuse(
                    self.name,
                    f"the override file caps max_notional={ov.max_notional} but the order's "
                    f"value cannot be bounded: {notional}",
                    "Use a LMT order, or retry when a quote is available.",
                )
            if notional.value > ov.max_notional:
                return refuse(
                    self.name,
                    f"order value up to {notional.value:,.2f} {intent.currency} exceeds the "
                    f"override file's max_notional={ov.max_notional}",
                    f"Reduce the quantity, or a human must raise max_notional in {ov.path}.",
                )
        until = ov.expires.isoformat() if ov.expires else "?"
        return allow(self.name, f"live override for {ov.account} valid until {until}")


def _file_problem(ov: OverrideFile) -> tuple[str, str] | None:
    if not ov.owner_ok:
        return (
            f"the override file {ov.path} is not owned by the user running the server",
            f"A human must `chown` {ov.path} to the server's user.",
        )
    if not ov.mode_ok:
        return (
            f"the override file {ov.path} is writable by group or others",
            f"A human must `chmod 600 {ov.path}`.",
        )
    if ov.error is not None:
        return (f"the override file {ov.path} is malformed: {ov.error}", "Fix the file.")
    if ov.account is None or ov.expires is None:
        return (
            f"the override file {ov.path} is malformed: it needs account= and expires= lines",
            "Fix the file.",
        )
    return None
