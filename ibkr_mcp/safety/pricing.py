"""Pure price arithmetic shared by the gates: reference prices, bounded notional, band distance."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ibkr_mcp.safety.context import OrderIntent, ReferenceQuote

_HUNDRED = Decimal(100)


def usable(value: Decimal | None) -> Decimal | None:
    """``value`` if it is a usable price (finite and positive), else ``None``.

    IB reports "no data" as -1 or 0, and a NaN must never reach a comparison.
    """
    if value is None or not value.is_finite() or value <= 0:
        return None
    return value


def mid(quote: ReferenceQuote) -> Decimal | None:
    """The mid price, when both sides are usable and not crossed."""
    bid, ask = usable(quote.bid), usable(quote.ask)
    if bid is None or ask is None or bid > ask:
        return None
    return (bid + ask) / 2


@dataclass(frozen=True, slots=True)
class Reference:
    """A reference price and where it came from (``ask``, ``bid``, ``last``, ``mid``)."""

    price: Decimal
    source: str
    delayed: bool

    def describe(self) -> str:
        """E.g. ``"ask 190.10"`` or ``"last 190.00 (DELAYED quote)"``."""
        text = f"{self.source} {self.price}"
        return text + " (DELAYED quote)" if self.delayed else text


def market_reference(side: str, quote: ReferenceQuote | None) -> Reference | None:
    """The price a market order may pay: ask for BUY / bid for SELL, else last, else mid."""
    if quote is None:
        return None
    first = ("ask", quote.ask) if side == "BUY" else ("bid", quote.bid)
    for source, value in (first, ("last", quote.last), ("mid", mid(quote))):
        price = usable(value)
        if price is not None:
            return Reference(price, source, quote.delayed)
    return None


def band_reference(quote: ReferenceQuote | None) -> Reference | None:
    """The price a limit price is compared with: mid, else last."""
    if quote is None:
        return None
    for source, value in (("mid", mid(quote)), ("last", usable(quote.last))):
        if value is not None:
            return Reference(value, source, quote.delayed)
    return None


@dataclass(frozen=True, slots=True)
class Notional:
    """An order's bounded notional value (in the contract's currency) and how it was derived."""

    value: Decimal
    basis: str


def order_notional(
    intent: OrderIntent, quote: ReferenceQuote | None, band_pct: Decimal
) -> Notional | str:
    """The most the order can be worth, or a string saying why it cannot be bounded.

    A LMT order is worth at most ``quantity × limit``; a MKT order at most
    ``quantity × reference × (1 + band/100)``, the reference being the side's quote.
    """
    qty = intent.quantity
    if not qty.is_finite() or qty <= 0:
        return f"quantity {qty} is not a positive number"
    if intent.order_type == "LMT":
        limit = intent.limit_price
        if limit is None or not limit.is_finite() or limit <= 0:
            return f"LMT order has no positive limit price (got {limit})"
        return Notional(qty * limit, f"{qty} × limit {limit}")
    if intent.order_type == "MKT":
        ref = market_reference(intent.side, quote)
        if ref is None:
            return "MKT order has no usable quote (no bid/ask/last), so its price cannot be bounded"
        bound = ref.price * (1 + band_pct / _HUNDRED)
        return Notional(qty * bound, f"{qty} × ({ref.describe()} + {band_pct}% band)")
    return f"order type {intent.order_type!r} cannot be bounded by the safety chain"


def band_distance_pct(price: Decimal, reference: Decimal) -> Decimal:
    """How far ``price`` is from ``reference``, in percent of the reference (non-negative)."""
    return abs(price - reference) / reference * _HUNDRED
