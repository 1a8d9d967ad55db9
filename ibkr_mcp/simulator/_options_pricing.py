"""Black–Scholes prices, greeks and implied volatility on a seeded volatility surface."""

from __future__ import annotations

import math
from dataclasses import dataclass
from hashlib import blake2b
from statistics import NormalDist

from ibkr_mcp.simulator import _catalogue_derivs as data

_N = NormalDist()
#: Below this much time (years, ~1 trading minute) an option is priced at intrinsic value.
MIN_T = 1 / (365 * 24 * 60)


@dataclass(frozen=True, slots=True)
class Greeks:
    """IB's option computation: price and greeks (vega per vol point, theta per day)."""

    price: float
    delta: float
    gamma: float
    vega: float
    theta: float
    pv_dividend: float


@dataclass(frozen=True, slots=True)
class Surface:
    """One underlying's volatility surface: ATM term structure plus skew and smile.

    ``vol(k, t)`` = ``atm(t) * (1 - skew * m + smile * m**2)`` with ``m = ln(K/F)/sqrt(t)``
    and ``atm(t)`` moving from ``near`` (short dated) to ``far`` (long dated).
    """

    near: float
    far: float
    skew: float
    smile: float

    def atm(self, t: float) -> float:
        """ATM volatility for a maturity (years)."""
        return self.far + (self.near - self.far) * math.exp(-t / 0.25)

    def vol(self, strike: float, forward: float, t: float) -> float:
        """Implied volatility at a strike and maturity (clamped to 5%..300%)."""
        t = max(t, 1 / 365)
        m = math.log(strike / forward) / math.sqrt(t)
        m = max(-3.0, min(3.0, m))
        return max(0.05, min(3.0, self.atm(t) * (1 - self.skew * m + self.smile * m * m)))


def surface(seed: int, con_id: int, base_vol: float, index_like: bool) -> Surface:
    """The seeded surface of one underlying: the seed nudges level, term slope and skew."""
    raw = blake2b(f"ibkr-mcp-vol\x00{seed}\x00{con_id}".encode(), digest_size=6).digest()
    u = [b / 255 for b in raw]
    level = base_vol * (0.9 + 0.2 * u[0])
    skew = data.SKEW["IND" if index_like else "STK"] * (0.8 + 0.4 * u[1])
    near = level * (0.85 + 0.2 * u[2])  # calm markets: short-dated vol below long-dated
    far = level * (1.0 + 0.1 * u[3])
    return Surface(near, far, skew, data.SMILE * (0.7 + 0.6 * u[4]))


def black_scholes(
    spot: float, strike: float, t: float, vol: float, rate: float, div: float, call: bool
) -> Greeks:
    """Price and greeks of a European option (``t`` in years; intrinsic value at expiry)."""
    pv_div = spot * (1 - math.exp(-div * max(t, 0.0)))
    if t <= MIN_T or vol <= 0:
        intrinsic = max(0.0, spot - strike) if call else max(0.0, strike - spot)
        itm = intrinsic > 0
        delta = (1.0 if call else -1.0) if itm else 0.0
        return Greeks(intrinsic, delta, 0.0, 0.0, 0.0, pv_div)
    sq = vol * math.sqrt(t)
    d1 = (math.log(spot / strike) + (rate - div + vol * vol / 2) * t) / sq
    d2 = d1 - sq
    dq = math.exp(-div * t)
    dr = math.exp(-rate * t)
    pdf = math.exp(-d1 * d1 / 2) / math.sqrt(2 * math.pi)
    if call:
        price = spot * dq * _N.cdf(d1) - strike * dr * _N.cdf(d2)
        delta = dq * _N.cdf(d1)
        theta = (-spot * dq * pdf * vol / (2 * math.sqrt(t)) - rate * strike * dr * _N.cdf(d2)
                 + div * spot * dq * _N.cdf(d1))  # fmt: skip
    else:
        price = strike * dr * _N.cdf(-d2) - spot * dq * _N.cdf(-d1)
        delta = -dq * _N.cdf(-d1)
        theta = (-spot * dq * pdf * vol / (2 * math.sqrt(t)) + rate * strike * dr * _N.cdf(-d2)
                 - div * spot * dq * _N.cdf(-d1))  # fmt: skip
    gamma = dq * pdf / (spot * sq)
    vega = spot * dq * pdf * math.sqrt(t) / 100
    return Greeks(max(price, 0.0), delta, gamma, vega, theta / 365, pv_div)


def implied_vol(
    price: float,
    spot: float,
    strike: float,
    t: float,
    rate: float,
    div: float,
    call: bool,
    guess: float = 0.3,
) -> float | None:
    """The volatility reproducing ``price``, or None below intrinsic value or at expiry.

    Newton steps from ``guess`` (the surface's volatility converges in a few), falling back to
    bisection where vega is too small for Newton to be safe (far from the money).
    """
    if t <= MIN_T or price <= 0:
        return None
    lo, hi = 0.001, 5.0
    if black_scholes(spot, strike, t, lo, rate, div, call).price > price:
        return None
    if black_scholes(spot, strike, t, hi, rate, div, call).price < price:
        return None
    vol = min(max(guess, lo), hi)
    for _ in range(8):
        g = black_scholes(spot, strike, t, vol, rate, div, call)
        diff = g.price - price
        if abs(diff) < 1e-7:
            return vol
        if g.vega * 100 < 1e-8:
            break
        vol -= diff / (g.vega * 100)
        if not lo < vol < hi:
            break
    for _ in range(60):
        mid = (lo + hi) / 2
        if black_scholes(spot, strike, t, mid, rate, div, call).price < price:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-7:
            break
    return (lo + hi) / 2
