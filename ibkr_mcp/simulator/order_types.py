"""Order types as data: what each needs, how it triggers, and which limit it works at once live.

IB semantics (TWS API "Basic Orders"): STP becomes a market order once the trigger price is
touched (buy: at or above the stop; sell: at or below); STP LMT becomes a limit order; MIT/LIT
trigger the other way round (buy: at or below; sell: at or above); TRAIL keeps its stop a fixed
amount or percentage behind the best price reached and triggers like a stop; TRAIL LIMIT then
works a limit ``lmtPriceOffset`` beyond the stop; MOC/LOC execute in the closing auction.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ibkr_mcp.simulator.catalogue import Instrument
    from ibkr_mcp.simulator.incoming_order import OrderFields
    from ibkr_mcp.simulator.market import Tick
    from ibkr_mcp.simulator.order_model import SimOrder

Trigger = Literal["none", "stop", "touch", "trail"]
LimitKind = Literal["none", "lmt", "trail"]

#: IB trigger methods (``Order.triggerMethod``).
DEFAULT, DOUBLE_BID_ASK, LAST, DOUBLE_LAST, BID_ASK, LAST_OR_BID_ASK, MIDPOINT = 0, 1, 2, 3, 4, 7, 8
TRIGGER_METHODS = frozenset({0, 1, 2, 3, 4, 7, 8})
#: Primary exchanges whose stocks trade over the counter (IB's default there is double bid/ask).
OTC_EXCHANGES = frozenset({"PINK", "OTC", "OTCBB", "PINKC"})


@dataclass(frozen=True, slots=True)
class OrderType:
    """One IB order type: required prices, trigger rule, working limit and auction."""

    name: str
    needs_lmt: bool = False
    needs_aux: bool = False
    trigger: Trigger = "none"
    limit: LimitKind = "none"
    at_close: bool = False
    #: Security types IB accepts it for (others, indices included, get error 387).
    sec_types: frozenset[str] = frozenset({"STK", "CASH", "OPT", "FUT", "FOP"})

    @property
    def conditional(self) -> bool:
        """Whether it waits for a trigger before it works."""
        return self.trigger != "none"


_STOCK_ONLY = frozenset({"STK"})
ORDER_TYPES: dict[str, OrderType] = {
    t.name: t
    for t in (
        OrderType("MKT"),
        OrderType("LMT", needs_lmt=True, limit="lmt"),
        OrderType("STP", needs_aux=True, trigger="stop"),
        OrderType("STP LMT", needs_lmt=True, needs_aux=True, trigger="stop", limit="lmt"),
        OrderType("TRAIL", trigger="trail"),
        OrderType("TRAIL LIMIT", trigger="trail", limit="trail"),
        OrderType("MIT", needs_aux=True, trigger="touch"),
        OrderType("LIT", needs_lmt=True, needs_aux=True, trigger="touch", limit="lmt"),
        OrderType("MOC", at_close=True, sec_types=_STOCK_ONLY),
        OrderType("LOC", needs_lmt=True, limit="lmt", at_close=True, sec_types=_STOCK_ONLY),
    )
}


def validate(kind: OrderType, f: OrderFields) -> str | None:
    """Why the order's prices do not fit its type (IB's 321 cause text), or ``None``."""
    if kind.needs_lmt and (f.lmt_price is None or f.lmt_price <= 0):
        return "Limit price is missing or not positive."
    if kind.needs_aux and (f.aux_price is None or f.aux_price <= 0):
        return "Trigger (aux) price is missing or not positive."
    if kind.trigger == "trail":
        amount = f.aux_price is not None and f.aux_price > 0
        percent = f.trailing_percent is not None and f.trailing_percent > 0
        if amount == percent:
            return "Exactly one of trailing amount (auxPrice) and trailingPercent must be set."
        if f.trail_stop_price is not None and f.trail_stop_price <= 0:
            return "trailStopPrice must be positive."
    if kind.limit == "trail" and trail_limit_offset(f) is None:
        return "TRAIL LIMIT needs lmtPriceOffset (or lmtPrice with trailStopPrice)."
    if f.trigger_method not in TRIGGER_METHODS:
        return f"Invalid trigger method {f.trigger_method}."
    return None


def prices_on_tick_grid(kind: OrderType, f: OrderFields) -> list[Decimal]:
    """The prices IB checks against the minimum price variation (error 110)."""
    prices = [p for p in (f.lmt_price, f.trail_stop_price) if p is not None]
    if kind.needs_aux and f.aux_price is not None:
        prices.append(f.aux_price)
    return prices


def trail_limit_offset(f: OrderFields) -> Decimal | None:
    """How far beyond the stop a TRAIL LIMIT works its limit."""
    if f.lmt_price_offset is not None:
        return abs(f.lmt_price_offset)
    if f.lmt_price is not None and f.trail_stop_price is not None:
        return abs(f.trail_stop_price - f.lmt_price)
    return None


def _method(order: SimOrder, inst: Instrument) -> int:
    method = order.fields.trigger_method
    if method != DEFAULT:
        return method
    # IB's default: double bid/ask for OTC stocks and US options, last price for the rest.
    if inst.sec_type in ("OPT", "FOP") or inst.primary_exchange in OTC_EXCHANGES:
        return DOUBLE_BID_ASK
    return LAST


def reference_prices(order: SimOrder, inst: Instrument, tick: Tick) -> tuple[Decimal, ...]:
    """The prices the order's trigger method watches (the side it would trade against).

    Double variants need two consecutive qualifying quotes at IB; quotes here change at most
    once a second, so one qualifying quote counts (documented simplification).
    """
    method = _method(order, inst)
    side = tick.ask if order.is_buy else tick.bid
    if method in (DOUBLE_BID_ASK, BID_ASK):
        return (side,)
    if method == LAST_OR_BID_ASK:
        return (tick.last, side)
    if method == MIDPOINT:
        return ((tick.bid + tick.ask) / 2,)
    return (tick.last,)


def _round(value: Decimal, tick: Decimal) -> Decimal:
    return (value / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP) * tick


def update_trail(order: SimOrder, inst: Instrument, tick: Tick) -> None:
    """Start or ratchet a trailing stop (sell: below the best price; buy: above)."""
    f = order.fields
    ref = reference_prices(order, inst, tick)[0]
    if ref <= 0:
        return
    if f.trailing_percent is not None and f.trailing_percent > 0:
        amount = ref * Decimal(repr(f.trailing_percent)) / 100
    else:
        amount = f.aux_price or Decimal(0)
    candidate = _round(ref + amount if order.is_buy else ref - amount, inst.min_tick)
    if order.trail_stop is None:
        order.trail_stop = f.trail_stop_price if f.trail_stop_price is not None else candidate
    elif order.is_buy:
        order.trail_stop = min(order.trail_stop, candidate)
    else:
        order.trail_stop = max(order.trail_stop, candidate)


def fires(kind: OrderType, order: SimOrder, inst: Instrument, tick: Tick) -> bool:
    """Whether a conditional order's trigger is touched by ``tick`` (updates trailing stops)."""
    if kind.trigger == "none":
        return True
    if kind.trigger == "trail":
        update_trail(order, inst, tick)
        level = order.trail_stop
    else:
        level = order.fields.aux_price
    if level is None:
        return False
    refs = [p for p in reference_prices(order, inst, tick) if p > 0]
    rising = (kind.trigger == "touch") != order.is_buy  # buy stop and sell MIT fire on rises
    return any(p >= level if rising else p <= level for p in refs)


def working_limit(kind: OrderType, order: SimOrder) -> Decimal | None:
    """The limit a live (triggered) order works at; ``None`` means at market."""
    if kind.limit == "lmt":
        return order.fields.lmt_price
    if kind.limit == "trail" and order.trail_stop is not None:
        offset = trail_limit_offset(order.fields) or Decimal(0)
        return order.trail_stop + offset if order.is_buy else order.trail_stop - offset
    return None
