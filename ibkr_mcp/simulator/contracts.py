"""Resolving client contract descriptions against the catalogue, and FX conversion to USD."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ibkr_mcp.simulator.catalogue import Catalogue, Instrument
    from ibkr_mcp.simulator.incoming import ContractSpec
    from ibkr_mcp.simulator.market import MarketModel


def resolve(catalogue: Catalogue, spec: ContractSpec) -> list[Instrument]:
    """Every catalogue instrument the description matches (IB semantics: empty means any)."""
    if spec.con_id > 0:
        inst = catalogue.by_con_id(spec.con_id)
        if inst is None:
            return []
        if spec.symbol and spec.symbol.upper() != inst.symbol.upper():
            return []
        if spec.sec_type and spec.sec_type != inst.sec_type:
            return []
        return [inst]
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
