"""Risk limit 5: every price within PRICE_BAND_PCT of the market, stops on the right side."""

from __future__ import annotations

from decimal import Decimal

from ibkr_mcp.safety.context import GateContext, OrderIntent
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse
from ibkr_mcp.safety.pricing import (
    LIMIT_TYPES,
    MARKET_TYPES,
    TRAIL_TYPES,
    TRIGGER_TYPES,
    Reference,
    band_distance_pct,
    band_reference,
    market_reference,
    usable,
)

#: Types whose trigger must be on the far side of the market (a stop): BUY above, SELL below.
STOP_TYPES = frozenset({"STP", "STP_LMT"})
#: Types whose trigger must be on the near side (if touched): BUY below, SELL above.
TOUCH_TYPES = frozenset({"MIT", "LIT"})
KNOWN_TYPES = LIMIT_TYPES | MARKET_TYPES | TRIGGER_TYPES | TRAIL_TYPES
RETRY = "Retry when a quote (live or delayed) is available for the contract."


def _must_be_above(intent: OrderIntent, field: str) -> bool | None:
    """Whether ``field`` must be above the market (``False``: below; ``None``: either side)."""
    buy = intent.side == "BUY"
    if field == "stop_price" and intent.order_type in STOP_TYPES:
        return buy  # a stop triggers when the market moves against you: beyond it
    if field == "stop_price" and intent.order_type in TOUCH_TYPES:
        return not buy  # if-touched triggers when the market comes to you
    if field == "limit_price" and intent.role == "take_profit":
        return not buy
    return None


def _wrong_side(intent: OrderIntent, field: str, price: Decimal, ref: Reference) -> str | None:
    """Why ``price`` is on the wrong side of the market for this order, else ``None``."""
    above = _must_be_above(intent, field)
    if above is None or (price > ref.price if above else price < ref.price):
        return None
    what = {"STP": "stop", "STP_LMT": "stop"}.get(intent.order_type, "if-touched trigger")
    if field == "limit_price":
        what = "take-profit"
    where = "above" if above else "below"
    return (
        f"a {intent.side} {what} must be {where} the market ({ref.describe()}); {price} "
        "would execute at once"
    )


class PriceBandGate:
    """Refuses prices far from the market, stops on its wrong side, MKT on delayed quotes."""

    name = "price_band"
    description = (
        "Every limit and stop price must be within PRICE_BAND_PCT of the quote (mid, else "
        "last), stops beyond the market (BUY above, SELL below), if-touched triggers and "
        "take-profits before it; with no quote the prices cannot be checked and the order is "
        "refused. MKT/MOC orders are bounded by the notional gate, and refused on delayed or "
        "frozen quotes unless ALLOW_MKT_ON_DELAYED_QUOTES=true."
    )

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on the order's prices."""
        intent = ctx.intent
        if intent.order_type not in KNOWN_TYPES:
            return refuse(
                self.name,
                f"order type {intent.order_type!r} cannot be price-checked",
                f"Use one of {', '.join(sorted(KNOWN_TYPES))}.",
            )
        if intent.order_type in MARKET_TYPES:
            return self._market(ctx)
        prices = [
            (field, getattr(intent, field))
            for field in ("limit_price", "stop_price")
            if getattr(intent, field) is not None
        ]
        if not prices:
            # A trailing stop without an initial stop: its trigger follows the market.
            return (
                self._market(ctx)
                if intent.order_type.startswith("TRAIL")
                else refuse(
                    self.name, f"{intent.order_type} order has no price to check", "Pass its price."
                )
            )
        return self._prices(ctx, prices)

    def _prices(self, ctx: GateContext, prices: list[tuple[str, Decimal]]) -> Verdict:
        intent, band = ctx.intent, ctx.settings.PRICE_BAND_PCT
        ref = band_reference(ctx.quote)
        notes = []
        for field, raw in prices:
            label = "limit" if field == "limit_price" else "stop"
            price = usable(raw)
            if price is None:
                return refuse(
                    self.name,
                    f"{intent.order_type} order has no positive {label} price (got {raw})",
                    f"Pass a positive {field}.",
                )
            if ref is None:
                return refuse(
                    self.name,
                    f"no usable quote (no bid/ask mid, no last): {label} {price} cannot be "
                    f"checked against the {band}% price band",
                    RETRY,
                )
            distance = band_distance_pct(price, ref.price)
            if distance > band:
                return refuse(
                    self.name,
                    f"{label} {price} is {distance:.2f}% away from the reference "
                    f"{ref.describe()}, outside the {band}% price band (fat finger?)",
                    f"Use a {label} price within {band}% of {ref.price} (check for a misplaced "
                    "decimal point), or (a human) widen PRICE_BAND_PCT and restart.",
                )
            wrong = _wrong_side(intent, field, price, ref)
            if wrong is not None:
                return refuse(
                    self.name, wrong, f"Put the {label} price on the other side of the market."
                )
            notes.append(f"{label} {price} is {distance:.2f}% from {ref.describe()}")
        return allow(self.name, f"{', '.join(notes)}, within the {band}% band")

    def _market(self, ctx: GateContext) -> Verdict:
        intent, band = ctx.intent, ctx.settings.PRICE_BAND_PCT
        kind = intent.order_type
        ref = market_reference(intent.side, ctx.quote)
        if ref is None:
            return refuse(
                self.name, f"{kind} order with no usable quote: its price cannot be bounded", RETRY
            )
        if ctx.quote is not None and ctx.quote.delayed and kind in MARKET_TYPES:
            if not ctx.settings.ALLOW_MKT_ON_DELAYED_QUOTES:
                return refuse(
                    self.name,
                    f"{kind} order priced off a delayed or frozen quote (IB's delayed data is "
                    "15-20 minutes old): its fill price cannot be bounded",
                    "Use a LMT order (its price is yours to choose), or (a human) set "
                    "ALLOW_MKT_ON_DELAYED_QUOTES=true and restart.",
                )
            return allow(
                self.name,
                f"{kind} order on a DELAYED quote (allowed by ALLOW_MKT_ON_DELAYED_QUOTES): "
                f"price bounded by {ref.describe()} + {band}% in the notional check",
            )
        return allow(
            self.name,
            f"{kind} order: price bounded by {ref.describe()} + {band}% in the notional check",
        )
