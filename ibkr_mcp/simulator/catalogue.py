"""The simulator's instrument catalogue: US stocks, ETFs and IDEALPRO forex pairs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from ibkr_mcp.simulator import _catalogue_data as data
from ibkr_mcp.simulator._market_calendar import hours_string

__all__ = ["DEFAULT_CATALOGUE", "Catalogue", "Instrument", "default_instruments"]

#: Exchange names IB uses interchangeably for a primary listing.
_PRIMARY_ALIASES = {"ISLAND": "NASDAQ"}


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable contract with the details IB reports plus the simulator's model inputs.

    ``base_price``, ``annual_volatility``, ``avg_daily_volume`` and ``md_size_multiplier`` feed
    the market model; everything else mirrors IB's ``ContractDetails``.
    """

    con_id: int
    symbol: str
    sec_type: Literal["STK", "CASH"]
    exchange: str
    primary_exchange: str
    currency: str
    local_symbol: str
    trading_class: str
    long_name: str
    stock_type: str
    min_tick: Decimal
    industry: str
    category: str
    subcategory: str
    time_zone_id: str
    order_types: str
    valid_exchanges: str
    base_price: Decimal
    annual_volatility: float
    avg_daily_volume: int
    md_size_multiplier: int
    #: Contract multiplier (100 for US equity options, e.g. 50 for ES); 1 for stocks and forex.
    multiplier: Decimal = Decimal(1)

    def trading_hours(self, day: date) -> str:
        """IB ``tradingHours`` for the week starting at ``day`` (US/Eastern wall times)."""
        return hours_string(self.sec_type, day, liquid=False)

    def liquid_hours(self, day: date) -> str:
        """IB ``liquidHours`` (regular trading hours) for the week starting at ``day``."""
        return hours_string(self.sec_type, day, liquid=True)


class Catalogue:
    """An immutable, indexed set of instruments.

    Args:
        instruments: The instruments; conIds must be unique.
    """

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self._all = tuple(instruments)
        self._by_id: dict[int, Instrument] = {}
        for inst in self._all:
            if inst.con_id in self._by_id:
                raise ValueError(f"duplicate conId {inst.con_id} ({inst.symbol})")
            self._by_id[inst.con_id] = inst

    def all(self) -> tuple[Instrument, ...]:
        """Every instrument, in catalogue order."""
        return self._all

    def by_con_id(self, con_id: int) -> Instrument | None:
        """The instrument with this conId, or None."""
        return self._by_id.get(con_id)

    def find(
        self,
        symbol: str,
        sec_type: str | None = None,
        currency: str | None = None,
        exchange: str | None = None,
        primary_exchange: str | None = None,
    ) -> list[Instrument]:
        """Instruments matching a contract the way IB's ``reqContractDetails`` does.

        Empty strings count as "not given". The symbol is case-insensitive; forex pairs match
        their base currency (``EUR`` with currency ``USD``, as ``Forex("EURUSD")`` sends) and
        also their local symbol (``EUR.USD``/``EURUSD``). Exchange ``SMART`` matches every
        stock; otherwise the exchange must be the listing or one of the valid exchanges.

        Args:
            symbol: Ticker symbol.
            sec_type: ``STK`` or ``CASH``.
            currency: Quote currency, e.g. ``USD``.
            exchange: Routing exchange, e.g. ``SMART`` or ``IDEALPRO``.
            primary_exchange: Listing exchange, e.g. ``NASDAQ``.

        Returns:
            The matches in catalogue order (empty when nothing matches).
        """
        wanted = symbol.strip().upper()
        if not wanted:
            return []
        st = (sec_type or "").upper()
        cur = (currency or "").upper()
        exch = (exchange or "").upper()
        prim = (primary_exchange or "").upper()
        prim = _PRIMARY_ALIASES.get(prim, prim)
        return [
            inst
            for inst in self._all
            if _symbol_matches(inst, wanted)
            and (not st or inst.sec_type == st)
            and (not cur or inst.currency == cur)
            and (not exch or _exchange_matches(inst, exch))
            and (not prim or inst.primary_exchange == prim)
        ]

    def search(self, pattern: str, limit: int = 16) -> list[Instrument]:
        """Instruments for ``reqMatchingSymbols``: symbol prefixes first, then name matches.

        Args:
            pattern: What the user typed (case-insensitive).
            limit: Most results to return (IB sends at most 16).

        Returns:
            Symbol-prefix matches (shortest symbol first), then symbols containing the
            pattern, then long names containing it; no duplicates.
        """
        text = pattern.strip().upper()
        if not text or limit <= 0:
            return []
        prefix = sorted(
            (i for i in self._all if i.symbol.startswith(text) or i.local_symbol.startswith(text)),
            key=lambda i: (len(i.symbol), i.symbol, i.currency),
        )
        inner = [i for i in self._all if text in i.symbol or text in i.local_symbol]
        named = [i for i in self._all if text in i.long_name.upper()]
        out: list[Instrument] = []
        seen: set[int] = set()
        for inst in (*prefix, *inner, *named):
            if inst.con_id not in seen:
                seen.add(inst.con_id)
                out.append(inst)
        return out[:limit]


def _symbol_matches(inst: Instrument, wanted: str) -> bool:
    if inst.symbol == wanted:
        return True
    return inst.sec_type == "CASH" and wanted in (
        inst.local_symbol,
        inst.local_symbol.replace(".", ""),
    )


def _exchange_matches(inst: Instrument, exch: str) -> bool:
    if exch == "SMART":
        return inst.sec_type == "STK"
    canonical = _PRIMARY_ALIASES.get(exch, exch)
    return canonical in (
        inst.exchange,
        inst.primary_exchange,
    ) or exch in inst.valid_exchanges.split(",")


def default_instruments() -> tuple[Instrument, ...]:
    """Build the default instruments: about 30 US stocks and ETFs plus six forex pairs."""
    stocks = tuple(
        Instrument(
            con_id=con_id,
            symbol=symbol,
            sec_type="STK",
            exchange="SMART",
            primary_exchange=primary,
            currency="USD",
            local_symbol=symbol,
            # IB reports NASDAQ listings under trading class NMS, others under their symbol.
            trading_class="NMS" if primary == "NASDAQ" else symbol,
            long_name=long_name,
            stock_type=stock_type,
            min_tick=Decimal("0.01"),
            industry=industry,
            category=category,
            subcategory=subcategory,
            time_zone_id="US/Eastern",
            order_types=data.STOCK_ORDER_TYPES,
            valid_exchanges=data.STOCK_VALID_EXCHANGES,
            base_price=Decimal(price),
            annual_volatility=vol,
            avg_daily_volume=adv,
            md_size_multiplier=1,
        )
        for (
            symbol,
            con_id,
            primary,
            long_name,
            stock_type,
            industry,
            category,
            subcategory,
            price,
            vol,
            adv,
        ) in data.STOCK_ROWS
    )
    pairs = tuple(
        Instrument(
            con_id=con_id,
            symbol=base,
            sec_type="CASH",
            exchange="IDEALPRO",
            primary_exchange="IDEALPRO",
            currency=quote,
            local_symbol=f"{base}.{quote}",
            trading_class=f"{base}.{quote}",
            long_name=long_name,
            stock_type="",
            min_tick=Decimal(tick),
            industry="",
            category="",
            subcategory="",
            time_zone_id="US/Eastern",
            order_types=data.FX_ORDER_TYPES,
            valid_exchanges=data.FX_VALID_EXCHANGES,
            base_price=Decimal(price),
            annual_volatility=vol,
            avg_daily_volume=2_000_000_000,
            md_size_multiplier=1,
        )
        for base, quote, con_id, long_name, tick, price, vol in data.FX_ROWS
    )
    return stocks + pairs


DEFAULT_CATALOGUE: Catalogue = Catalogue(default_instruments())
