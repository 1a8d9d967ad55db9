"""One API client connection: its subscriptions, request handlers and outgoing buffer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from ibkr_mcp.simulator import outgoing as out
from ibkr_mcp.simulator import outgoing_orders as oo
from ibkr_mcp.simulator.accounts import ZERO, summary_values, update_values
from ibkr_mcp.simulator.incoming import (
    parse_cancel_order,
    parse_contract_details,
    parse_executions,
    parse_pnl_single,
)
from ibkr_mcp.simulator.incoming_order import parse_place_order
from ibkr_mcp.simulator.instruments_md import parse_sec_def_opt_params, sec_def_opt_params
from ibkr_mcp.simulator.marketdata import MarketDataMixin
from ibkr_mcp.simulator.msgids import Req, msg_name, req_name
from ibkr_mcp.simulator.wire import Field, FieldReader, MalformedMessageError, encode

if TYPE_CHECKING:
    from ibkr_mcp.simulator.engine import OrderEvent, SimFill
    from ibkr_mcp.simulator.server import Simulator

#: IB's code when the server cannot serve a request at all ("TWS is out of date").
UNSUPPORTED_CODE = 503
#: IB's code for a request the server failed to read.
MALFORMED_CODE = 320
LEDGER_TAGS = frozenset(
    {"CashBalance", "TotalCashBalance", "NetLiquidationByCurrency", "UnrealizedPnL",
     "RealizedPnL", "StockMarketValue", "ExchangeRate", "AccruedCash", "Currency"}
)  # fmt: skip


@dataclass
class Subscriptions:
    """Everything a client asked to keep receiving."""

    account_updates: str | None = None
    positions: bool = False
    pnl: dict[int, str] = field(default_factory=dict)
    pnl_single: dict[int, tuple[str, int]] = field(default_factory=dict)
    last_pnl: dict[int, tuple[Decimal, ...]] = field(default_factory=dict)
    account_summary: dict[int, set[str]] = field(default_factory=dict)
    account_multi: set[int] = field(default_factory=set)


class Session(MarketDataMixin):
    """Request handling for one connected client (all handlers are synchronous)."""

    def __init__(
        self, sim: Simulator, client_id: int, server_version: int, write: Callable[[bytes], None]
    ) -> None:
        super().__init__()
        self.sim = sim
        self.client_id = client_id
        self.server_version = server_version
        self._write = write
        self._pending: list[bytes] = []
        self.subs = Subscriptions()
        self.closed = False

    # -- output ------------------------------------------------------------------------------
    def send(self, fields: list[Field], req_id: int | None = None) -> None:
        """Encode and queue one message (logged in the simulator's sent log)."""
        if self.closed:
            return
        msg_id = int(fields[0])  # type: ignore[arg-type]
        self._pending.append(encode(fields))
        self.sim.log_sent(self.client_id, msg_id, msg_name(msg_id), req_id)

    def error(self, req_id: int, code: int, text: str) -> None:
        """Queue an ERR_MSG."""
        self.send(out.error(req_id, code, text, self.server_version), req_id)

    def flush(self) -> None:
        """Write every queued message in one go."""
        if self._pending and not self.closed:
            data = b"".join(self._pending)
            self._pending.clear()
            self._write(data)
        else:
            self._pending.clear()

    # -- dispatch ------------------------------------------------------------------------------
    def handle(self, msg_id: int, fields: list[str], req_id: int | None) -> None:
        """Serve one request; unknown ids and malformed fields become IB errors, never crashes."""
        handler = self._handlers().get(msg_id)
        if handler is None:
            name = req_name(msg_id)
            self.error(
                -1 if req_id is None else req_id,
                UNSUPPORTED_CODE,
                "The TWS is out of date and must be upgraded. "
                f"(IBKR-MCP simulator: {name} is not supported)",
            )
            return
        try:
            handler(FieldReader(fields))
        except MalformedMessageError as exc:
            self.error(-1 if req_id is None else req_id, MALFORMED_CODE,
                       f"Server error when reading an API client request. {exc}")  # fmt: skip

    def _handlers(self) -> dict[int, Callable[[FieldReader], None]]:
        return {
            Req.REQ_MKT_DATA: self.on_mkt_data,
            Req.CANCEL_MKT_DATA: self.on_cancel_mkt_data,
            Req.PLACE_ORDER: self.on_place_order,
            Req.CANCEL_ORDER: self.on_cancel_order,
            Req.REQ_OPEN_ORDERS: lambda r: self.on_open_orders(all_clients=False),
            Req.REQ_ALL_OPEN_ORDERS: lambda r: self.on_open_orders(all_clients=True),
            Req.REQ_AUTO_OPEN_ORDERS: lambda r: None,  # a setting: TWS sends nothing back
            Req.REQ_ACCT_DATA: self.on_account_updates,
            Req.REQ_EXECUTIONS: self.on_executions,
            Req.REQ_IDS: lambda r: self.send(
                out.next_valid_id(self.sim.next_order_id(self.client_id))
            ),
            Req.REQ_CONTRACT_DATA: self.on_contract_details,
            Req.REQ_MANAGED_ACCTS: lambda r: self.send(out.managed_accounts(self.sim.accounts)),
            Req.SET_SERVER_LOGLEVEL: lambda r: None,
            Req.REQ_HISTORICAL_DATA: self.on_historical,
            Req.CANCEL_HISTORICAL_DATA: lambda r: None,
            Req.REQ_CURRENT_TIME: lambda r: self.send(out.current_time(self.sim.clock.now())),
            Req.REQ_GLOBAL_CANCEL: lambda r: self.sim.engine.global_cancel(),
            Req.REQ_MARKET_DATA_TYPE: self.on_market_data_type,
            Req.REQ_POSITIONS: self.on_positions,
            Req.CANCEL_POSITIONS: self.on_cancel_positions,
            Req.REQ_ACCOUNT_SUMMARY: self.on_account_summary,
            Req.CANCEL_ACCOUNT_SUMMARY: lambda r: self._drop_summary(_req(r)),
            Req.REQ_ACCOUNT_UPDATES_MULTI: self.on_account_multi,
            Req.CANCEL_ACCOUNT_UPDATES_MULTI: lambda r: self.subs.account_multi.discard(_req(r)),
            Req.REQ_MATCHING_SYMBOLS: self.on_matching_symbols,
            Req.REQ_HEAD_TIMESTAMP: self.on_head_timestamp,
            Req.CANCEL_HEAD_TIMESTAMP: lambda r: None,
            Req.REQ_PNL: self.on_pnl,
            Req.CANCEL_PNL: lambda r: self._drop_pnl(r.int()),
            Req.REQ_PNL_SINGLE: self.on_pnl_single,
            Req.CANCEL_PNL_SINGLE: lambda r: self._drop_pnl(r.int()),
            Req.REQ_COMPLETED_ORDERS: self.on_completed_orders,
            Req.REQ_SEC_DEF_OPT_PARAMS: self.on_sec_def_opt_params,
        }

    # -- contract details ---------------------------------------------------------------------
    def on_contract_details(self, r: FieldReader) -> None:
        """reqContractDetails: every match, then the end marker; nothing matches: error 200."""
        req = parse_contract_details(r, self.server_version)
        matches = self.sim.resolve(req.contract)
        if not matches:
            self.error(req.req_id, 200, "No security definition has been found for the request")
            return
        now = self.sim.clock.now()
        # A CONTFUT request is answered with the front month, reported as CONTFUT.
        as_type = "CONTFUT" if req.contract.sec_type == "CONTFUT" else None
        for inst in matches:
            self.send(
                out.contract_data(req.req_id, inst, now, self.server_version, as_type), req.req_id
            )
        self.send(out.contract_data_end(req.req_id), req.req_id)

    def on_sec_def_opt_params(self, r: FieldReader) -> None:
        """reqSecDefOptParams: an underlying's option chain per exchange and trading class."""
        req = parse_sec_def_opt_params(r)
        for fields in sec_def_opt_params(self.sim.market, req):
            self.send(fields, req.req_id)

    def on_matching_symbols(self, r: FieldReader) -> None:
        """ReqMatchingSymbols."""
        req_id = r.int()
        pattern = r.str()
        found = self.sim.catalogue.search(pattern, 16)
        self.send(out.symbol_samples(req_id, found, self.server_version), req_id)

    # -- orders -------------------------------------------------------------------------------
    def on_place_order(self, r: FieldReader) -> None:
        """placeOrder: parse the full walk and hand it to the engine."""
        fields = parse_place_order(r, self.server_version)
        self.sim.note_order_id(self.client_id, fields.order_id)
        self.sim.engine.place(self.client_id, fields, self.sim.accounts[0])

    def on_cancel_order(self, r: FieldReader) -> None:
        """cancelOrder: Cancelled status plus error 202, or 10147 if there is nothing to cancel."""
        req = parse_cancel_order(r, self.server_version)
        if self.sim.engine.cancel(self.client_id, req.order_id):
            return
        known = self.sim.engine.lookup(self.client_id, req.order_id)
        if known is None:
            self.error(
                req.order_id,
                10147,
                f"OrderId {req.order_id} that needs to be cancelled is not found.",
            )
        else:
            self.error(
                req.order_id,
                161,
                "Cancel attempted when order is not in a cancellable state.  "
                f"Order permId ={known.perm_id}",
            )

    def on_order_event(self, ev: OrderEvent) -> None:
        """Translate one engine event into IB's message."""
        order = ev.order
        if ev.kind == "open_order":
            what_if = self.sim.engine.what_if(order) if order.what_if else None
            self.send(oo.open_order(order, self.server_version, what_if), order.order_id)
        elif ev.kind == "order_status":
            self.send(oo.order_status(order), order.order_id)
        elif ev.kind == "execution":
            assert ev.fill is not None
            self.send(oo.execution(-1, ev.fill, self.server_version), -1)
        elif ev.kind == "commission":
            assert ev.fill is not None
            self.send(oo.commission_report(ev.fill))
        else:
            self.error(order.order_id, ev.code, ev.text)

    def on_open_orders(self, *, all_clients: bool) -> None:
        """ReqOpenOrders / reqAllOpenOrders: OPEN_ORDER + ORDER_STATUS each, then the end."""
        for order in self.sim.engine.live_orders():
            if all_clients or order.client_id == self.client_id:
                self.send(oo.open_order(order, self.server_version), order.order_id)
                self.send(oo.order_status(order), order.order_id)
        self.send(oo.open_order_end())

    def on_completed_orders(self, r: FieldReader) -> None:
        """reqCompletedOrders: every finished order (not what-ifs), oldest first."""
        r.bool()  # apiOnly: every simulated order came through the API
        done = [o for o in self.sim.engine.orders if o.completed_time is not None and not o.what_if]
        done.sort(key=lambda o: (o.completed_time, o.perm_id))
        for order in done:
            self.send(oo.completed_order(order, self.server_version))
        self.send(oo.completed_orders_end())

    def on_executions(self, r: FieldReader) -> None:
        """ReqExecutions honouring the filter; each fill followed by its commission report."""
        flt = parse_executions(r)
        fills: list[SimFill] = [f for o in self.sim.engine.orders for f in o.fills]
        fills.sort(key=lambda f: f.exec_id)
        for fill in fills:
            order = fill.order
            inst = order.instrument
            assert inst is not None
            if flt.client_id and order.client_id != flt.client_id:
                continue
            if flt.account and order.account != flt.account:
                continue
            if flt.symbol and inst.symbol != flt.symbol.upper():
                continue
            if flt.sec_type and inst.sec_type != flt.sec_type.upper():
                continue
            if flt.side and flt.side.upper() not in (order.action, fill.side):
                continue
            if flt.time and out.ib_time(fill.time)[:17] < flt.time.replace("-", " ")[:17]:
                continue
            self.send(oo.execution(flt.req_id, fill, self.server_version), flt.req_id)
            self.send(oo.commission_report(fill))
        self.send(oo.execution_end(flt.req_id), flt.req_id)

    # -- accounts -----------------------------------------------------------------------------
    def _account(self, code: str) -> str | None:
        if not code:
            return self.sim.accounts[0] if len(self.sim.accounts) == 1 else None
        return code if code in self.sim.accounts else None

    def on_account_updates(self, r: FieldReader) -> None:
        """reqAccountUpdates: values, portfolio, update time, download end; then live updates."""
        r.int()
        subscribe = r.bool()
        account = self._account(r.str())
        if not subscribe:
            self.subs.account_updates = None
            return
        if account is None:
            self.error(-1, 321, "Error validating request.-'bB' : cause - Invalid account code")
            return
        self.subs.account_updates = account
        self.push_account(account, None)
        self.send(out.account_download_end(account))

    def push_account(self, account: str, con_id: int | None) -> None:
        """Send account values and portfolio rows (all, or one conId) to this subscriber."""
        acct = self.sim.engine.accounts[account]
        snap = acct.snapshot(self.sim.engine.mark, self.sim.engine.fx)
        for key, value, ccy in update_values(snap):
            self.send(out.account_value(key, value, ccy, account))
        for cid, pos in acct.positions.items():
            if con_id is not None and cid != con_id:
                continue
            mark = self.sim.engine.mark(pos.instrument) if pos.quantity else ZERO
            self.send(out.portfolio_value(acct.value(pos, mark), account))
        self.send(out.account_update_time(self.sim.clock.now()))

    def on_account_multi(self, r: FieldReader) -> None:
        """reqAccountUpdatesMulti: one pass of values then the end marker."""
        r.int()
        req_id = r.int()
        code = r.str()
        model = r.str()
        ledger_only = r.bool()
        accounts = self.sim.accounts if code in ("", "All") else [code]
        for account in accounts:
            if account not in self.sim.engine.accounts:
                self.error(
                    req_id,
                    321,
                    f"Error validating request.-'bM' : cause - Invalid account {account}",
                )
                return
        for account in accounts:
            snap = self.sim.engine.accounts[account].snapshot(
                self.sim.engine.mark, self.sim.engine.fx
            )
            for key, value, ccy in update_values(snap):
                if ledger_only and key not in LEDGER_TAGS and key != "NetLiquidation":
                    continue
                self.send(out.account_update_multi(req_id, account, model, key, value, ccy), req_id)
        self.subs.account_multi.add(req_id)
        self.send(out.account_update_multi_end(req_id), req_id)

    def on_account_summary(self, r: FieldReader) -> None:
        """reqAccountSummary: requested tags (or $LEDGER groups) for every account, then end."""
        r.int()
        req_id = r.int()
        r.str()  # group: "All" is the only group a non-FA account has
        tags = {t.strip() for t in r.str().split(",") if t.strip()}
        self._send_summary(req_id, tags, self.sim.accounts)
        self.subs.account_summary[req_id] = tags
        self.send(out.account_summary_end(req_id), req_id)

    def _send_summary(self, req_id: int, tags: set[str], accounts: Sequence[str]) -> None:
        ledger = any(t.startswith("$LEDGER") for t in tags)
        engine = self.sim.engine
        for account in accounts:
            snap = engine.accounts[account].snapshot(engine.mark, engine.fx)
            for tag, value, ccy in summary_values(snap):
                if tag in tags:
                    self.send(out.account_summary(req_id, account, tag, value, ccy), req_id)
            if ledger:
                for key, value, ccy in update_values(snap):
                    if key in LEDGER_TAGS:
                        self.send(out.account_summary(req_id, account, key, value, ccy), req_id)

    def on_positions(self, r: FieldReader) -> None:
        """reqPositions: every open position of every account, the end marker, then updates."""
        for account in self.sim.accounts:
            for pos in self.sim.engine.accounts[account].positions.values():
                if pos.quantity:
                    self.send(out.position(account, pos.instrument, pos.quantity, pos.avg_cost))
        self.send(out.position_end())
        self.subs.positions = True

    def on_cancel_positions(self, r: FieldReader) -> None:
        """CancelPositions."""
        self.subs.positions = False

    def on_account_changed(self, account: str, con_id: int) -> None:
        """A fill changed ``account``: push position and portfolio updates to subscribers."""
        acct = self.sim.engine.accounts[account]
        pos = acct.positions.get(con_id)
        if self.subs.positions and pos is not None:
            self.send(out.position(account, pos.instrument, pos.quantity, pos.avg_cost))
        if self.subs.account_updates == account:
            self.push_account(account, con_id)
        for req_id, tags in self.subs.account_summary.items():
            self._send_summary(req_id, tags, [account])

    def on_pnl(self, r: FieldReader) -> None:
        """reqPnL: the account's daily/unrealized/realized PnL now and whenever it changes."""
        req_id = r.int()
        account = r.str()
        r.str()  # modelCode
        if account not in self.sim.engine.accounts:
            self.error(
                req_id, 321, f"Error validating request.-'bR' : cause - Invalid account {account}"
            )
            return
        self.subs.pnl[req_id] = account
        self.refresh_pnl(force_id=req_id)

    def on_pnl_single(self, r: FieldReader) -> None:
        """reqPnLSingle: one position's PnL now and whenever it changes."""
        req = parse_pnl_single(r)
        if req.account not in self.sim.engine.accounts:
            self.error(
                req.req_id,
                321,
                f"Error validating request.-'bS' : cause - Invalid account {req.account}",
            )
            return
        self.subs.pnl_single[req.req_id] = (req.account, req.con_id)
        self.refresh_pnl(force_id=req.req_id)

    def _drop_summary(self, req_id: int) -> None:
        self.subs.account_summary.pop(req_id, None)

    def _drop_pnl(self, req_id: int) -> None:
        self.subs.pnl.pop(req_id, None)
        self.subs.pnl_single.pop(req_id, None)
        self.subs.last_pnl.pop(req_id, None)

    def refresh_pnl(self, force_id: int | None = None) -> None:
        """Send PNL/PNL_SINGLE for subscriptions whose values changed."""
        engine = self.sim.engine
        for req_id, account in self.subs.pnl.items():
            snap = engine.accounts[account].snapshot(engine.mark, engine.fx)
            values = (snap.daily_pnl, snap.unrealized_pnl, snap.realized_pnl)
            if force_id == req_id or self.subs.last_pnl.get(req_id) != values:
                self.subs.last_pnl[req_id] = values
                self.send(out.pnl(req_id, *values), req_id)
        for req_id, (account, con_id) in self.subs.pnl_single.items():
            acct = engine.accounts[account]
            pos = acct.positions.get(con_id)
            if pos is None:
                if force_id == req_id:
                    self.send(out.pnl_single_unknown(req_id), req_id)
                continue
            fx = engine.fx(pos.instrument.currency)
            val = acct.value(pos, engine.mark(pos.instrument) if pos.quantity else ZERO)
            single = (
                pos.quantity,
                val.daily * fx,
                val.unrealized * fx,
                pos.realized * fx,
                val.market_value * fx,
            )
            if force_id == req_id or self.subs.last_pnl.get(req_id) != single:
                self.subs.last_pnl[req_id] = single
                self.send(out.pnl_single(req_id, *single), req_id)


def _req(r: FieldReader) -> int:
    r.int()  # version
    return r.int()
