"""The simulator's instrument catalogue: US stocks, ETFs, indices and IDEALPRO forex pairs.

Futures and options are not stored here: ``derivatives.py`` builds them on demand (their
conIds encode the contract), and ``Catalogue.by_con_id`` falls back to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal
from zlib import crc32

from ibkr_mcp.simulator import _catalogue_data as data
from ibkr_mcp.simulator import _catalogue_derivs as derivs
from ibkr_mcp.simulator._catalogue_stocks import STOCKS
from ibkr_mcp.simulator._market_calendar import hours_string

__all__ = [
    "DEFAULT_CATALOGUE",
    "Catalogue",
    "Instrument",
    "SecType",
    "default_instruments",
    "synthetic_con_id",
]

SecType = Literal["STK", "CASH", "IND", "FUT", "OPT"]
#: Synthetic stock conIds live in [SYNTHETIC_BASE, SYNTHETIC_BASE + SYNTHETIC_SPAN).
SYNTHETIC_BASE = 900_000_000
SYNTHETIC_SPAN = 90_000_000

#: Exchange names IB uses interchangeably for a primary listing.
_PRIMARY_ALIASES = {"ISLAND": "NASDAQ"}


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable contract with the details IB reports plus the simulator's model inputs.

    ``base_price``, ``annual_volatility``, ``avg_daily_volume`` and ``md_size_multiplier`` feed
    the market model (``path_id``, when set, shares another instrument's random path, so all
    months of a future move together); everything else mirrors IB's ``ContractDetails``.
    ``real_con_id`` says whether ``con_id`` is IB's own (False: a stable synthetic one).
    """

    con_id: int
    symbol: str
    sec_type: SecType
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
    last_trade: str = ""
    strike: Decimal = Decimal(0)
    right: str = ""
    contract_month: str = ""
    under_con_id: int = 0
    under_symbol: str = ""
    under_sec_type: str = ""
    market_name: str = ""
    path_id: int = 0
    real_con_id: bool = True

    @property
    def wire_multiplier(self) -> str:
        """The multiplier as IB's contract fields carry it (empty for stocks, forex, indices)."""
        return str(self.multiplier) if self.sec_type in ("FUT", "OPT") else ""

    @property
    def wire_strike(self) -> str:
        """The strike as IB's contract fields carry it ("0" when there is none)."""
        return _plain(self.strike) if self.strike else "0"

    def wire_head(self) -> list[int | str]:
        """ConId, symbol, secType, lastTradeDateOrContractMonth, strike, right, multiplier."""
        return [
            self.con_id,
            self.symbol,
            self.sec_type,
            self.last_trade,
            self.wire_strike,
            self.right,
            self.wire_multiplier,
        ]

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


def synthetic_con_id(symbol: str) -> int:
    """A stable conId for a symbol whose real IB conId is not recorded (never a real range)."""
    return SYNTHETIC_BASE + crc32(symbol.encode()) % SYNTHETIC_SPAN


def _plain(value: Decimal) -> str:
    """Decimal text without exponent or trailing zeros (``6800``, ``2.5``)."""
    text = format(value.normalize(), "f")
    return text


def _stock(
    row: tuple[str, int, str, str, str, tuple[str, str, str], str, float, int],
) -> Instrument:
    symbol, con_id, primary, long_name, stock_type, (industry, category, sub), price, vol, adv = row
    return Instrument(
        con_id=con_id or synthetic_con_id(symbol),
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
        subcategory=sub,
        time_zone_id="US/Eastern",
        order_types=data.STOCK_ORDER_TYPES,
        valid_exchanges=data.STOCK_VALID_EXCHANGES,
        base_price=Decimal(price),
        annual_volatility=vol,
        avg_daily_volume=adv,
        md_size_multiplier=1,
        market_name="NMS",
        real_con_id=bool(con_id),
    )


def _index(row: tuple[str, int, str, str, str, str, float]) -> Instrument:
    symbol, con_id, exchange, long_name, tick, price, vol = row
    return Instrument(
        con_id=con_id or synthetic_con_id(symbol + ".IND"),
        symbol=symbol,
        sec_type="IND",
        exchange=exchange,
        primary_exchange="",
        currency="USD",
        local_symbol=symbol,
        trading_class=symbol,
        long_name=long_name,
        stock_type="",
        min_tick=Decimal(tick),
        industry="Indices",
        category="Broad Range Equity Index",
        subcategory="*",
        time_zone_id="US/Central",
        order_types=derivs.INDEX_ORDER_TYPES,
        valid_exchanges=exchange,
        base_price=Decimal(price),
        annual_volatility=vol,
        avg_daily_volume=0,
        md_size_multiplier=1,
        market_name=symbol,
        real_con_id=bool(con_id),
    )


def _pair(row: tuple[str, str, int, str, str, str, float]) -> Instrument:
    base, quote, con_id, long_name, tick, price, vol = row
    return Instrument(
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
        market_name=f"{base}.{quote}",
    )


def default_instruments() -> tuple[Instrument, ...]:
    """The default instruments: S&P 100 stocks, common ETFs, five indices, six forex pairs."""
    stocks = tuple(_stock(row) for row in STOCKS)
    indices = tuple(_index(row) for row in derivs.INDICES)
    pairs = tuple(_pair(row) for row in data.FX_ROWS)
    return stocks + indices + pairs


DEFAULT_CATALOGUE: Catalogue = Catalogue(default_instruments())
