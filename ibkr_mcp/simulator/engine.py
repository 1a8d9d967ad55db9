"""Order engine: validation, an order-type strategy table, matching against the market, fills."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Literal, Protocol

from ibkr_mcp.simulator._market_calendar import ET, is_trading_day, next_trading_day
from ibkr_mcp.simulator.accounts import ZERO, Account
from ibkr_mcp.simulator.contracts import fx_rate, resolve

if TYPE_CHECKING:
    from ibkr_mcp.simulator.catalogue import Catalogue, Instrument
    from ibkr_mcp.simulator.incoming_order import OrderFields
    from ibkr_mcp.simulator.market import MarketModel, Tick

#: Statuses after which an order never changes again.
DONE = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
SUPPORTED_TIFS = frozenset({"DAY", "GTC", "IOC"})
#: permIds are large unique increasing integers in IB; derived from a counter here.
PERM_ID_BASE = 1_100_000_000
CENT = Decimal("0.01")


@dataclass
class SimFill:
    """One execution."""

    exec_id: str
    order: SimOrder
    time: datetime
    shares: Decimal
    price: Decimal
    cum_qty: Decimal
    avg_price: Decimal
    commission: Decimal
    commission_currency: str
    realized_pnl: Decimal | None

    @property
    def side(self) -> str:
        """IB's execution side: BOT or SLD."""
        return "BOT" if self.order.action == "BUY" else "SLD"


@dataclass
class SimOrder:
    """An order as the simulated gateway knows it (every order ever received, incl. whatIf)."""

    fields: OrderFields
    client_id: int
    perm_id: int
    account: str
    instrument: Instrument | None
    created: datetime
    status: str = "PendingSubmit"
    filled: Decimal = ZERO
    avg_fill_price: Decimal = ZERO
    last_fill_price: Decimal = ZERO
    fills: list[SimFill] = field(default_factory=list)
    completed_time: datetime | None = None
    completed_status: str = ""
    reject_code: int = 0
    reject_reason: str = ""

    @property
    def order_id(self) -> int:
        """The client's order id."""
        return self.fields.order_id

    @property
    def action(self) -> str:
        """BUY or SELL."""
        return self.fields.action

    @property
    def what_if(self) -> bool:
        """Whether this was a what-if preview (never live)."""
        return self.fields.what_if

    @property
    def remaining(self) -> Decimal:
        """Quantity still to fill."""
        return self.fields.total_quantity - self.filled

    @property
    def is_live(self) -> bool:
        """Working at the simulated exchange."""
        return not self.what_if and self.status in ("PreSubmitted", "Submitted")


class OrderTypeStrategy(Protocol):
    """How one order type decides its execution price (new types slot into ``ORDER_TYPES``)."""

    def validate(self, f: OrderFields) -> str | None:
        """Reason the order is malformed for this type, or ``None``."""
        ...

    def execution_price(self, order: SimOrder, tick: Tick, resting: bool) -> Decimal | None:
        """Price it executes at against ``tick`` now, or ``None`` if it does not execute."""
        ...


class MarketOrder:
    """MKT: buys at the ask, sells at the bid."""

    def validate(self, f: OrderFields) -> str | None:
        """Market orders need nothing more."""
        return None

    def execution_price(self, order: SimOrder, tick: Tick, resting: bool) -> Decimal | None:
        """Take the opposite side of the book."""
        price = tick.ask if order.action == "BUY" else tick.bid
        return price if price > 0 else None


class LimitOrder:
    """LMT: marketable on arrival fills at the touch; resting fills at its limit when crossed."""

    def validate(self, f: OrderFields) -> str | None:
        """A limit order needs a positive limit price."""
        if f.lmt_price is None or f.lmt_price <= 0:
            return "Limit price is missing or not positive."
        return None

    def execution_price(self, order: SimOrder, tick: Tick, resting: bool) -> Decimal | None:
        """Execute when the opposite side reaches the limit."""
        limit = order.fields.lmt_price
        assert limit is not None
        if order.action == "BUY":
            if 0 < tick.ask <= limit:
                return limit if resting else tick.ask
        elif tick.bid >= limit > 0:
            return limit if resting else tick.bid
        return None


ORDER_TYPES: dict[str, OrderTypeStrategy] = {"MKT": MarketOrder(), "LMT": LimitOrder()}


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """Something the owning client must hear about, in IB's order: see ``Engine.place``."""

    kind: Literal["open_order", "order_status", "execution", "commission", "error"]
    order: SimOrder
    fill: SimFill | None = None
    code: int = 0
    text: str = ""


@dataclass(frozen=True, slots=True)
class WhatIfResult:
    """Margin and commission impact of a what-if order (account currency)."""

    init_before: Decimal
    maint_before: Decimal
    equity_before: Decimal
    init_after: Decimal
    maint_after: Decimal
    equity_after: Decimal
    commission: Decimal
    currency: str


Listener = Callable[[OrderEvent], None]
AccountListener = Callable[[str, int], None]


def commission_for(inst: Instrument, qty: Decimal, price: Decimal) -> Decimal:
    """IB fixed pricing: US stocks $0.005/share, $1 min, 1% max; FX 0.2 bp, $2 min."""
    value = abs(qty * price)
    if inst.sec_type == "CASH":
        return max(Decimal(2), value * Decimal("0.00002")).quantize(CENT)
    fee = max(Decimal(1), abs(qty) * Decimal("0.005"))
    return min(fee, value * Decimal("0.01")).quantize(CENT)


class Engine:
    """All orders of all clients, matched against the deterministic market model."""

    def __init__(
        self,
        *,
        market: MarketModel,
        catalogue: Catalogue,
        accounts: dict[str, Account],
        seed: int,
        on_order: Listener,
        on_account: AccountListener,
    ) -> None:
        self.market = market
        self.catalogue = catalogue
        self.accounts = accounts
        self.orders: list[SimOrder] = []
        self._live: dict[tuple[int, int], SimOrder] = {}
        self._by_key: dict[tuple[int, int], SimOrder] = {}
        self._perm_seq = 0
        self._exec_seq = 0
        self._exec_prefix = f"{(seed * 2654435761) & 0xFFFFFFFF:08x}"
        self._on_order = on_order
        self._on_account = on_account
        #: Drill hook (``reject-next``): a forced (code, text) rejection for an order, or None.
        self.reject_hook: Callable[[SimOrder], tuple[int, str] | None] | None = None

    # -- helpers -----------------------------------------------------------------------------
    def now(self) -> datetime:
        """Simulated time."""
        return self.market.clock.now()

    def mark(self, inst: Instrument) -> Decimal:
        """Mid price used to value positions."""
        return self.market.mid_at(inst, self.now())

    def fx(self, currency: str) -> Decimal:
        """USD per unit of ``currency``."""
        return fx_rate(self.catalogue, self.market, currency)

    def prior_close(self, inst: Instrument) -> Decimal:
        """Previous session close (daily PnL reference)."""
        return self.market.quote(inst).close

    def roll_day(self) -> None:
        """Let every account start a new day when the New York trading date changes."""
        today = self.now().astimezone(ET).date()
        for acct in self.accounts.values():
            acct.roll_day(today, self.prior_close)

    def _emit(
        self,
        kind: Literal["open_order", "order_status", "execution", "commission", "error"],
        order: SimOrder,
        **kw: object,
    ) -> None:
        self._on_order(OrderEvent(kind, order, **kw))  # type: ignore[arg-type]

    # -- placing -----------------------------------------------------------------------------
    def place(self, client_id: int, f: OrderFields, default_account: str) -> None:
        """Handle placeOrder: validate, maybe modify, accept, and try to execute at once."""
        self.roll_day()
        key = (client_id, f.order_id)
        existing = self._by_key.get(key)
        if existing is not None and not f.what_if:
            self._modify(existing, f)
            return
        account = f.account or default_account
        matches = resolve(self.catalogue, f.contract)
        inst = matches[0] if len(matches) == 1 else None
        self._perm_seq += 1
        order = SimOrder(f, client_id, PERM_ID_BASE + self._perm_seq, account, inst, self.now())
        self.orders.append(order)
        if not f.what_if:
            self._by_key[key] = order
        problem = self._validate(order, matches)
        if problem is None and not f.what_if and self.reject_hook is not None:
            problem = self.reject_hook(order)
        if problem is not None:
            code, text = problem
            self._reject(order, code, text)
            return
        assert inst is not None
        if f.what_if:
            order.status = "PreSubmitted"
            self._emit("open_order", order)
            return
        margin_problem = self._margin_check(order)
        if margin_problem is not None:
            self._reject(order, 201, margin_problem)
            return
        order.status = "Submitted" if self._open(inst) else "PreSubmitted"
        self._live[key] = order
        self._emit("open_order", order)
        self._emit("order_status", order)
        self._try_execute(order, resting=False)
        if order.is_live and f.tif == "IOC":
            self._finish(order, "Cancelled")
            self._emit("order_status", order)

    def _validate(self, order: SimOrder, matches: list[Instrument]) -> tuple[int, str] | None:
        f = order.fields
        if not matches:
            return 200, "No security definition has been found for the request"
        if len(matches) > 1:
            return 200, f"The contract description specified for {f.contract.symbol} is ambiguous."
        if order.account not in self.accounts:
            return 321, f"Error validating request.-'bN' : cause - Invalid account {order.account}"
        if f.action not in ("BUY", "SELL"):
            return 321, f"Error validating request.-'bN' : cause - Invalid side {f.action!r}"
        if f.total_quantity <= 0:
            return 434, "The order size cannot be zero."
        strategy = ORDER_TYPES.get(f.order_type)
        if strategy is None:
            return (
                387,
                f"Unsupported order type {f.order_type} for this exchange and security type.",
            )
        if f.tif not in SUPPORTED_TIFS:
            return (
                201,
                f"Order rejected - reason:Time in force {f.tif or '(empty)'} is not supported.",
            )
        if f.contract.sec_type == "BAG" or f.condition_count or f.algo_strategy or f.parent_id:
            return (
                201,
                "Order rejected - reason:Combo, conditional, algo and child orders are not "
                "supported by the simulator.",
            )
        reason = strategy.validate(f)
        if reason is not None:
            return 321, f"Error validating request.-'bN' : cause - {reason}"
        inst = matches[0]
        if f.order_type == "LMT" and f.lmt_price is not None and f.lmt_price % inst.min_tick:
            return (
                110,
                "The price does not conform to the minimum price variation for this contract.",
            )
        return None

    def _reject(self, order: SimOrder, code: int, text: str) -> None:
        order.reject_code, order.reject_reason = code, text
        self._finish(order, "Inactive" if code == 201 else "Cancelled")
        self._live.pop((order.client_id, order.order_id), None)
        self._emit("error", order, code=code, text=text)

    def _finish(self, order: SimOrder, status: str) -> None:
        order.status = status
        order.completed_time = self.now()
        order.completed_status = status
        self._live.pop((order.client_id, order.order_id), None)

    def _modify(self, order: SimOrder, f: OrderFields) -> None:
        if not order.is_live:
            self._emit("error", order, code=103, text=f"Duplicate order id {f.order_id}")
            return
        strategy = ORDER_TYPES.get(f.order_type)
        if f.order_type != order.fields.order_type or strategy is None:
            self._emit(
                "error",
                order,
                code=329,
                text="Order modify failed. Cannot change to the new order type.",
            )
            return
        reason = strategy.validate(f)
        if reason is None and f.total_quantity < order.filled:
            reason = "The new quantity is below the filled quantity."
        if reason is not None:
            self._emit(
                "error", order, code=321, text=f"Error validating request.-'bN' : cause - {reason}"
            )
            return
        order.fields = f
        self._emit("open_order", order)
        self._emit("order_status", order)
        self._try_execute(order, resting=True)

    # -- margin --------------------------------------------------------------------------------
    def what_if(self, order: SimOrder) -> WhatIfResult:
        """Margin before/after and the commission of executing ``order`` now."""
        inst = order.instrument
        assert inst is not None
        acct = self.accounts[order.account]
        before = acct.snapshot(self.mark, self.fx)
        price = self._reference_price(order, inst)
        signed = order.fields.total_quantity * (1 if order.action == "BUY" else -1)
        holdings = acct.holdings()
        current = holdings.get(inst.con_id, (inst, ZERO))[1]
        holdings[inst.con_id] = (inst, current + signed)
        init_after, maint_after = acct.margin_for(holdings, self.mark, self.fx)
        commission = commission_for(inst, signed, price) * (
            self.fx(inst.currency) if inst.sec_type == "CASH" else 1
        )
        return WhatIfResult(
            init_before=before.init_margin,
            maint_before=before.maint_margin,
            equity_before=before.equity_with_loan,
            init_after=init_after,
            maint_after=maint_after,
            equity_after=before.equity_with_loan - commission,
            commission=commission.quantize(CENT),
            currency=acct.currency,
        )

    def _reference_price(self, order: SimOrder, inst: Instrument) -> Decimal:
        tick = self.market.quote(inst)
        touch = tick.ask if order.action == "BUY" else tick.bid
        limit = order.fields.lmt_price
        if order.fields.order_type == "LMT" and limit is not None:
            return min(limit, touch) if order.action == "BUY" else max(limit, touch)
        return touch

    def _margin_check(self, order: SimOrder) -> str | None:
        impact = self.what_if(order)
        if impact.init_after > impact.init_before and impact.init_after > impact.equity_after:
            return (
                "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE "
                f"DESIRED POSITION YOUR EQUITY WITH LOAN VALUE [{impact.equity_after:.2f} USD] "
                "MUST EXCEED "
                f"THE INITIAL MARGIN [{impact.init_after:.2f} USD] (insufficient buying power)"
            )
        return None

    # -- execution -----------------------------------------------------------------------------
    def _open(self, inst: Instrument) -> bool:
        return bool(self.market.is_open(inst, self.now()))

    def _try_execute(self, order: SimOrder, *, resting: bool) -> None:
        inst = order.instrument
        if inst is None or not order.is_live or not self._open(inst):
            return
        strategy = ORDER_TYPES[order.fields.order_type]
        tick = self.market.quote(inst)
        price = strategy.execution_price(order, tick, resting)
        if price is None:
            return
        if order.status == "PreSubmitted":
            order.status = "Submitted"
            self._emit("order_status", order)
        self._fill(order, inst, order.remaining, price)

    def _fill(self, order: SimOrder, inst: Instrument, qty: Decimal, price: Decimal) -> None:
        acct = self.accounts[order.account]
        signed = qty if order.action == "BUY" else -qty
        fx = self.fx(inst.currency)
        commission = commission_for(inst, qty, price)
        commission_base = (
            (commission * fx).quantize(CENT) if inst.sec_type == "CASH" else commission
        )
        realized = acct.apply_fill(inst, signed, price, commission_base, fx)
        total = order.filled + qty
        order.avg_fill_price = (order.avg_fill_price * order.filled + price * qty) / total
        order.filled = total
        order.last_fill_price = price
        self._exec_seq += 1
        exec_id = (
            f"{self._exec_prefix}.{0x65650000 + self._exec_seq:08x}.01.{len(order.fills) + 1:02d}"
        )
        fill = SimFill(
            exec_id=exec_id,
            order=order,
            time=self.now(),
            shares=qty,
            price=price,
            cum_qty=total,
            avg_price=order.avg_fill_price,
            commission=commission_base,
            commission_currency=acct.currency,
            realized_pnl=realized,
        )
        order.fills.append(fill)
        self._emit("execution", order, fill=fill)
        if order.remaining <= 0:
            self._finish(order, "Filled")
        self._emit("open_order", order)
        self._emit("order_status", order)
        self._emit("commission", order, fill=fill)
        self._on_account(order.account, inst.con_id)

    def evaluate(self) -> None:
        """Re-check every working order against the market at ``clock.now()``."""
        if not self._live:
            return
        self.roll_day()
        now = self.now()
        for order in sorted(self._live.values(), key=lambda o: o.perm_id):
            if order.fields.tif == "DAY" and now >= day_order_expiry(order):
                self._finish(order, "Cancelled")
                self._emit("order_status", order)
                continue
            self._try_execute(order, resting=True)

    # -- cancelling ------------------------------------------------------------------------------
    def cancel(self, client_id: int, order_id: int) -> bool:
        """cancelOrder: False if no such working order of this client."""
        order = self._live.get((client_id, order_id))
        if order is None:
            return False
        self._cancel(order)
        return True

    def lookup(self, client_id: int, order_id: int) -> SimOrder | None:
        """The (non-whatIf) order a client placed under ``order_id``."""
        return self._by_key.get((client_id, order_id))

    def global_cancel(self) -> None:
        """reqGlobalCancel: cancel every working order of every client."""
        for order in sorted(self._live.values(), key=lambda o: o.perm_id):
            self._cancel(order)

    def _cancel(self, order: SimOrder) -> None:
        self._finish(order, "Cancelled")
        self._emit("order_status", order)
        self._emit("error", order, code=202, text="Order Canceled - reason:")

    def live_orders(self) -> list[SimOrder]:
        """Working orders in placement order."""
        return sorted(self._live.values(), key=lambda o: o.perm_id)


#: When a DAY order's session ends (New York time): the stock close, or IDEALPRO's 17:00 roll.
DAY_CLOSE = {"STK": time(16, 0), "CASH": time(17, 0)}


def day_order_expiry(order: SimOrder) -> datetime:
    """The end of the session a DAY order belongs to, as IB expires it (not UTC midnight).

    An order sent after the close (or on a weekend) belongs to the next trading day.
    """
    close = DAY_CLOSE.get(order.fields.contract.sec_type, time(16, 0))
    created = order.created.astimezone(ET)
    day = created.date()
    if created.time() >= close or not is_trading_day(day):
        day = next_trading_day(day)
    return datetime.combine(day, close, tzinfo=ET)
