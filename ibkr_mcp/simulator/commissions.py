"""IB's published fixed-rate commissions per instrument class (per order: minimums and caps)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ibkr_mcp.simulator.catalogue import Instrument

CENT = Decimal("0.01")
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class FixedRate:
    """One class's fixed pricing: per unit, per-order minimum, cap as a share of trade value."""

    per_unit: Decimal
    minimum: Decimal
    max_pct_of_value: Decimal | None = None
    #: Fraction of trade value instead of a per-unit fee (IDEALPRO forex).
    pct_of_value: Decimal | None = None


#: IB fixed pricing (USD): stocks $0.005/share, $1 min, 1% cap; US options $0.65/contract, $1
#: min; US futures $0.85/contract; forex 0.2 bp of value, $2 min. Exchange and regulatory fees
#: are not modelled (IB's fixed rates include most of them for stocks).
FIXED_RATES: dict[str, FixedRate] = {
    "STK": FixedRate(Decimal("0.005"), Decimal(1), Decimal("0.01")),
    "OPT": FixedRate(Decimal("0.65"), Decimal(1)),
    "FOP": FixedRate(Decimal("0.85"), Decimal(0)),
    "FUT": FixedRate(Decimal("0.85"), Decimal(0)),
    "CASH": FixedRate(ZERO, Decimal(2), pct_of_value=Decimal("0.00002")),
}
#: Micro futures cost $0.25 per contract at IB.
MICRO_FUTURE_RATE = Decimal("0.25")
MICRO_FUTURES = frozenset({"MES", "MNQ", "MYM", "M2K", "MGC", "MCL", "SIL", "M6E"})
#: Cheap options cost less per contract: premium < $0.05 -> $0.25, < $0.10 -> $0.50.
CHEAP_OPTION_RATES = ((Decimal("0.05"), Decimal("0.25")), (Decimal("0.10"), Decimal("0.50")))


def order_commission(inst: Instrument, qty: Decimal, value: Decimal) -> Decimal:
    """Commission of an order that executed ``qty`` units for ``value`` (price x qty, unscaled).

    In the instrument's currency for forex (IB charges IDEALPRO in the quote currency), else
    USD. The minimum and cap apply per order, so fill-by-fill commissions are differences of
    this function over the cumulative quantity and value.
    """
    qty, value = abs(qty), abs(value)
    if qty == 0:
        return ZERO
    kind: str = inst.sec_type  # widened: the catalogue grows futures and options
    rate = FIXED_RATES.get(kind, FIXED_RATES["STK"])
    if rate.pct_of_value is not None:
        fee = value * rate.pct_of_value
    else:
        per_unit = rate.per_unit
        if kind == "FUT" and inst.symbol.upper() in MICRO_FUTURES:
            per_unit = MICRO_FUTURE_RATE
        if kind == "OPT":
            premium = value / qty
            for below, cheaper in CHEAP_OPTION_RATES:
                if premium < below:
                    per_unit = cheaper
                    break
        fee = qty * per_unit
    fee = max(fee, rate.minimum)
    if rate.max_pct_of_value is not None:
        fee = min(fee, value * inst.multiplier * rate.max_pct_of_value)
    return fee.quantize(CENT, rounding=ROUND_HALF_UP)


def fill_commission(
    inst: Instrument, prior_qty: Decimal, prior_value: Decimal, qty: Decimal, price: Decimal
) -> Decimal:
    """Commission of one fill: the order's commission after it minus the commission before."""
    before = order_commission(inst, prior_qty, prior_value) if prior_qty else ZERO
    after = order_commission(inst, prior_qty + qty, prior_value + qty * price)
    return max(ZERO, after - before)
