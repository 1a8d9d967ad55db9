"""Option quotes and IB's option computation ticks from Black–Scholes on the seeded surface."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from hashlib import blake2b
from typing import TYPE_CHECKING, Protocol

from ibkr_mcp.simulator import _catalogue_derivs as data
from ibkr_mcp.simulator._market_types import BarData, Tick
from ibkr_mcp.simulator._options_pricing import Greeks, black_scholes, implied_vol, surface
from ibkr_mcp.simulator.derivatives import expiry_instant, last_day

if TYPE_CHECKING:
    from ibkr_mcp.simulator.catalogue import Catalogue, Instrument

_YEAR_SECONDS = 365 * 86_400
_ZERO = Decimal(0)
#: Tick types of option computations: live bid/ask/last/model and their delayed twins.
LIVE_COMPUTATIONS = {"bid": 10, "ask": 11, "last": 12, "model": 13}
DELAYED_COMPUTATIONS = {"bid": 80, "ask": 81, "last": 82, "model": 83}


class MarketModel(Protocol):
    """What option pricing needs from the market model (which calls in here for options)."""

    @property
    def catalogue(self) -> Catalogue:
        """The instruments (underlyings are looked up by conId)."""
        ...

    @property
    def seed(self) -> int:
        """The market's seed (it also seeds the volatility surfaces)."""
        ...

    def mid_at(self, instrument: Instrument, at: datetime) -> Decimal:
        """Mid price at an instant."""
        ...

    def quote_at(self, instrument: Instrument, at: datetime) -> Tick:
        """Quote at an instant."""
        ...


@dataclass(frozen=True, slots=True)
class OptionPoint:
    """An option's model inputs and outputs at one instant."""

    spot: float
    strike: float
    years: float
    vol: float
    call: bool
    dividend: float
    model: Greeks


def years_to_expiry(inst: Instrument, at: datetime) -> float:
    """Time left until the option's 16:00 New York expiry, in years (0 once expired)."""
    expiry = expiry_instant(last_day(inst))
    return max(0.0, (expiry - at).total_seconds() / _YEAR_SECONDS)


def _dividend(und: Instrument) -> float:
    kind = "IND" if und.sec_type == "IND" else ("ETF" if und.stock_type == "ETF" else "STK")
    return data.DIVIDEND_YIELD[kind]


def point(market: MarketModel, inst: Instrument, at: datetime) -> OptionPoint:
    """Model value and greeks of an option at ``at`` (underlying at its mid)."""
    und = market.catalogue.by_con_id(inst.under_con_id)
    if und is None:
        raise LookupError(f"option {inst.local_symbol} has no underlying in the catalogue")
    spot = float(market.mid_at(und, at))
    return _point(market.seed, und, inst, spot, years_to_expiry(inst, at))


def _point(seed: int, und: Instrument, inst: Instrument, spot: float, t: float) -> OptionPoint:
    strike = float(inst.strike)
    div = _dividend(und)
    surf = surface(seed, und.con_id, und.annual_volatility, und.sec_type == "IND")
    forward = spot * math.exp((data.RATE - div) * t)
    vol = surf.vol(strike, forward, t)
    call = inst.right == "C"
    return OptionPoint(spot, strike, t, vol, call, div,
                       black_scholes(spot, strike, t, vol, data.RATE, div, call))  # fmt: skip


def _draws(seed: int, con_id: int, k: int) -> bytes:
    return blake2b(f"ibkr-mcp-opt\x00{seed}\x00{con_id}\x00{k}".encode(), digest_size=8).digest()


def option_quote(market: MarketModel, inst: Instrument, at: datetime) -> Tick:
    """Bid/ask around the model price (wider for dearer options), sizes, last and close."""
    k = math.floor(at.timestamp())
    stamp = datetime.fromtimestamp(k, at.tzinfo)
    p = point(market, inst, stamp)
    tick = inst.min_tick
    theo = Decimal(repr(p.model.price))
    width = max(tick, (theo * Decimal("0.005") + Decimal("0.02")) // tick * tick)
    bid = max(_ZERO, ((theo - width / 2) / tick).to_integral_value(ROUND_FLOOR) * tick)
    ask = max(tick, ((theo + width / 2) / tick).to_integral_value(ROUND_CEILING) * tick)
    last = max(_ZERO, (theo / tick).to_integral_value() * tick)
    raw = _draws(market.seed, inst.con_id, k)
    day = _draws(market.seed, inst.con_id, k // 86_400)
    und = market.catalogue.by_con_id(inst.under_con_id)
    assert und is not None
    prev = market.quote_at(und, stamp).close
    before = _point(market.seed, und, inst, float(prev), p.years + 1 / 365)
    close = max(_ZERO, (Decimal(repr(before.model.price)) / tick).to_integral_value() * tick)
    return Tick(
        bid=bid,
        ask=ask,
        last=last,
        bid_size=Decimal(1 + raw[0] % 50),
        ask_size=Decimal(1 + raw[1] % 50),
        last_size=Decimal(1 + raw[2] % 10),
        volume=Decimal(int.from_bytes(day[:2], "little") % 5000),
        open=_ZERO,
        high=_ZERO,
        low=_ZERO,
        close=close,
        time=stamp,
    )


def _not_computed(und_price: float) -> tuple[float, ...]:
    return (-1.0, -2.0, -1.0, -1.0, -2.0, -2.0, -2.0, und_price)


def computations(
    market: MarketModel, inst: Instrument, at: datetime, delayed: bool
) -> list[tuple[int, tuple[float, ...]]]:
    """IB's option computation ticks at ``at``: (tick type, values) for bid, ask, last, model.

    Values are implied vol, delta, optPrice, pvDividend, gamma, vega, theta, undPrice; bid,
    ask and last carry the volatility implied by that price (IB's "not computed" sentinels
    when no volatility reproduces it), the model tick the surface's volatility.
    """
    ids = DELAYED_COMPUTATIONS if delayed else LIVE_COMPUTATIONS
    k = math.floor(at.timestamp())
    stamp = datetime.fromtimestamp(k, at.tzinfo)
    p = point(market, inst, stamp)
    quote = option_quote(market, inst, stamp)
    out: list[tuple[int, tuple[float, ...]]] = []
    for name in ("bid", "ask", "last"):
        price = float(getattr(quote, name))
        iv = implied_vol(
            price, p.spot, p.strike, p.years, data.RATE, p.dividend, p.call, guess=p.vol
        )
        if iv is None:
            out.append((ids[name], _not_computed(p.spot)))
            continue
        g = black_scholes(p.spot, p.strike, p.years, iv, data.RATE, p.dividend, p.call)
        out.append((ids[name], (iv, g.delta, price, g.pv_dividend, g.gamma, g.vega, g.theta,
                                p.spot)))  # fmt: skip
    g = p.model
    out.append(
        (ids["model"], (p.vol, g.delta, g.price, g.pv_dividend, g.gamma, g.vega, g.theta, p.spot))
    )
    return out


def option_bars(
    market: MarketModel, inst: Instrument, under: Sequence[BarData], what: str
) -> list[BarData]:
    """Option bars from the underlying's: each price mapped through the model at the bar time.

    A call's value rises with the underlying and a put's falls, so a put's high comes from the
    underlying's low. TRADES bars get a small seeded volume; other kinds carry -1 like IB's.
    """
    und = market.catalogue.by_con_id(inst.under_con_id)
    assert und is not None
    tick = inst.min_tick
    out: list[BarData] = []
    for bar in under:
        t = years_to_expiry(inst, bar.time)

        def value(spot: Decimal, t: float = t) -> Decimal:
            price = _point(market.seed, und, inst, float(spot), t).model.price
            return (Decimal(repr(price)) / tick).to_integral_value() * tick

        o, hi, lo, c = value(bar.open), value(bar.high), value(bar.low), value(bar.close)
        if inst.right == "P":
            hi, lo = lo, hi
        if what == "TRADES":
            raw = _draws(market.seed, inst.con_id, int(bar.time.timestamp()))
            volume = Decimal(1 + raw[0] % 40)
            wap = ((hi + lo + c) / 3).quantize(Decimal("0.0001"))
            count = 1 + raw[1] % 10
        else:
            volume, wap, count = Decimal(-1), Decimal(-1), -1
        out.append(BarData(bar.time, o, hi, lo, c, volume, wap, count))
    return out
