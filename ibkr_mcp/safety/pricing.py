"""Pure price arithmetic shared by the gates: reference prices, bounded notional, band distance."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from ibkr_mcp.safety.context import OrderIntent, ReferenceQuote, Standing

_HUNDRED = Decimal(100)


class BrokerOrder(Protocol):
    """What the broker reports of an order that its value needs (``OrderInfo``, records)."""

    @property
    def quantity(self) -> Decimal: ...  # noqa: D102
    @property
    def avg_fill_price(self) -> Decimal | None: ...  # noqa: D102
    @property
    def limit_price(self) -> Decimal | None: ...  # noqa: D102
    @property
    def multiplier(self) -> Decimal | None: ...  # noqa: D102


def broker_order_value(order: BrokerOrder) -> Decimal | None:
    """A broker order's value: its fills' average (else its limit) × quantity × multiplier.

    ``None`` when it has neither (a MKT order not filled yet). An option's price is per unit:
    50 contracts at 0.99 are 4,950, not 49.50.
    """
    price = order.avg_fill_price or order.limit_price
    return None if price is None else order.quantity * price * (order.multiplier or 1)


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


#: Types whose worst price is their limit.
LIMIT_TYPES = frozenset({"LMT", "LOC", "STP_LMT", "LIT"})
#: Types that execute at market (immediately or once triggered).
MARKET_TYPES = frozenset({"MKT", "MOC"})
#: Types that become market orders at a trigger price.
TRIGGER_TYPES = frozenset({"STP", "MIT"})
TRAIL_TYPES = frozenset({"TRAIL", "TRAIL_LIMIT"})


def trail_distance(intent: OrderIntent, reference: Decimal) -> Decimal | None:
    """A trailing order's distance in price units (amount, or percent of ``reference``)."""
    if intent.trailing_amount is not None:
        return intent.trailing_amount
    if intent.trailing_percent is not None:
        return reference * intent.trailing_percent / _HUNDRED
    return None


def _unit_bound(
    intent: OrderIntent, quote: ReferenceQuote | None, band_pct: Decimal
) -> tuple[Decimal, str] | str:
    """The most one unit can cost (before the multiplier), and how it was derived."""
    kind = intent.order_type
    slack = 1 + band_pct / _HUNDRED
    if kind in LIMIT_TYPES:
        limit = intent.limit_price
        if limit is None or not limit.is_finite() or limit <= 0:
            return f"{kind} order has no positive limit price (got {limit})"
        return limit, f"limit {limit}"
    ref = market_reference(intent.side, quote)
    if kind in MARKET_TYPES:
        if ref is None:
            return (
                f"{kind} order has no usable quote (no bid/ask/last), so its price cannot be "
                "bounded"
            )
        return ref.price * slack, f"{ref.describe()} + {band_pct}% band"
    if kind in TRIGGER_TYPES:
        stop = usable(intent.stop_price)
        if stop is None:
            return f"{kind} order has no positive stop_price"
        top = stop if ref is None or stop >= ref.price else ref.price
        return top * slack, f"max(stop {stop}, market) + {band_pct}% band"
    if kind in TRAIL_TYPES:
        base = ref.price if ref is not None else usable(intent.stop_price)
        if base is None:
            return f"{kind} order has no usable quote or stop_price, so it cannot be bounded"
        distance = trail_distance(intent, base) or Decimal(0)
        offset = intent.limit_offset or Decimal(0)
        return (base + distance + offset) * slack, (
            f"(reference {base} + trail {distance} + offset {offset}) + {band_pct}% band"
        )
    return f"order type {kind!r} cannot be bounded by the safety chain"


def order_notional(
    intent: OrderIntent, quote: ReferenceQuote | None, band_pct: Decimal
) -> Notional | str:
    """The most the order can be worth, or a string saying why it cannot be bounded.

    ``quantity × unit bound × multiplier``: a limit-priced order is worth at most its limit;
    a market order its side's quote plus the band; a stop / if-touched order the higher of its
    trigger and the market plus the band; a trailing order the reference plus the trail.
    """
    qty = intent.quantity
    if not qty.is_finite() or qty <= 0:
        return f"quantity {qty} is not a positive number"
    bound = _unit_bound(intent, quote, band_pct)
    if isinstance(bound, str):
        return bound
    unit, basis = bound
    mult = intent.multiplier
    if mult != 1:
        return Notional(qty * unit * mult, f"{qty} × ({basis}) × multiplier {mult}")
    return Notional(qty * unit, f"{qty} × {basis}" if _plain(basis) else f"{qty} × ({basis})")


def _plain(basis: str) -> bool:
    """Whether ``basis`` is a single term that needs no parentheses (``limit 190``)."""
    return basis.startswith("limit ")


def band_distance_pct(price: Decimal, reference: Decimal) -> Decimal:
    """How far ``price`` is from ``reference``, in percent of the reference (non-negative)."""
    return abs(price - reference) / reference * _HUNDRED


def added_value(
    new: Decimal, standing: Standing | None, quote: ReferenceQuote | None, band_pct: Decimal
) -> Decimal:
    """What an order worth ``new`` (bounded with ``band_pct``) adds to the day's sent value.

    A new order adds all of it. A modification adds what it raises the order's value by, never
    less than nothing: the order as it stands is valued the same way (same quote, same band),
    at most at what the day's sum holds for it; if it cannot be valued, ``new`` counts whole.
    """
    if standing is None:
        return new
    before = order_notional(standing.intent, quote, band_pct)
    if not isinstance(before, Notional):
        return new
    value = before.value if standing.recorded is None else min(before.value, standing.recorded)
    return max(new - value, Decimal(0))
