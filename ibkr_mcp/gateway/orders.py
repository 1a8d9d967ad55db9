"""Orders: what-if, place, modify, cancel and the order/fill listeners (queries: order_queries)."""

from __future__ import annotations

import asyncio
import copy
import inspect
import sys
from collections.abc import Callable, Iterable
from typing import Any, Final

from ib_async import Fill as IbFill
from ib_async import Trade
from ib_async.objects import CommissionReport
from ib_async.order import OrderState
from loguru import logger

from ibkr_mcp.errors import GatewayHungError, OrderRejectedError
from ibkr_mcp.gateway import convert, ib_errors
from ibkr_mcp.gateway.base import FillListener, OrderStatusListener
from ibkr_mcp.gateway.book_scope import order_book_changed
from ibkr_mcp.gateway.connection import IbConnection
from ibkr_mcp.gateway.day_book import DONE as DONE_STATUSES
from ibkr_mcp.gateway.day_book import DayBook
from ibkr_mcp.gateway.finished import FinishedOrders
from ibkr_mcp.gateway.order_build import build_order
from ibkr_mcp.gateway.order_queries import OrderQueries, not_found
from ibkr_mcp.models import OrderInfo, OrderRequest, WhatIf

#: Statuses that mean IB has not acknowledged the order yet.
PENDING_STATUSES: Final[frozenset[str]] = frozenset({"PendingSubmit", "ApiPending", ""})
#: ib_async's status for an order IB answered with a warning-class error.
VALIDATION_STATUS: Final = "ValidationError"
#: Errors that, on a cancel request, mean the cancel itself failed.
CANCEL_FAILURE_CODES: Final[frozenset[int]] = frozenset({161, 10147})


def _rejected_by(trade: Trade) -> tuple[int, str] | None:
    """IB's error if it killed or refused the order, else ``None``."""
    error = convert.trade_error(trade)
    if error is None:
        return None
    status = trade.orderStatus.status
    if status in ("Cancelled", "ApiCancelled", "Inactive"):
        return None if error[0] in ib_errors.CANCEL_CONFIRM_CODES else error
    if status == VALIDATION_STATUS and error[0] in ib_errors.ORDER_REJECT_CODES:
        return error
    return None


class OrderService(OrderQueries):
    """Order operations and order/fill listeners over one connection.

    Args:
        conn: The broker connection.
    """

    def __init__(self, conn: IbConnection) -> None:
        self.conn = conn
        self._status_listeners: list[OrderStatusListener] = []
        self._fill_listeners: list[FillListener] = []
        #: id(trade) -> the wake-up check of a call waiting on that trade (``_wait``).
        self._checks: dict[int, Callable[[], None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        settings = conn.settings
        self.book = DayBook(
            settings.ORDER_BOOK_REFRESH_SECONDS, whole=settings.ORDER_BOOK_WHOLE_READS
        )
        self._refresh: asyncio.Task[None] | None = None
        #: exec id -> whether its commission was dispatched: IB repeats every fill (and
        #: ib_async its commission event) on each executions request; listeners hear it once.
        self._heard: dict[str, bool] = {}
        conn.on_reset(self._on_reset)
        ib = conn.ib
        ib.orderStatusEvent += self._on_status
        ib.execDetailsEvent += self._on_exec
        ib.commissionReportEvent += self._on_commission
        #: Finished orders pruned from ib_async's session lists (registers after the above).
        self.finished = FinishedOrders(ib, booked=self.book.same)
        conn.on_reset(self.finished.reset)

    # --- listeners ------------------------------------------------------------------------

    def add_order_status_listener(self, listener: OrderStatusListener) -> None:
        """Call ``listener(OrderInfo)`` on every order status change."""
        self._status_listeners.append(listener)

    def add_fill_listener(self, listener: FillListener) -> None:
        """Call ``listener(Fill)`` on every execution and again with its commission."""
        self._fill_listeners.append(listener)

    def _dispatch(self, listeners: Iterable[Callable[[Any], Any]], item: object) -> None:
        for listener in listeners:
            try:
                outcome = listener(item)
            except Exception:  # noqa: BLE001 - a listener bug must never break order handling
                logger.exception("order/fill listener {!r} failed", listener)
                continue
            if inspect.isawaitable(outcome):
                task = asyncio.ensure_future(outcome)
                self._tasks.add(task)
                task.add_done_callback(self._listener_done)

    def _listener_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.opt(exception=task.exception()).error("async order/fill listener failed")

    def _on_status(self, trade: Trade) -> None:
        if trade.order.whatIf:
            return
        # ib_async tells the trade itself after this event: the order's caller is woken first,
        # so it resumes (and answers) before the listeners' tasks take their first step.
        if (check := self._checks.get(id(trade))) is not None:
            check()
        info = convert.order_info(trade)
        self.book.note_order(info)
        self._dispatch(self._status_listeners, info)

    def _on_reset(self) -> None:
        self.book.reset()
        self._heard.clear()  # the reconnect's reconciliation records what was missed

    def _on_exec(self, trade: Trade, fill: IbFill) -> None:
        exec_id = fill.execution.execId
        if exec_id in self._heard:
            return
        self._heard[sys.intern(exec_id)] = False  # the same string as the day book's record
        domain = convert.fill_from_ib(fill)
        self.book.note_fill(domain)
        self._dispatch(self._fill_listeners, domain)

    def _on_commission(self, trade: Trade, fill: IbFill, report: CommissionReport) -> None:
        exec_id = fill.execution.execId
        if self._heard.get(exec_id):
            return
        self._heard[exec_id] = True
        domain = convert.fill_from_ib(fill, report)
        self.book.note_fill(domain)
        self._dispatch(self._fill_listeners, domain)

    # --- what-if / place / cancel ---------------------------------------------------------

    async def what_if(self, request: OrderRequest) -> WhatIf:
        """IB's margin / commission preview of ``request`` (nothing is placed)."""
        ib = self.conn.ib
        contract = convert.contract_to_ib(request.contract)
        order = build_order(request)
        try:
            state: OrderState = await self.conn.call(
                lambda: ib.whatIfOrderAsync(contract, order),
                what=f"what-if {request.side} {request.quantity} {request.contract.symbol}",
                extra={"symbol": request.contract.symbol},
            )
        finally:
            # ib_async ends a what-if with its answer but keeps the request's (empty) result
            # list: one per preview for the whole session (issue 15 soak). A request still in
            # flight has its future; an ended one's leftover list is dropped.
            wrapper: Any = ib.wrapper
            for key in [k for k in wrapper._results if k not in wrapper._futures]:
                del wrapper._results[key]
        return convert.what_if_from_state(state)

    async def _wait(self, trade: Trade, done: Callable[[Trade], bool], what: str) -> None:
        """Wait (finitely) until ``done(trade)``; status events wake the wait.

        The caller awaits one bare future that the answer, the timeout or the liveness probe
        settles (``conn.guard``'s rules without its ``asyncio.wait``): it resumes on the next
        loop turn, and ``_on_status`` checks it before the listeners, so it runs before their
        work (audit rows) starts.
        """
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()

        def check(_: Trade | None = None) -> None:
            if not woken.done() and done(trade):
                woken.set_result(None)

        def fail(error: BaseException) -> None:
            if not woken.done():
                woken.set_exception(error)

        def on_hung(signal: asyncio.Future[bool]) -> None:
            if not signal.cancelled():  # nobody should cancel it; if one did, it is no hang
                fail(self.conn.hung_error(what))

        limit = self.conn.settings.IBKR_REQUEST_TIMEOUT
        # An order in flight when the gateway hangs fails at once (GATEWAY_HUNG, state
        # uncertain, reconciled by its orderRef), not after the full timeout.
        hung = self.conn.liveness.hung_future()  # shared: never cancelled here
        hung.add_done_callback(on_hung)
        timer = loop.call_later(limit, fail, TimeoutError())
        trade.statusEvent += check
        self._checks[id(trade)] = check
        try:
            check()
            try:
                await woken
            except GatewayHungError as exc:
                exc.details.update(order_id=trade.order.orderId, order_ref=trade.order.orderRef)
                exc.remedy = (
                    "The order's state is unknown: retry with the SAME idempotency_key once the "
                    "gateway answers (it reconciles by order_ref and never sends twice)."
                )
                raise
            except TimeoutError:
                extra = {"order_id": trade.order.orderId, "order_ref": trade.order.orderRef}
                error = self.conn.timeout_error(what, limit, extra)
                error.remedy = (
                    "The order's state is unknown: check get_order_status / find it by "
                    "order_ref before retrying, so it is not sent twice."
                )
                raise error from None
        finally:
            timer.cancel()
            hung.remove_done_callback(on_hung)
            trade.statusEvent -= check
            if self._checks.get(id(trade)) is check:
                del self._checks[id(trade)]

    async def place_order(self, request: OrderRequest) -> OrderInfo:
        """Send ``request`` and return its first acknowledged state.

        Raises:
            OrderRejectedError: If IB refuses the order (201, 110, ...), with IB's reason.
            GatewayTimeoutError: If IB does not acknowledge in time (state unknown).
        """
        return (await self.place_bracket([request]))[0]

    async def place_bracket(self, requests: list[OrderRequest]) -> list[OrderInfo]:
        """Send a parent and its children as one IB bracket; their acknowledged states.

        The children carry the parent's id; only the last order transmits, so IB receives the
        bracket whole or not at all. A leg IB refuses cancels the legs it accepted.

        Raises:
            OrderRejectedError: If IB refuses any leg (the others are cancelled).
            GatewayTimeoutError: If IB does not acknowledge in time (state unknown).
        """
        await self.conn.ensure_connected()
        ib = self.conn.ib
        contract = convert.contract_to_ib(requests[0].contract)
        orders = [build_order(r) for r in requests]
        if len(orders) > 1:
            parent_id = ib.client.getReqId()
            orders[0].orderId = parent_id
            for order in orders[1:]:
                order.parentId = parent_id
            for order in orders[:-1]:
                order.transmit = False
        trades: list[Trade] = []
        try:
            for order in orders:
                order_book_changed()
                trades.append(ib.placeOrder(contract, order))
        except ConnectionError as exc:
            raise self.conn.lost_error("place order", exc) from None
        what = f"place order {trades[0].order.orderId} ({requests[0].contract.symbol})"

        def acknowledged(t: Trade) -> bool:
            status = t.orderStatus.status
            if _rejected_by(t) is not None:
                return True
            return status not in PENDING_STATUSES and status != VALIDATION_STATUS

        for trade in trades:
            await self._wait(trade, acknowledged, what)
        for trade in trades:
            rejection = _rejected_by(trade)
            if rejection is None:
                continue
            for other in trades:
                if other is not trade and not other.isDone():
                    ib.cancelOrder(other.order)
            raise ib_errors.translate_order_error(
                rejection[0], rejection[1], order_id=trade.order.orderId, context=what
            )
        return [convert.order_info(t) for t in trades]

    async def modify_order(self, order_id: int, request: OrderRequest) -> OrderInfo:
        """Change a working order in place (same id): quantity, prices, tif, outside RTH.

        The change is applied to the order as IB last echoed it (``BrokerIB`` keeps every
        field of that echo), and the answer is IB's acknowledgement: its openOrder echo of the
        modified order, or its refusal.

        Raises:
            OrderNotFoundError: If no such order is known.
            OrderRejectedError: If the order is done, belongs to another client, or IB
                refuses the change.
        """
        trade = await self._working_trade(order_id, "modify")
        new = build_order(request)
        order = copy.copy(trade.order)
        for name in (
            "totalQuantity", "lmtPrice", "auxPrice", "trailingPercent", "trailStopPrice",
            "lmtPriceOffset", "tif", "goodTillDate", "outsideRth",
        ):  # fmt: skip
            setattr(order, name, getattr(new, name))
        order.transmit = True
        marks = len(trade.log)
        wrapper = self.conn.ib.wrapper
        echoes = 0

        def on_echo(echoed: Trade) -> None:
            # A change that leaves quantity, prices and status as they were is only visible
            # in IB's echo of the order: that echo, not an unchanged status, answers.
            nonlocal echoes
            if echoed is trade:
                echoes += 1
                if (check := self._checks.get(id(trade))) is not None:
                    check()

        def refusal(t: Trade) -> tuple[int, str] | None:
            for entry in t.log[marks + 1 :]:  # after ib_async's own "Modify" entry
                if entry.errorCode and entry.errorCode not in ib_errors.ADVISORY_CODES:
                    return entry.errorCode, entry.message
            return None

        def answered(t: Trade) -> bool:
            return echoes > 0 or t.isDone() or refusal(t) is not None

        what = f"modify order {order_id}"
        wrapper.orderEchoEvent += on_echo
        try:
            try:
                order_book_changed()
                self.conn.ib.placeOrder(trade.contract, order)
            except ConnectionError as exc:
                raise self.conn.lost_error(what, exc) from None
            await self._wait(trade, answered, what)
        finally:
            wrapper.orderEchoEvent -= on_echo
        if (error := refusal(trade)) is not None:
            raise ib_errors.translate_order_error(
                error[0], error[1], order_id=order_id, context=what
            )
        return convert.order_info(trade)

    async def _working_trade(self, order_id: int, action: str) -> Trade:
        trade = self._find_trade(order_id)
        if trade is None and (pruned := self._pruned(order_id)) is not None:
            raise _not_working(order_id, pruned.status, action)
        if trade is None:
            await self.open_orders()
            trade = self._find_trade(order_id)
        if trade is None:
            raise not_found(order_id)
        if trade.isDone():
            raise _not_working(order_id, trade.orderStatus.status, action)
        if trade.order.clientId not in (self.conn.client_id, 0):
            raise OrderRejectedError(
                f"Order {order_id} belongs to API client {trade.order.clientId}.",
                remedy=f"{action.capitalize()} it from that client (or from TWS / IB Gateway).",
                details={"order_id": order_id, "client_id": trade.order.clientId},
            )
        return trade

    async def cancel_order(self, order_id: int) -> OrderInfo:
        """Cancel ``order_id`` and return its state once IB confirmed the cancel.

        Raises:
            OrderNotFoundError: If no such order is known.
            OrderRejectedError: If IB refuses the cancel (e.g. already filled) or the order
                belongs to another API client.
        """
        trade = self._find_trade(order_id)
        if trade is None and (pruned := self._pruned(order_id)) is not None:
            return pruned  # finished: nothing to cancel
        if trade is None:
            await self.open_orders()
            trade = self._find_trade(order_id)
        if trade is None:
            raise not_found(order_id)
        if trade.isDone():
            return convert.order_info(trade)
        if trade.order.clientId not in (self.conn.client_id, 0):
            raise OrderRejectedError(
                f"Order {order_id} belongs to API client {trade.order.clientId}.",
                remedy="Cancel it from that client (or from TWS / IB Gateway).",
                details={"order_id": order_id, "client_id": trade.order.clientId},
            )
        await self.conn.ensure_connected()
        try:
            order_book_changed()
            self.conn.ib.cancelOrder(trade.order)
        except ConnectionError as exc:
            raise self.conn.lost_error(f"cancel order {order_id}", exc) from None
        what = f"cancel order {order_id}"

        def finished(t: Trade) -> bool:
            error = convert.trade_error(t)
            if error is not None and error[0] in CANCEL_FAILURE_CODES:
                return True
            return t.orderStatus.status in DONE_STATUSES

        await self._wait(trade, finished, what)
        error = convert.trade_error(trade)
        if error is not None and error[0] in CANCEL_FAILURE_CODES:
            raise ib_errors.translate_order_error(
                error[0], error[1], order_id=order_id, context=what
            )
        return convert.order_info(trade)

    async def global_cancel(self) -> tuple[list[OrderInfo], list[OrderInfo]]:
        """IB's global cancel (``reqGlobalCancel``): every open order of every client and TWS.

        Returns:
            The orders that were working before, and those still working after waiting
            (finitely) for the cancels to be confirmed.
        """
        await self.conn.ensure_connected()
        before = await self.open_orders()
        try:
            order_book_changed()
            self.conn.ib.reqGlobalCancel()  # type: ignore[no-untyped-call]
        except ConnectionError as exc:
            raise self.conn.lost_error("global cancel", exc) from None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.conn.settings.IBKR_REQUEST_TIMEOUT
        remaining = before
        while remaining:
            await asyncio.sleep(0.05)
            remaining = await self.open_orders()
            if loop.time() >= deadline:
                break
        return before, remaining


def _not_working(order_id: int, status: str, action: str) -> OrderRejectedError:
    return OrderRejectedError(
        f"Order {order_id} is {status}; only a working order can be {action}ed.",
        remedy="Place a new order instead (preview_order, then place_order).",
        details={"order_id": order_id, "status": status},
    )
