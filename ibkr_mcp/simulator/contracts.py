"""Resolving client contract descriptions against the catalogue, and FX conversion to USD."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from ibkr_mcp.simulator.derivatives import book_for, expiry_instant, last_day

if TYPE_CHECKING:
    from ibkr_mcp.simulator.catalogue import Catalogue, Instrument
    from ibkr_mcp.simulator.incoming import ContractSpec
    from ibkr_mcp.simulator.market import MarketModel

#: Security types the derivatives book answers (CONTFUT: the front month of a future).
DERIVATIVE_TYPES = frozenset({"FUT", "CONTFUT", "OPT"})


def by_con_id(catalogue: Catalogue, con_id: int) -> Instrument | None:
    """A catalogue instrument, future or option by conId (None if unknown)."""
    return catalogue.by_con_id(con_id) or book_for(catalogue).by_con_id(con_id)


def is_expired(inst: Instrument, now: datetime) -> bool:
    """Whether a future or option has passed its 16:00 New York expiry at ``now``."""
    if inst.sec_type not in ("FUT", "OPT") or not inst.last_trade[:8].isdigit():
        return False  # no full expiry date (a hand-built contract): never expires
    return now >= expiry_instant(last_day(inst))


def order_refusal(inst: Instrument, sec_type: str) -> tuple[int, str] | None:
    """IB's refusal of an order on a contract that cannot be traded (None: tradable).

    Indices are quotes only, and a continuous future (CONTFUT) is a data alias of the front
    month: IB rejects orders on both.
    """
    if inst.sec_type == "IND":
        return (
            201,
            "Order rejected - reason:Index contracts are not tradable; trade a future, "
            "an option or an ETF on the index instead.",
        )
    if sec_type == "CONTFUT":
        return (
            321,
            "Error validating request.-'bN' : cause - Invalid security type CONTFUT "
            "for orders; use the future's conId or its contract month.",
        )
    return None


def _type_matches(wanted: str, inst: Instrument) -> bool:
    return not wanted or wanted == inst.sec_type or (wanted == "CONTFUT" and inst.sec_type == "FUT")


def resolve(
    catalogue: Catalogue, spec: ContractSpec, market: MarketModel | None = None
) -> list[Instrument]:
    """Every instrument the description matches (IB semantics: empty means any).

    Futures and options come from the derivatives book; with a ``market`` their listing follows
    its clock (expired contracts match nothing, as IB answers 200 for them) and option strikes
    are listed around the underlying's previous close.
    """
    now = market.clock.now() if market is not None else None
    if spec.con_id > 0:
        inst = by_con_id(catalogue, spec.con_id)
        if inst is None:
            return []
        if spec.symbol and spec.symbol.upper() != inst.symbol.upper():
            return []
        if not _type_matches(spec.sec_type, inst):
            return []
        if now is not None and is_expired(inst, now):
            return []
        return [inst]
    if spec.sec_type in DERIVATIVE_TYPES:
        if spec.currency and spec.currency != "USD":
            return []
        return book_for(catalogue).resolve(spec, now, market)
    symbol = spec.symbol
    if not symbol and spec.local_symbol:
        wanted = spec.local_symbol.upper()
        return [
            inst
            for inst in catalogue.all()
            if inst.local_symbol.upper() == wanted
            and (not spec.sec_type or inst.sec_type == spec.sec_type)
        ]
    if not symbol:
        return []
    found = catalogue.find(
        symbol.upper(),
        sec_type=spec.sec_type or None,
        currency=spec.currency or None,
        exchange=spec.exchange or None,
        primary_exchange=spec.primary_exchange or None,
    )
    if spec.local_symbol:
        found = [i for i in found if i.local_symbol.upper() == spec.local_symbol.upper()]
    return found


def fx_rate(catalogue: Catalogue, market: MarketModel, currency: str) -> Decimal:
    """Units of USD per unit of ``currency`` from the simulated FX pairs (1 if unknown)."""
    if not currency or currency == "USD":
        return Decimal(1)
    now = market.clock.now()
    direct = catalogue.find(currency, sec_type="CASH", currency="USD")
    if direct:
        return market.mid_at(direct[0], now)
    inverse = catalogue.find("USD", sec_type="CASH", currency=currency)
    if inverse:
        mid = market.mid_at(inverse[0], now)
        return Decimal(1) / mid if mid else Decimal(1)
    return Decimal(1)
