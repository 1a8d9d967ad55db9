"""Risk limit 2: the security type, currency and symbol must be on the allowlists."""

from __future__ import annotations

from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse


def _listed(values: tuple[str, ...]) -> str:
    return ",".join(values) or "(empty: nothing allowed)"


class AllowlistGate:
    """Checks ALLOWED_SEC_TYPES, ALLOWED_CURRENCIES and ALLOWED_SYMBOLS (empty symbols: all)."""

    name = "allowlists"
    description = (
        "Security type, currency and symbol must be in ALLOWED_SEC_TYPES, ALLOWED_CURRENCIES "
        "and ALLOWED_SYMBOLS (empty ALLOWED_SYMBOLS allows every symbol)."
    )

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on the allowlists."""
        s, intent = ctx.settings, ctx.intent
        sec_type, currency = intent.sec_type.upper(), intent.currency.upper()
        symbol = intent.symbol.upper()
        # Empty sec type / currency lists fail closed: an empty allowlist allows nothing.
        if sec_type not in s.ALLOWED_SEC_TYPES:
            return refuse(
                self.name,
                f"security type {sec_type} is not allowed "
                f"(ALLOWED_SEC_TYPES={_listed(s.ALLOWED_SEC_TYPES)})",
                f"Trade an allowed security type, or add {sec_type} to ALLOWED_SEC_TYPES and "
                "restart.",
            )
        if currency not in s.ALLOWED_CURRENCIES:
            return refuse(
                self.name,
                f"currency {currency} is not allowed "
                f"(ALLOWED_CURRENCIES={_listed(s.ALLOWED_CURRENCIES)})",
                f"Trade in an allowed currency, or add {currency} to ALLOWED_CURRENCIES and "
                "restart.",
            )
        if s.ALLOWED_SYMBOLS and symbol not in s.ALLOWED_SYMBOLS:
            return refuse(
                self.name,
                f"symbol {symbol} is not allowed (ALLOWED_SYMBOLS={','.join(s.ALLOWED_SYMBOLS)})",
                f"Trade an allowed symbol, or add {symbol} to ALLOWED_SYMBOLS and restart.",
            )
        symbols = "any symbol" if not s.ALLOWED_SYMBOLS else f"symbol {symbol}"
        return allow(self.name, f"{sec_type} in {currency}, {symbols}: allowed")
