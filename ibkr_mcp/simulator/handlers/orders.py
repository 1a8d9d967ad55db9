"""Order handler: placeOrder, cancelOrder, open/completed orders, executions, order events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ibkr_mcp.simulator import outgoing as out
from ibkr_mcp.simulator import outgoing_orders as oo
from ibkr_mcp.simulator.host import Handler
from ibkr_mcp.simulator.incoming import parse_cancel_order, parse_executions
from ibkr_mcp.simulator.incoming_order import parse_place_order
from ibkr_mcp.simulator.wire import FieldReader

if TYPE_CHECKING:
    from ibkr_mcp.simulator.engine import OrderEvent, SimFill


class OrdersHandler(Handler):
    """Order requests of one session and the order events routed to it."""

    def on_place_order(self, r: FieldReader) -> None:
        """placeOrder: parse the full walk and hand it to the engine."""
        fields = parse_place_order(r, self.out.server_version)
        self.host.note_order_id(self.out.client_id, fields.order_id)
        self.host.engine.place(self.out.client_id, fields, self.host.accounts[0])

    def on_cancel_order(self, r: FieldReader) -> None:
        """cancelOrder: Cancelled status plus error 202, or 10147 if there is nothing to cancel."""
        req = parse_cancel_order(r, self.out.server_version)
        if self.host.engine.cancel(self.out.client_id, req.order_id):
            return
        known = self.host.engine.lookup(self.out.client_id, req.order_id)
        if known is None:
            self.out.error(
                req.order_id,
                10147,
                f"OrderId {req.order_id} that needs to be cancelled is not found.",
            )
        else:
            self.out.error(
                req.order_id,
                161,
                "Cancel attempted when order is not in a cancellable state.  "
                f"Order permId ={known.perm_id}",
            )

    def on_order_event(self, ev: OrderEvent) -> None:
        """Translate one engine event into IB's message."""
        order = ev.order
        if ev.kind == "open_order":
            what_if = self.host.engine.what_if(order) if order.what_if else None
            self.out.send(oo.open_order(order, self.out.server_version, what_if), order.order_id)
        elif ev.kind == "order_status":
            self.out.send(oo.order_status(order), order.order_id)
        elif ev.kind == "execution":
            assert ev.fill is not None
            self.out.send(oo.execution(-1, ev.fill, self.out.server_version), -1)
        elif ev.kind == "commission":
            assert ev.fill is not None
            self.out.send(oo.commission_report(ev.fill))
        else:
            self.out.error(order.order_id, ev.code, ev.text)

    def on_open_orders(self, *, all_clients: bool) -> None:
        """ReqOpenOrders / reqAllOpenOrders: OPEN_ORDER + ORDER_STATUS each, then the end."""
        every = all_clients or self.host.sees_all(self.out.client_id)
        for order in self.host.engine.live_orders():
            if every or order.client_id == self.out.client_id:
                self.out.send(oo.open_order(order, self.out.server_version), order.order_id)
                self.out.send(oo.order_status(order), order.order_id)
        self.out.send(oo.open_order_end())

    def on_completed_orders(self, r: FieldReader) -> None:
        """reqCompletedOrders: every finished order (not what-ifs), oldest first."""
        r.bool()  # apiOnly: every simulated order came through the API
        done = [
            o for o in self.host.engine.orders if o.completed_time is not None and not o.what_if
        ]
        done.sort(key=lambda o: (o.completed_time, o.perm_id))
        for order in done:
            self.out.send(oo.completed_order(order, self.out.server_version))
        self.out.send(oo.completed_orders_end())

    def on_executions(self, r: FieldReader) -> None:
        """ReqExecutions honouring the filter; each fill followed by its commission report.

        The time filter keeps executions from that second on (IB reports whole seconds).
        """
        flt = parse_executions(r)
        fills: list[SimFill] = [f for o in self.host.engine.orders for f in o.fills]
        fills.sort(key=lambda f: f.exec_id)
        since = _filter_since(flt.time)
        for fill in fills:
            # The time first: an incremental read skips nearly the whole day here, and
            # comparing instants is ~10x cheaper than formatting each fill's time as text.
            if since is not None and fill.time < since:
                continue
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
            if since is None and flt.time and out.ib_time(fill.time)[:17] < _filter_text(flt.time):
                continue
            self.out.send(oo.execution(flt.req_id, fill, self.out.server_version), flt.req_id)
            self.out.send(oo.commission_report(fill))
        self.out.send(oo.execution_end(flt.req_id), flt.req_id)


def _filter_text(time: str) -> str:
    """The filter's ``yyyymmdd hh:mm:ss`` (IB accepts ``-`` or a space between the parts)."""
    return time.replace("-", " ")[:17]


def _filter_since(time: str) -> datetime | None:
    """The filter time as a UTC instant, or ``None`` (no filter, or text compared as text)."""
    if not time:
        return None
    try:
        return datetime.strptime(_filter_text(time), "%Y%m%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
