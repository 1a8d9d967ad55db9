"""Futures and options of the simulated catalogue, built on demand from their encoded conIds.

Listing them all would mean hundreds of thousands of option contracts, so nothing is stored:
a conId encodes the contract (futures: root, year, month; options: root, expiry week, strike
slot, right) and ``Book.by_con_id`` rebuilds the instrument from it. What is *listed* on a
day (front months, weekly and monthly expiries, strikes around the underlying's previous
close) follows the simulated clock, so the same seed and clock always list the same chain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from ibkr_mcp.simulator import _catalogue_derivs as data
from ibkr_mcp.simulator._futures import contract_months, last_trade_day, third_weekday
from ibkr_mcp.simulator.catalogue import Catalogue, Instrument

if TYPE_CHECKING:
    from ibkr_mcp.simulator.incoming import ContractSpec

__all__ = ["Book", "OptionRoot", "SpotSource", "book_for", "expiry_instant", "last_day"]

ET = ZoneInfo("America/New_York")
#: conId ranges: futures FUT_BASE + root*10_000 + yy*100 + month; options from OPT_BASE
#: with 8 bits of root, 10 of expiry week, 11 of strike slot and 1 of right (fits int32).
FUT_BASE = 1_000_000_000
OPT_BASE = 1 << 30
_WEEK0 = date(2020, 1, 3)  # a Friday: option expiry weeks count from it
_MAX_SLOT = 2047
_CARRY_REF = date(2026, 10, 1)


class SpotSource(Protocol):
    """What listing needs from the market: the underlying's previous close at an instant."""

    def reference_price(self, inst: Instrument, at: datetime) -> Decimal:
        """The underlying's previous session close as of ``at``."""
        ...


def expiry_instant(day: date) -> datetime:
    """Futures and options stop trading and expire at 16:00 New York on their last day."""
    return datetime(day.year, day.month, day.day, 16, 0, tzinfo=ET).astimezone(UTC)


def last_day(inst: Instrument) -> date:
    """The last trading day of a future or option (from ``lastTradeDateOrContractMonth``)."""
    text = inst.last_trade
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def _today(now: datetime) -> date:
    """The first day still trading at ``now`` (a contract expiring today is gone after 16:00)."""
    local = now.astimezone(ET)
    return local.date() + timedelta(days=1) if local.hour >= 16 else local.date()


@dataclass(frozen=True, slots=True)
class FutureRoot:
    """One futures product (ES, CL …)."""

    index: int
    symbol: str
    trading_class: str
    exchange: str
    multiplier: Decimal
    min_tick: Decimal
    long_name: str
    months: tuple[int, ...]
    rule: str
    base_price: Decimal
    volatility: float
    ahead: int
    underlying: Instrument | None
    path_id: int


@dataclass(frozen=True, slots=True)
class OptionRoot:
    """One option trading class on one underlying (AAPL, SPX, SPXW …)."""

    index: int
    trading_class: str
    underlying: Instrument
    step: Decimal
    unit: Decimal
    weekly: bool
    monthly: bool
    min_tick: Decimal
    exchanges: str
    chain_exchanges: tuple[str, ...]


def _strike_step(price: Decimal) -> Decimal:
    """The standard strike grid spacing for an underlying at ``price``."""
    for limit, step in ((25, "0.5"), (100, "1"), (250, "2.5"), (1000, "5"), (3000, "10")):
        if price < limit:
            return Decimal(step)
    return Decimal(50)


def _decimal(text: str) -> Decimal | None:
    """A client's numeric text as a Decimal (None when it is not a number)."""
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        return None


def _occ_root(trading_class: str) -> str:
    return trading_class.replace(" ", "")


class Book:
    """The futures and options a catalogue's underlyings carry.

    Args:
        catalogue: Stocks, ETFs and indices (options go on every stock/ETF and on SPX).
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.futures: list[FutureRoot] = []
        for i, row in enumerate(data.FUTURES):
            sym, cls, exch, mult, tick, name, months, rule, price, vol, ahead, under = row
            found = catalogue.find(under, sec_type="IND") if under else []
            und = found[0] if found else None
            self.futures.append(
                FutureRoot(
                    i, sym, cls, exch, Decimal(mult), Decimal(tick), name, months, rule,
                    Decimal(price), vol, ahead, und,
                    und.con_id if und is not None else FUT_BASE + i * 10_000,
                )
            )  # fmt: skip
        self._fut_by_symbol = {r.symbol: r for r in self.futures}
        self.options: list[OptionRoot] = []
        stocks = [i for i in catalogue.all() if i.sec_type == "STK"]
        for inst in stocks:
            step = _strike_step(inst.base_price)
            self._add_option_root(inst, _occ_root(inst.symbol), step, weekly=True, monthly=True)
        for spx in catalogue.find("SPX", sec_type="IND"):
            step = Decimal(5)
            self._add_option_root(spx, "SPX", step, weekly=False, monthly=True)
            self._add_option_root(spx, "SPXW", step, weekly=True, monthly=True)
        self._opt_by_class = {r.trading_class: r for r in self.options}

    def _add_option_root(
        self, und: Instrument, cls: str, step: Decimal, *, weekly: bool, monthly: bool
    ) -> None:
        if len(self.options) > 255:
            raise ValueError("more than 256 option trading classes do not fit the conId encoding")
        index_like = und.sec_type == "IND"
        unit = Decimal("0.5") if step in (Decimal("0.5"), Decimal("2.5")) else step
        self.options.append(
            OptionRoot(
                index=len(self.options),
                trading_class=cls,
                underlying=und,
                step=step,
                unit=unit,
                weekly=weekly,
                monthly=monthly,
                min_tick=Decimal("0.05") if index_like else Decimal("0.01"),
                exchanges=data.INDEX_OPTION_EXCHANGES if index_like else data.OPTION_EXCHANGES,
                chain_exchanges=(
                    data.INDEX_OPTION_CHAIN_EXCHANGES if index_like else data.OPTION_CHAIN_EXCHANGES
                ),
            )
        )

    # -- lookup ------------------------------------------------------------------------------
    def by_con_id(self, con_id: int) -> Instrument | None:
        """Rebuild a future or option from its conId (None if it encodes nothing)."""
        if FUT_BASE <= con_id < FUT_BASE + 1_000_000:
            rest = con_id - FUT_BASE
            idx, yymm = divmod(rest, 10_000)
            year, month = 2000 + yymm // 100, yymm % 100
            if idx < len(self.futures) and month in self.futures[idx].months:
                return self.future(self.futures[idx], year, month)
            return None
        if con_id >= OPT_BASE:
            rest = con_id - OPT_BASE
            rest, right = divmod(rest, 2)
            rest, slot = divmod(rest, _MAX_SLOT + 1)
            idx, week = divmod(rest, 1024)
            if idx >= len(self.options) or slot == 0:
                return None
            root = self.options[idx]
            return self.option(root, _WEEK0 + timedelta(weeks=week), slot * root.unit, "CP"[right])
        return None

    def future_root(self, symbol: str) -> FutureRoot | None:
        """The futures root for an IB symbol or trading class (``ES``, ``EUR``, ``6E``)."""
        sym = data.FUTURE_ALIASES.get(symbol.upper(), symbol.upper())
        return self._fut_by_symbol.get(sym)

    def option_roots(self, underlying: Instrument) -> list[OptionRoot]:
        """Every option trading class on an underlying."""
        return [r for r in self.options if r.underlying.con_id == underlying.con_id]

    # -- futures -----------------------------------------------------------------------------
    def future(self, root: FutureRoot, year: int, month: int) -> Instrument:
        """The futures contract of ``root`` for one contract month."""
        return _future(self, root.index, year, month)

    def listed_futures(self, root: FutureRoot, now: datetime) -> list[Instrument]:
        """The months of a root trading at ``now``, nearest first."""
        months = contract_months(root.months, root.rule, _today(now), root.ahead)
        return [self.future(root, y, m) for y, m in months]

    # -- options -----------------------------------------------------------------------------
    def option(self, root: OptionRoot, expiry: date, strike: Decimal, right: str) -> Instrument:
        """One option contract (``right`` is ``C`` or ``P``)."""
        return _option(self, root.index, expiry, strike, right)

    def expiries(self, root: OptionRoot, now: datetime) -> list[date]:
        """Expiry dates listed at ``now``: weekly Fridays and monthly third Fridays."""
        today = _today(now)
        days: set[date] = set()
        if root.weekly:
            friday = today + timedelta(days=(4 - today.weekday()) % 7)
            days.update(friday + timedelta(weeks=n) for n in range(data.WEEKLY_COUNT))
        if root.monthly:
            year, month = today.year, today.month
            for _ in range(data.MONTHLY_COUNT + 1):
                third = third_weekday(year, month, 4)
                if third >= today:
                    days.add(third)
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return sorted(d for d in days if d >= today)[: data.WEEKLY_COUNT + data.MONTHLY_COUNT]

    def _strike_range(self, root: OptionRoot, expiry: date, spot: Decimal, now: datetime) -> range:
        """Grid indices (strike = step * n) listed for one expiry: wider for later expiries."""
        years = max((expiry - _today(now)).days, 1) / 365
        width = min(0.5, max(0.1, 0.08 + 0.3 * math.sqrt(years)))
        step = float(root.step)
        first = max(1, math.ceil(float(spot) * (1 - width) / step))
        last = math.floor(float(spot) * (1 + width) / step)
        # Strike slots (strike / unit) must fit the conId encoding.
        last = min(last, int(_MAX_SLOT * root.unit / root.step))
        return range(first, last + 1)

    def strikes(
        self, root: OptionRoot, expiry: date, spot: Decimal, now: datetime
    ) -> list[Decimal]:
        """Strikes listed for one expiry: the grid around ``spot``, wider for later expiries."""
        return [root.step * n for n in self._strike_range(root, expiry, spot, now)]

    def chain(
        self, root: OptionRoot, now: datetime, spot: Decimal
    ) -> tuple[list[date], list[Decimal]]:
        """All listed expiries of a trading class and the union of their strikes."""
        expiries = self.expiries(root, now)
        ranges = [self._strike_range(root, expiry, spot, now) for expiry in expiries]
        if not ranges:
            return expiries, []
        # Every range is centred on the same spot, so their union is one contiguous range.
        first = min(r.start for r in ranges)
        stop = max(r.stop for r in ranges)
        return expiries, [root.step * n for n in range(first, stop)]

    def resolve(
        self, spec: ContractSpec, now: datetime | None, spot: SpotSource | None
    ) -> list[Instrument]:
        """Futures/options matching a partial description, as reqContractDetails answers."""
        if spec.sec_type in ("FUT", "CONTFUT"):
            return self._resolve_future(spec, now)
        if spec.sec_type == "OPT":
            return self._resolve_option(spec, now, spot)
        return []

    def _resolve_future(self, spec: ContractSpec, now: datetime | None) -> list[Instrument]:
        root = self.future_root(spec.symbol) if spec.symbol else None
        if root is None and spec.local_symbol:
            root = self.future_root(spec.local_symbol[:-2])
        if root is None or (spec.exchange and spec.exchange not in (root.exchange, "SMART")):
            return []
        if spec.trading_class and spec.trading_class.upper() != root.trading_class:
            return []
        at = now or datetime.now(UTC)
        listed = self.listed_futures(root, at)
        if spec.sec_type == "CONTFUT":
            return listed[:1]
        wanted = spec.last_trade.strip()
        if wanted:
            # Only listed months can match: an expired month matches nothing (IB: error 200).
            listed = [
                i for i in listed if i.last_trade.startswith(wanted) or i.contract_month == wanted
            ]
        if spec.local_symbol:
            listed = [i for i in listed if i.local_symbol == spec.local_symbol.upper()]
        if spec.multiplier and _decimal(spec.multiplier) != root.multiplier:
            return []
        return listed

    def _resolve_option(
        self, spec: ContractSpec, now: datetime | None, spot: SpotSource | None
    ) -> list[Instrument]:
        symbol = spec.symbol.upper()
        if not symbol and spec.local_symbol:
            symbol = spec.local_symbol[:6].strip().upper()
            symbol = {"SPXW": "SPX", "BRKB": "BRK B"}.get(symbol, symbol)
        unds = [i for i in self.catalogue.find(symbol) if i.sec_type in ("STK", "IND")]
        roots = [r for u in unds for r in self.option_roots(u)]
        if spec.trading_class:
            roots = [r for r in roots if r.trading_class == spec.trading_class.upper()]
        if spec.exchange:
            roots = [r for r in roots if spec.exchange in r.exchanges.split(",")]
        if spec.multiplier and _decimal(spec.multiplier) != 100:
            return []
        right = spec.right.upper()[:1] if spec.right else ""
        if right and right not in "CP":
            return []
        at = now or datetime.now(UTC)
        wanted = spec.last_trade.strip()
        out: list[Instrument] = []
        for root in roots:
            ref = (
                spot.reference_price(root.underlying, at)
                if spot is not None
                else root.underlying.base_price
            )
            for expiry in self.expiries(root, at):
                stamp = expiry.strftime("%Y%m%d")
                if wanted and not stamp.startswith(wanted):
                    continue
                listed = self.strikes(root, expiry, ref, at)
                if spec.strike:
                    strike = Decimal(str(spec.strike))
                    listed = [s for s in listed if s == strike]
                for strike in listed:
                    for r in (right,) if right else ("C", "P"):
                        out.append(self.option(root, expiry, strike, r))
        if spec.local_symbol:
            out = [i for i in out if i.local_symbol == spec.local_symbol.upper()]
        return out


@lru_cache(maxsize=4096)
def _future(book: Book, idx: int, year: int, month: int) -> Instrument:
    root = book.futures[idx]
    last = last_trade_day(root.rule, year, month)
    years = (last - _CARRY_REF).days / 365
    carry = data.FUTURE_CARRY.get(root.symbol, 0.0)
    und = root.underlying
    base = root.base_price * Decimal(str(round(math.exp(carry * years), 8)))
    code = data.MONTH_CODES[month - 1]
    return Instrument(
        con_id=FUT_BASE + idx * 10_000 + (year - 2000) * 100 + month,
        symbol=root.symbol,
        sec_type="FUT",
        exchange=root.exchange,
        primary_exchange=root.exchange,
        currency="USD",
        local_symbol=f"{root.trading_class}{code}{year % 10}",
        trading_class=root.trading_class,
        long_name=root.long_name,
        stock_type="",
        min_tick=root.min_tick,
        industry="",
        category="",
        subcategory="",
        time_zone_id="US/Central",
        order_types=data.FUTURE_ORDER_TYPES,
        valid_exchanges=root.exchange,
        base_price=base,
        annual_volatility=root.volatility,
        avg_daily_volume=1_500_000,
        md_size_multiplier=1,
        multiplier=root.multiplier,
        last_trade=last.strftime("%Y%m%d"),
        contract_month=f"{year}{month:02d}",
        under_con_id=und.con_id if und is not None else 0,
        under_symbol=und.symbol if und is not None else root.symbol,
        under_sec_type="IND",
        market_name=root.trading_class,
        path_id=root.path_id,
        real_con_id=False,
    )


@lru_cache(maxsize=65536)
def _option(book: Book, idx: int, expiry: date, strike: Decimal, right: str) -> Instrument:
    root = book.options[idx]
    und = root.underlying
    week = (expiry - _WEEK0).days // 7
    slot = int(strike / root.unit)
    con_id = OPT_BASE + ((idx * 1024 + week) * (_MAX_SLOT + 1) + slot) * 2 + (right == "P")
    occ = f"{_occ_root(root.trading_class):<6}{expiry:%y%m%d}{right}{int(strike * 1000):08d}"
    return Instrument(
        con_id=con_id,
        symbol=und.symbol,
        sec_type="OPT",
        exchange="SMART",
        primary_exchange="",
        currency="USD",
        local_symbol=occ,
        trading_class=root.trading_class,
        long_name=und.long_name,
        stock_type="",
        min_tick=root.min_tick,
        industry=und.industry,
        category=und.category,
        subcategory=und.subcategory,
        time_zone_id="US/Eastern",
        order_types=data.OPTION_ORDER_TYPES,
        valid_exchanges=root.exchanges,
        base_price=und.base_price,
        annual_volatility=und.annual_volatility,
        avg_daily_volume=0,
        md_size_multiplier=1,
        multiplier=Decimal(100),
        last_trade=expiry.strftime("%Y%m%d"),
        strike=strike,
        right=right,
        contract_month=expiry.strftime("%Y%m"),
        under_con_id=und.con_id,
        under_symbol=und.symbol,
        under_sec_type=und.sec_type,
        market_name=root.trading_class,
        path_id=und.con_id,
        real_con_id=False,
    )


@lru_cache(maxsize=8)
def book_for(catalogue: Catalogue) -> Book:
    """The (cached) derivatives book of a catalogue."""
    return Book(catalogue)
