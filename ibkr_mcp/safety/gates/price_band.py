"""Risk limit 5: a limit price must lie within PRICE_BAND_PCT of the market (fat-finger check)."""

from __future__ import annotations

from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates.base import Verdict, allow, refuse
from ibkr_mcp.safety.pricing import band_distance_pct, band_reference, market_reference, usable


class PriceBandGate:
    """Refuses LMT prices more than PRICE_BAND_PCT from mid (else last), or with no quote."""

    name = "price_band"
    description = (
        "A LMT price must be within PRICE_BAND_PCT of the quote (mid, else last); with no quote "
        "the band cannot be checked and the order is refused. MKT orders are bounded by the "
        "notional gate, and refused on delayed or frozen quotes unless "
        "ALLOW_MKT_ON_DELAYED_QUOTES=true."
    )

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on the order's price."""
        intent, band = ctx.intent, ctx.settings.PRICE_BAND_PCT
        retry = "Retry when a quote (live or delayed) is available for the contract."
        if intent.order_type == "MKT":
            ref = market_reference(intent.side, ctx.quote)
            if ref is None:
                return refuse(
                    self.name, "MKT order with no usable quote: its price cannot be bounded", retry
                )
            if ctx.quote is not None and ctx.quote.delayed:
                if not ctx.settings.ALLOW_MKT_ON_DELAYED_QUOTES:
                    return refuse(
                        self.name,
                        "MKT order priced off a delayed or frozen quote (IB's delayed data is "
                        "15-20 minutes old): its fill price cannot be bounded",
                        "Use a LMT order (its price is yours to choose), or (a human) set "
                        "ALLOW_MKT_ON_DELAYED_QUOTES=true and restart.",
                    )
                return allow(
                    self.name,
                    f"MKT order on a DELAYED quote (allowed by ALLOW_MKT_ON_DELAYED_QUOTES): "
                    f"price bounded by {ref.describe()} + {band}% in the notional check",
                )
            return allow(
                self.name,
                f"MKT order: price bounded by {ref.describe()} + {band}% in the notional check",
            )
        if intent.order_type != "LMT":
            return refuse(
                self.name,
                f"order type {intent.order_type!r} cannot be price-checked",
                "Use MKT or LMT.",
            )
        limit = usable(intent.limit_price)
        if limit is None:
            return refuse(
                self.name,
                f"LMT order has no positive limit price (got {intent.limit_price})",
                "Pass a positive limit_price.",
            )
        ref = band_reference(ctx.quote)
        if ref is None:
            return refuse(
                self.name,
                f"no usable quote (no bid/ask mid, no last): limit {limit} cannot be checked "
                f"against the {band}% price band",
                retry,
            )
        distance = band_distance_pct(limit, ref.price)
        if distance > band:
            return refuse(
                self.name,
                f"limit {limit} is {distance:.2f}% away from the reference {ref.describe()}, "
                f"outside the {band}% price band (fat finger?)",
                f"Use a limit price within {band}% of {ref.price} (check for a misplaced decimal "
                "point), or (a human) widen PRICE_BAND_PCT and restart.",
            )
        return allow(
            self.name,
            f"limit {limit} is {distance:.2f}% from {ref.describe()}, within the {band}% band",
        )
