"""Simulated accounts: cash, positions, average cost, realized/daily/unrealized PnL and margin."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ibkr_mcp.simulator.catalogue import Instrument

ZERO = Decimal(0)
#: Reg-T-ish margin rates per security type (initial, maintenance).
MARGIN_RATES: dict[str, tuple[Decimal, Decimal]] = {
    "STK": (Decimal("0.25"), Decimal("0.25")),
    "CASH": (Decimal("0.025"), Decimal("0.025")),
    # Futures: a SPAN-like share of notional; options: long premium paid in full, shorts
    # carry a Reg-T-like 20% of the underlying notional (approximated on the option's value).
    "FUT": (Decimal("0.08"), Decimal("0.07")),
    "FOP": (Decimal("0.08"), Decimal("0.07")),
    "OPT": (Decimal(1), Decimal(1)),
}
#: Instrument classes whose notional never moves cash: only realized PnL does (marked to market).
MARK_TO_MARKET = frozenset({"FUT"})
#: Intraday buying power multiple of excess liquidity on a margin account.
BUYING_POWER_MULTIPLE = Decimal(4)
CENT = Decimal("0.01")

#: Price of an instrument in its own currency (the mark), and the rate of a currency to base.
MarkFn = Callable[["Instrument"], Decimal]
FxFn = Callable[[str], Decimal]


@dataclass
class SimPosition:
    """One position of an account (quantities signed: short is negative)."""

    instrument: Instrument
    quantity: Decimal = ZERO
    avg_cost: Decimal = ZERO
    realized: Decimal = ZERO
    day_basis: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class PositionValue:
    """A position valued at the current mark, in the instrument's currency."""

    position: SimPosition
    mark: Decimal
    market_value: Decimal
    unrealized: Decimal
    daily: Decimal


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """Every account figure IB reports, in the base currency."""

    account: str
    currency: str
    cash: Decimal
    net_liquidation: Decimal
    gross_position_value: Decimal
    stock_market_value: Decimal
    init_margin: Decimal
    maint_margin: Decimal
    equity_with_loan: Decimal
    available_funds: Decimal
    excess_liquidity: Decimal
    buying_power: Decimal
    cushion: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal
    daily_pnl: Decimal
    leverage: Decimal


@dataclass
class Account:
    """One simulated margin account (base currency USD)."""

    account_id: str
    starting_cash: Decimal
    currency: str = "USD"
    cash: Decimal = ZERO
    positions: dict[int, SimPosition] = field(default_factory=dict)
    realized_pnl: Decimal = ZERO
    commissions: Decimal = ZERO
    day: date | None = None

    def __post_init__(self) -> None:
        self.cash = self.starting_cash

    @property
    def account_type(self) -> str:
        """IB's AccountType tag value."""
        return "INDIVIDUAL"

    def roll_day(self, today: date, prior_close: MarkFn) -> None:
        """Start a new trading day: daily PnL is measured from the prior close from now on."""
        if self.day == today:
            return
        self.day = today
        for pos in self.positions.values():
            pos.day_basis = pos.quantity * prior_close(pos.instrument) * pos.instrument.multiplier

    def apply_fill(
        self,
        inst: Instrument,
        signed_qty: Decimal,
        price: Decimal,
        commission: Decimal,
        fx: Decimal,
    ) -> Decimal | None:
        """Book one fill; returns the realized PnL it closed (``None`` for a pure opening fill).

        ``price`` is per unit as IB quotes it; average cost and PnL are per contract (price
        times the instrument's multiplier), as IB reports them.
        """
        price = price * inst.multiplier
        pos = self.positions.get(inst.con_id)
        if pos is None:
            pos = self.positions[inst.con_id] = SimPosition(inst)
        q0 = pos.quantity
        new_qty = q0 + signed_qty
        qty = abs(signed_qty)
        # Commission is in the account currency; average cost is in the instrument's currency.
        commission_local = commission / fx if fx else commission
        realized: Decimal | None = None
        if q0 == 0 or (q0 > 0) == (signed_qty > 0):
            pos.avg_cost = (abs(q0) * pos.avg_cost + qty * price + commission_local) / abs(new_qty)
        else:
            closing = min(qty, abs(q0))
            opening = qty - closing
            share = commission_local * closing / qty
            direction = Decimal(1) if q0 > 0 else Decimal(-1)
            realized = closing * (price - pos.avg_cost) * direction - share
            pos.realized += realized
            self.realized_pnl += realized * fx
            if new_qty == 0:
                pos.avg_cost = ZERO
            elif opening:
                pos.avg_cost = price + (commission_local - share) / opening
        pos.quantity = new_qty
        pos.day_basis += signed_qty * price + commission_local
        if inst.sec_type in MARK_TO_MARKET:
            # The opening commission sits in the average cost (so in unrealized PnL); closing
            # realizes PnL net of both commissions into cash.
            self.cash += (realized or ZERO) * fx
        else:
            self.cash -= (signed_qty * price) * fx + commission
        self.commissions += commission
        return realized

    def value(self, pos: SimPosition, mark: Decimal) -> PositionValue:
        """Value one position at ``mark`` (per unit; values scale by the multiplier)."""
        market_value = pos.quantity * mark * pos.instrument.multiplier
        unrealized = market_value - pos.quantity * pos.avg_cost
        daily = market_value - pos.day_basis
        return PositionValue(pos, mark, market_value, unrealized, daily)

    def margin_for(
        self, positions: dict[int, tuple[Instrument, Decimal]], mark: MarkFn, fx: FxFn
    ) -> tuple[Decimal, Decimal]:
        """Initial and maintenance margin of a set of (instrument, quantity) holdings."""
        init = maint = ZERO
        for inst, qty in positions.values():
            value = abs(qty * mark(inst) * inst.multiplier) * fx(inst.currency)
            rate_init, rate_maint = MARGIN_RATES.get(inst.sec_type, (Decimal(1), Decimal(1)))
            init += value * rate_init
            maint += value * rate_maint
        return init, maint

    def holdings(self) -> dict[int, tuple[Instrument, Decimal]]:
        """Current (instrument, quantity) per conId, open positions only."""
        return {k: (p.instrument, p.quantity) for k, p in self.positions.items() if p.quantity}

    def snapshot(self, mark: MarkFn, fx: FxFn) -> AccountSnapshot:
        """All account figures at the current marks."""
        gross = stock = unrealized = daily = ZERO
        for pos in self.positions.values():
            rate = fx(pos.instrument.currency)
            val = self.value(pos, mark(pos.instrument) if pos.quantity else ZERO)
            gross += abs(val.market_value) * rate
            if pos.instrument.sec_type == "STK":
                stock += val.market_value * rate
            unrealized += val.unrealized * rate
            daily += val.daily * rate
        fx_value = sum(
            (
                _liquidation_value(self.value(p, mark(p.instrument))) * fx(p.instrument.currency)
                for p in self.positions.values()
                if p.quantity and p.instrument.sec_type != "STK"
            ),
            ZERO,
        )
        net_liq = self.cash + stock + fx_value
        init, maint = self.margin_for(self.holdings(), mark, fx)
        available = net_liq - init
        excess = net_liq - maint
        return AccountSnapshot(
            account=self.account_id,
            currency=self.currency,
            cash=self.cash,
            net_liquidation=net_liq,
            gross_position_value=gross,
            stock_market_value=stock,
            init_margin=init,
            maint_margin=maint,
            equity_with_loan=net_liq,
            available_funds=available,
            excess_liquidity=excess,
            buying_power=max(ZERO, available * BUYING_POWER_MULTIPLE),
            cushion=(excess / net_liq) if net_liq > 0 else ZERO,
            unrealized_pnl=unrealized,
            realized_pnl=self.realized_pnl,
            daily_pnl=daily,
            leverage=(gross / net_liq) if net_liq > 0 else ZERO,
        )


def _liquidation_value(val: PositionValue) -> Decimal:
    """What a non-stock position adds to net liquidation: its value, or its open PnL if marked."""
    if val.position.instrument.sec_type in MARK_TO_MARKET:
        return val.unrealized
    return val.market_value


def money(value: Decimal) -> Decimal:
    """Round to cents the way account values are displayed."""
    return value.quantize(CENT)


def summary_values(snap: AccountSnapshot) -> list[tuple[str, str, str]]:
    """(tag, value, currency) rows: the account summary / account update vocabulary."""
    ccy = snap.currency

    def m(v: Decimal) -> str:
        return str(money(v))

    return [
        ("AccountType", "INDIVIDUAL", ""),
        ("NetLiquidation", m(snap.net_liquidation), ccy),
        ("TotalCashValue", m(snap.cash), ccy),
        ("SettledCash", m(snap.cash), ccy),
        ("AccruedCash", "0.00", ccy),
        ("BuyingPower", m(snap.buying_power), ccy),
        ("EquityWithLoanValue", m(snap.equity_with_loan), ccy),
        ("PreviousDayEquityWithLoanValue", m(snap.equity_with_loan - snap.daily_pnl), ccy),
        ("GrossPositionValue", m(snap.gross_position_value), ccy),
        ("RegTEquity", m(snap.equity_with_loan), ccy),
        ("RegTMargin", m(snap.init_margin), ccy),
        ("SMA", m(max(ZERO, snap.available_funds)), ccy),
        ("InitMarginReq", m(snap.init_margin), ccy),
        ("MaintMarginReq", m(snap.maint_margin), ccy),
        ("AvailableFunds", m(snap.available_funds), ccy),
        ("ExcessLiquidity", m(snap.excess_liquidity), ccy),
        ("Cushion", str(snap.cushion.quantize(Decimal("0.000001"))), ""),
        ("FullInitMarginReq", m(snap.init_margin), ccy),
        ("FullMaintMarginReq", m(snap.maint_margin), ccy),
        ("FullAvailableFunds", m(snap.available_funds), ccy),
        ("FullExcessLiquidity", m(snap.excess_liquidity), ccy),
        ("LookAheadNextChange", "0", ""),
        ("LookAheadInitMarginReq", m(snap.init_margin), ccy),
        ("LookAheadMaintMarginReq", m(snap.maint_margin), ccy),
        ("LookAheadAvailableFunds", m(snap.available_funds), ccy),
        ("LookAheadExcessLiquidity", m(snap.excess_liquidity), ccy),
        ("HighestSeverity", "0", ""),
        ("DayTradesRemaining", "-1", ""),
        ("Leverage", str(snap.leverage.quantize(Decimal("0.01"))), ""),
    ]


def update_values(snap: AccountSnapshot) -> list[tuple[str, str, str]]:
    """(key, value, currency) rows of reqAccountUpdates (summary tags plus PnL and ledger)."""
    rows = [row for row in summary_values(snap) if row[0] != "AccountType"]
    ccy = snap.currency
    rows += [
        ("AccountCode", snap.account, ""),
        ("AccountType", "INDIVIDUAL", ""),
        ("Currency", ccy, ccy),
        ("StockMarketValue", str(money(snap.stock_market_value)), ccy),
        ("UnrealizedPnL", str(money(snap.unrealized_pnl)), ccy),
        ("RealizedPnL", str(money(snap.realized_pnl)), ccy),
        ("CashBalance", str(money(snap.cash)), ccy),
        ("CashBalance", str(money(snap.cash)), "BASE"),
        ("NetLiquidationByCurrency", str(money(snap.net_liquidation)), "BASE"),
        ("TotalCashBalance", str(money(snap.cash)), "BASE"),
        ("UnrealizedPnL", str(money(snap.unrealized_pnl)), "BASE"),
        ("RealizedPnL", str(money(snap.realized_pnl)), "BASE"),
        ("ExchangeRate", "1.00", ccy),
    ]
    return rows
