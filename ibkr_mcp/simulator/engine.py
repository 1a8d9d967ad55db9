"""Order engine: accepting, modifying, triggering and matching orders; fills into accounts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from ibkr_mcp.simulator._market_calendar import ET
from ibkr_mcp.simulator.accounts import ZERO, Account
from ibkr_mcp.simulator.commissions import fill_commission, order_commission
from ibkr_mcp.simulator.contracts import fx_rate, resolve
from ibkr_mcp.simulator.liquidity import Liquidity
from ibkr_mcp.simulator.order_links import Links
from ibkr_mcp.simulator.order_model import (
    DONE,
    EventKind,
    OrderEvent,
    SimFill,
    SimOrder,
    WhatIfResult,
)
from ibkr_mcp.simulator.order_rules import check_modify, check_order
from ibkr_mcp.simulator.order_tif import close_auction, expiry, in_regular_hours, open_auction
from ibkr_mcp.simulator.order_types import ORDER_TYPES, fires, working_limit

if TYPE_CHECKING:
    from ibkr_mcp.simulator.catalogue import Catalogue, Instrument
    from ibkr_mcp.simulator.incoming_order import OrderFields
    from ibkr_mcp.simulator.market import MarketModel

__all__ = ["DONE", "Engine", "OrderEvent", "SimFill", "SimOrder", "WhatIfResult"]

#: permIds are large unique increasing integers in IB; derived from a counter here.
PERM_ID_BASE = 1_100_000_000
#: Each run's perm ids start at the base plus its start time in ms modulo this (below 2**31).
PERM_ID_SPAN = 900_000_000
CENT = Decimal("0.01")
#: IB's warning when outsideRth cannot apply (market orders wait for regular hours).
OUTSIDE_RTH_IGNORED = (
    2109,
    "Order Event Warning:Attribute 'Outside Regular Trading Hours' is ignored based on the order "
    "type and destination. PlaceOrder is now being processed.",
)
#: Text of the paper-account quirk (``reject_mkt_remainder``).
MKT_REMAINDER_TEXT = (
    "Order Canceled - reason:The remainder of this partially filled market order was cancelled "
    "(paper trading)"
)

Listener = Callable[[OrderEvent], None]
AccountListener = Callable[[str, int], None]


class Engine:
    """All orders of all clients, matched against the deterministic market model.

    Args:
        reject_mkt_remainder: Reproduce IB paper's quirk of cancelling what is left of a
            partially filled market order (off by default).
    """

    def __init__(
        self,
        *,
        market: MarketModel,
        catalogue: Catalogue,
        accounts: dict[str, Account],
        seed: int,
        on_order: Listener,
        on_account: AccountListener,
        reject_mkt_remainder: bool = False,
    ) -> None:
        self.market = market
        self.catalogue = catalogue
        self.accounts = accounts
        self.orders: list[SimOrder] = []
        self._live: dict[tuple[int, int], SimOrder] = {}
        self._by_key: dict[tuple[int, int], SimOrder] = {}
        self._perm_seq = 0
        self._exec_seq = 0
        # IB never reuses an execution or perm id; a restarted simulator (no state file) must
        # not either, or an audit trail kept across runs takes today's fill for an old one
        # and drops it. The run's ids come from the seed and the clock at start: the same
        # seed on the same fixed clock still gives byte-identical sessions.
        started_ms = int(market.clock.now().timestamp() * 1000)
        run = (seed * 2654435761 + started_ms * 40503) & 0xFFFFFFFF
        self._exec_prefix = f"{run:08x}"
        self._perm_base = PERM_ID_BASE + started_ms % PERM_ID_SPAN
        self._on_order = on_order
        self._on_account = on_account
        self.reject_mkt_remainder = reject_mkt_remainder
        self.liquidity = Liquidity()
        self.links = Links()
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

    def _emit(self, kind: EventKind, order: SimOrder, **kw: object) -> None:
        self._on_order(OrderEvent(kind, order, **kw))  # type: ignore[arg-type]

    def _announce(self, order: SimOrder) -> None:
        self._emit("open_order", order)
        self._emit("order_status", order)

    # -- placing -----------------------------------------------------------------------------
    def place(self, client_id: int, f: OrderFields, default_account: str) -> None:
        """Handle placeOrder: validate, maybe modify, accept, and try to execute at once.

        IB's sequence for an accepted order: OPEN_ORDER and ORDER_STATUS (PreSubmitted while it
        waits for a trigger, a parent or the session; Submitted when working), then per fill
        EXECUTION_DATA, OPEN_ORDER, ORDER_STATUS and COMMISSION_REPORT. A ``transmit=False``
        order stays silent until a later order of its chain transmits.
        """
        self.roll_day()
        key = (client_id, f.order_id)
        existing = self._by_key.get(key)
        if existing is not None and not f.what_if:
            self._modify(existing, f)
            return
        account = f.account or default_account
        matches = resolve(self.catalogue, f.contract, self.market)
        inst = matches[0] if len(matches) == 1 else None
        self._perm_seq += 1
        order = SimOrder(f, client_id, self._perm_base + self._perm_seq, account, inst, self.now())
        self.orders.append(order)
        if not f.what_if:
            self._by_key[key] = order
        parent = self._by_key.get((client_id, f.parent_id)) if f.parent_id else None
        problem = check_order(order, matches, self.accounts, parent, self.now())
        if problem is None and not f.what_if and self.reject_hook is not None:
            problem = self.reject_hook(order)
        if problem is not None:
            self._reject(order, *problem)
            return
        assert inst is not None
        if f.what_if:
            order.status = "PreSubmitted"
            self._emit("open_order", order)
            return
        if parent is None:
            margin_problem = self._margin_check(order)
            if margin_problem is not None:
                self._reject(order, 201, margin_problem)
                return
        else:
            order.fields = self.links.attach(order, parent)
            order.held = parent.status != "Filled"
        if f.outside_rth and f.order_type == "MKT" and self.market.trading_hours:
            self._emit("error", order, code=OUTSIDE_RTH_IGNORED[0], text=OUTSIDE_RTH_IGNORED[1])
        if not f.transmit:
            order.transmitted = False
            self.links.hold(order)
            return
        self._transmit(order)

    def _transmit(self, order: SimOrder) -> None:
        """Send ``order`` live, with the held orders of its chain first (IB's transmit).

        IB accepts a transmitted chain as one unit: every order of it is acknowledged before
        any of it works, so a parent that fills at once already finds its children live and
        activates them. Working each order as it was accepted let a marketable parent fill
        before its children existed at the exchange; they then stayed held for good.
        """
        chain = [q for q in self.links.release(order) if not q.is_done] + [order]
        for queued in chain:
            queued.transmitted = True
            self._accept(queued)
        # Children of a parent that has not filled wait for _after_fill to activate them.
        for queued in [q for q in chain if not q.held]:
            self._work(queued, arriving=True)

    def _accept(self, order: SimOrder) -> None:
        """Register ``order`` as live and announce it (it works once its chain is accepted)."""
        inst = order.instrument
        assert inst is not None
        if order.fields.parent_id:
            # Held is decided now, not at placement: a child whose parent filled while the
            # child waited untransmitted is active at once, as at IB.
            parent = self._by_key.get((order.client_id, order.fields.parent_id))
            order.held = parent is not None and parent.status != "Filled"
        kind = ORDER_TYPES[order.fields.order_type]
        waiting = order.held or kind.conditional or not self._tradable(order, inst)
        order.status = "PreSubmitted" if waiting else "Submitted"
        self._live[(order.client_id, order.order_id)] = order
        self._announce(order)

    def _reject(self, order: SimOrder, code: int, text: str) -> None:
        order.reject_code, order.reject_reason = code, text
        self._finish(order, "Inactive" if code == 201 else "Cancelled")
        self._emit("error", order, code=code, text=text)

    def _finish(self, order: SimOrder, status: str) -> None:
        order.status = status
        order.completed_time = self.now()
        order.completed_status = status
        self._live.pop((order.client_id, order.order_id), None)

    def _modify(self, order: SimOrder, f: OrderFields) -> None:
        problem = check_modify(order, f, self.now())
        if problem is not None:
            self._emit("error", order, code=problem[0], text=problem[1])
            return
        # A modification keeps the order's parent and OCA links, as IB's do.
        order.fields = replace(
            f,
            parent_id=order.fields.parent_id,
            oca_group=f.oca_group or order.fields.oca_group,
            oca_type=f.oca_type or order.fields.oca_type,
            transmit=True,
        )
        if not order.transmitted:
            if f.transmit:  # the modification transmits what was held
                self.links.drop(order)
                self._transmit(order)
            return
        if order.fields.trail_stop_price is not None and not order.triggered:
            order.trail_stop = None  # restart the trail from the new parameters
        self._announce(order)
        # A modification is a new arrival at the exchange: if it is marketable now it takes
        # the touch, like a new order would.
        self._work(order, arriving=True)

    # -- margin --------------------------------------------------------------------------------
    def what_if(self, order: SimOrder) -> WhatIfResult:
        """Margin before/after and the commission of executing ``order`` now."""
        inst = order.instrument
        assert inst is not None
        acct = self.accounts[order.account]
        before = acct.snapshot(self.mark, self.fx)
        price = self._reference_price(order, inst)
        signed = order.fields.total_quantity * (1 if order.is_buy else -1)
        holdings = acct.holdings()
        current = holdings.get(inst.con_id, (inst, ZERO))[1]
        holdings[inst.con_id] = (inst, current + signed)
        init_after, maint_after = acct.margin_for(holdings, self.mark, self.fx)
        commission = order_commission(inst, signed, signed * price) * (
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
        touch = tick.ask if order.is_buy else tick.bid
        limit = order.fields.lmt_price
        if limit is not None and ORDER_TYPES[order.fields.order_type].limit == "lmt":
            return min(limit, touch) if order.is_buy else max(limit, touch)
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
    def _tradable(self, order: SimOrder, inst: Instrument) -> bool:
        """Open now, and in regular hours unless the order may trade outside them."""
        now = self.now()
        if not self.market.is_open(inst, now):
            return False
        if not self.market.trading_hours or in_regular_hours(inst.sec_type, now):
            return True
        # IB ignores outsideRth for market orders (warning 2109): they wait for the open.
        return order.fields.outside_rth and order.fields.order_type != "MKT"

    def _work(self, order: SimOrder, *, arriving: bool) -> None:
        """One matching attempt: auctions, triggers, then the touch with its displayed size."""
        inst = order.instrument
        if inst is None or not order.is_live or order.held or not order.transmitted:
            return
        kind = ORDER_TYPES[order.fields.order_type]
        if kind.at_close or order.fields.tif == "OPG":
            self._auction(order, inst)
            return
        if not self._tradable(order, inst):
            return
        tick = self.market.quote(inst)
        fresh = arriving
        if kind.conditional and not order.triggered:
            if not fires(kind, order, inst, tick):
                return
            order.triggered = fresh = True
        limit = working_limit(kind, order)
        touch = tick.ask if order.is_buy else tick.bid
        marketable = touch > 0 and (
            limit is None or (touch <= limit if order.is_buy else touch >= limit)
        )
        if order.status == "PreSubmitted":
            order.status = "Submitted"
            self._emit("order_status", order)
        tif = order.fields.tif
        if marketable:
            available = self.liquidity.available(inst, order.is_buy, tick)
            if tif == "FOK" and available < order.remaining:
                self._cancel(order, notify=False)
                return
            qty = min(order.remaining, available)
            if qty > 0:
                # Arriving (or just triggered) marketable orders take the touch; resting
                # limits fill at their limit when the market comes through them.
                price = touch if limit is None or fresh else limit
                self.liquidity.take(inst, order.is_buy, tick, qty)
                self._fill(order, inst, qty, price)
        if not order.is_live:
            return
        if fresh and tif in ("IOC", "FOK"):
            self._cancel(order, notify=False)
        elif self.reject_mkt_remainder and order.filled and limit is None:
            self._cancel(order, notify=True, text=MKT_REMAINDER_TEXT)

    def _auction(self, order: SimOrder, inst: Instrument) -> None:
        """MOC/LOC at the close, OPG at the open: all or nothing at the auction price."""
        kind = ORDER_TYPES[order.fields.order_type]
        when = close_auction(order) if kind.at_close else open_auction(order)
        if self.now() < when:
            return
        price = self.market.quote_at(inst, when).last
        limit = order.fields.lmt_price if kind.limit == "lmt" else None
        crosses = limit is None or (price <= limit if order.is_buy else price >= limit)
        if crosses and price > 0:
            self._fill(order, inst, order.remaining, price)
        else:
            self._cancel(order, notify=False)

    def _fill(self, order: SimOrder, inst: Instrument, qty: Decimal, price: Decimal) -> None:
        acct = self.accounts[order.account]
        signed = qty if order.is_buy else -qty
        fx = self.fx(inst.currency)
        commission = fill_commission(inst, order.filled, order.fill_value, qty, price)
        commission_base = (
            (commission * fx).quantize(CENT) if inst.sec_type == "CASH" else commission
        )
        realized = acct.apply_fill(inst, signed, price, commission_base, fx)
        total = order.filled + qty
        order.fill_value += qty * price
        order.avg_fill_price = order.fill_value / total
        order.filled = total
        order.last_fill_price = price
        order.commission_paid += commission_base
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
        self._announce(order)
        self._emit("commission", order, fill=fill)
        self._on_account(order.account, inst.con_id)
        self._after_fill(order, qty)

    def _after_fill(self, order: SimOrder, qty: Decimal) -> None:
        """OCA siblings react to the fill; a filled parent activates its children."""
        for sibling, new_qty in self.links.oca_effects(order, qty, self._live.values()):
            if new_qty is None or new_qty <= sibling.filled:
                self._cancel(sibling, notify=False)
            else:
                sibling.fields = replace(sibling.fields, total_quantity=new_qty)
                self._announce(sibling)
        if order.status == "Filled":
            for child in self.links.children(order, self._live.values()):
                child.held = False
                self._work(child, arriving=True)
                if child.is_live and child.status == "PreSubmitted":
                    # An untriggered stop child stays PreSubmitted while it works: IB simulates
                    # stops on US venues and reports a simulated order that is "yet to be
                    # elected" as PreSubmitted (OrderStatus reference), as a lone STP is here.
                    kind = ORDER_TYPES[child.fields.order_type]
                    if not kind.conditional:
                        child.status = "Submitted"
                        self._emit("order_status", child)

    def evaluate(self) -> None:
        """Re-check every working order against the market at ``clock.now()``."""
        self.roll_day()  # daily PnL restarts at the New York date change, orders or not
        if not self._live:
            return
        now = self.now()
        for order in sorted(self._live.values(), key=lambda o: o.perm_id):
            if not order.is_live:
                continue  # cancelled by an earlier order's fill (OCA, parent) in this pass
            kind = ORDER_TYPES[order.fields.order_type]
            auction = kind.at_close or order.fields.tif == "OPG"
            ends = expiry(order)
            if not auction and ends is not None and now >= ends:
                self._cancel(order, notify=False)
                continue
            self._work(order, arriving=False)

    # -- cancelling ------------------------------------------------------------------------------
    def cancel(self, client_id: int, order_id: int) -> bool:
        """cancelOrder: False if no such working order of this client."""
        order = self._live.get((client_id, order_id))
        if order is None:
            pending = self.links.pending(client_id, order_id)
            if pending is None:
                return False
            self.links.drop(pending)
            self._finish(pending, "Cancelled")
            return True
        self._cancel(order, notify=True)
        return True

    def lookup(self, client_id: int, order_id: int) -> SimOrder | None:
        """The (non-whatIf) order a client placed under ``order_id``."""
        return self._by_key.get((client_id, order_id))

    def global_cancel(self) -> None:
        """reqGlobalCancel: cancel every working order of every client."""
        for order in sorted(self._live.values(), key=lambda o: o.perm_id):
            if order.is_live:
                self._cancel(order, notify=True)

    def _cancel(self, order: SimOrder, *, notify: bool, text: str = "") -> None:
        """Cancel a live order (and the children waiting on it); 202 when the client asked."""
        self._finish(order, "Cancelled")
        self._emit("order_status", order)
        if notify:
            self._emit("error", order, code=202, text=text or "Order Canceled - reason:")
        for child in self.links.children(order, list(self._live.values())):
            if child.held:
                self._cancel(child, notify=notify)

    def live_orders(self) -> list[SimOrder]:
        """Working orders in placement order."""
        return sorted(self._live.values(), key=lambda o: o.perm_id)
