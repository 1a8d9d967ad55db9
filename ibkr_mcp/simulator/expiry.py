"""Expiry under the simulated clock: options exercised or worthless, futures settled in cash."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from ibkr_mcp.simulator.derivatives import expiry_instant, last_day

if TYPE_CHECKING:
    from ibkr_mcp.simulator.accounts import Account
    from ibkr_mcp.simulator.catalogue import Instrument
    from ibkr_mcp.simulator.market import MarketModel

__all__ = ["Expiry", "expire_options"]

ZERO = Decimal(0)
#: OCC exercises by exception options at least this far in the money.
EXERCISE_THRESHOLD = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Expiry:
    """What happened to one expiring position (``settlement``: intrinsic value or final price)."""

    account: str
    instrument: Instrument
    quantity: Decimal
    settlement: Decimal
    exercised: bool


def _intrinsic(inst: Instrument, spot: Decimal) -> Decimal:
    diff = spot - inst.strike if inst.right == "C" else inst.strike - spot
    return max(ZERO, diff)


def expire_options(
    accounts: dict[str, Account],
    market: MarketModel,
    now: datetime,
    notify: Callable[[str, int], None] | None = None,
) -> list[Expiry]:
    """Settle every option and future position whose 16:00 New York expiry passed at ``now``.

    The underlying's last price at the expiry instant settles it. ITM by at least a cent:
    stock options deliver ``quantity * multiplier`` shares at the strike (calls bought, puts
    sold; short positions are assigned the other way), index options settle in cash at the
    intrinsic value; otherwise the option expires worthless. The option position is closed
    either way (at the intrinsic value for cash settlement, else at zero), without commission.
    A future is closed at its last price at expiry (its final settlement).

    Args:
        accounts: The simulated accounts, by id.
        market: Prices the underlying at the expiry instant.
        now: The simulated clock's time.
        notify: Called with (account, conId) for every position changed.

    Returns:
        One record per expired position (empty when nothing expired).
    """
    done: list[Expiry] = []
    for account in accounts.values():
        for con_id, pos in list(account.positions.items()):
            inst = pos.instrument
            if inst.sec_type not in ("OPT", "FUT") or not pos.quantity:
                continue
            if not (len(inst.last_trade) >= 8 and inst.last_trade[:8].isdigit()):
                continue  # a hand-built contract without a full expiry date never expires
            at = expiry_instant(last_day(inst))
            if now < at:
                continue
            if inst.sec_type == "FUT":
                # Closed at the final settlement (the last price at expiry), as IB's forced
                # close-out or a cash settlement ends it; no delivery is modelled.
                settlement = market.quote_at(inst, at).last
                qty = pos.quantity
                account.apply_fill(inst, -qty, settlement, ZERO, Decimal(1))
                if notify is not None:
                    notify(account.account_id, con_id)
                done.append(Expiry(account.account_id, inst, qty, settlement, False))
                continue
            und = market.catalogue.by_con_id(inst.under_con_id)
            if und is None:
                continue
            spot = market.quote_at(und, at).last
            value = _intrinsic(inst, spot)
            qty = pos.quantity
            itm = value >= EXERCISE_THRESHOLD
            cash_settled = und.sec_type == "IND"
            account.apply_fill(
                inst, -qty, value if itm and cash_settled else ZERO, ZERO, Decimal(1)
            )
            if itm and not cash_settled:
                shares = qty * inst.multiplier * (1 if inst.right == "C" else -1)
                account.apply_fill(und, shares, inst.strike, ZERO, Decimal(1))
                if notify is not None:
                    notify(account.account_id, und.con_id)
            if notify is not None:
                notify(account.account_id, con_id)
            done.append(Expiry(account.account_id, inst, qty, value, itm))
    return done
