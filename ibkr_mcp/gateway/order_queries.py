"""Order queries: open and completed orders, status, lookups by orderRef, executions."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ib_async import ExecutionFilter, Trade
from loguru import logger

from ibkr_mcp.errors import InvalidInputError, OrderNotFoundError
from ibkr_mcp.gateway import convert
from ibkr_mcp.gateway.book_scope import day_book_allowed, shared_read
from ibkr_mcp.gateway.connection import IbConnection
from ibkr_mcp.gateway.day_book import DONE as DONE_STATUSES
from ibkr_mcp.gateway.day_book import DayBook, ib_filter_time
from ibkr_mcp.gateway.finished import FinishedOrders
from ibkr_mcp.gateway.records import OrderRecord
from ibkr_mcp.models import Fill, OrderInfo


class OrderQueries:
    """The read side of ``OrderService``: what the broker says about orders and fills.

    Inside an order call (``order_book_scope``) completed orders and executions come from the
    session's day book (``DayBook``); everywhere else they are asked of IB whole.
    """

    conn: IbConnection
    book: DayBook
    finished: FinishedOrders
    _tasks: set[asyncio.Task[Any]]
    _refresh: asyncio.Task[None] | None

    def _find_trade(self, order_id: int) -> Trade | None:
        mine = self.conn.client_id
        matches = [t for t in self.conn.ib.trades() if t.order.orderId == order_id]
        matches.sort(key=lambda t: t.order.clientId != mine)  # this client's order first
        return matches[0] if matches else None

    def _pruned(self, order_id: int) -> OrderInfo | None:
        """The last state of a finished order pruned from ib_async (see ``FinishedOrders``)."""
        return self.finished.info(order_id, self.conn.client_id)

    async def open_orders(self) -> list[OrderInfo]:
        """Open orders of every client (``reqAllOpenOrders``); shared within an order call."""
        return await shared_read("open_orders", self._open_orders)

    async def _open_orders(self) -> list[OrderInfo]:
        ib = self.conn.ib
        generation = self.book.generation
        async with self.conn.request_lock("openOrders"):
            trades = await self.conn.call(ib.reqAllOpenOrdersAsync, what="open orders")
        infos = _unique(convert.order_info(t) for t in trades if not t.order.whatIf)
        self.book.note_open(infos, generation)
        return infos

    async def completed_orders(self) -> list[OrderInfo]:
        """Orders that reached a final state today (every client); shared within an order call.

        Inside an order call they come from the day book (see ``DayBook``), else from IB whole.
        """
        if day_book_allowed() and self.book.enabled:
            return await shared_read("completed_orders", self._day_completed)
        return await shared_read("completed_orders:whole", self._completed_orders)

    async def _completed_orders(self) -> list[OrderInfo]:
        ib = self.conn.ib
        generation = self.book.generation
        async with self.conn.request_lock("completedOrders"):
            trades = await self.conn.call(
                lambda: ib.reqCompletedOrdersAsync(False), what="completed orders"
            )
        infos = _unique(convert.order_info(t) for t in trades)
        self.book.set_completed(infos, generation)
        return infos

    async def _day_completed(self) -> list[OrderInfo]:
        return [record.info() for record in await self._completed_records()]

    async def _completed_records(self) -> list[OrderRecord]:
        """The day book's completed orders (read whole first if the book is not loaded)."""
        known = self.book.completed()
        if known is None:
            await shared_read("completed_orders:whole", self._completed_orders)
            known = self.book.completed()
            if known is None:  # the session was lost during the read: read whole, unbooked
                return [OrderRecord.of(i) for i in await self._completed_orders()]
        if self.book.stale():
            self._refresh_day_book()
        return known

    async def order_records(self) -> list[OrderRecord]:
        """Every client's open orders and the day's completed orders, as compact records.

        The order path's view of the broker's day (flow limits, lookups by orderRef): inside an
        order call it comes from the day book without rebuilding a model per order.
        """
        if day_book_allowed() and self.book.enabled:
            open_now, completed = await asyncio.gather(
                self.open_orders(), shared_read("completed_records", self._completed_records)
            )
            return [*(OrderRecord.of(i) for i in open_now), *completed]
        open_now, whole = await asyncio.gather(self.open_orders(), self.completed_orders())
        return [OrderRecord.of(i) for i in [*open_now, *whole]]

    def _refresh_day_book(self) -> None:
        """Reread the whole day in the background (other clients' orders), once at a time."""
        if self._refresh is not None and not self._refresh.done():
            return
        self._refresh = asyncio.ensure_future(self._reread_day())
        self._tasks.add(self._refresh)
        self._refresh.add_done_callback(self._tasks.discard)

    async def _reread_day(self) -> None:
        try:
            await asyncio.gather(self._completed_orders(), self._executions(None))
        except Exception as exc:  # noqa: BLE001 - the next order call asks again
            logger.debug("day book refresh failed: {}", exc)

    async def order_status(self, order_id: int) -> OrderInfo:
        """One order by id, as the broker reports it.

        Order ids are per API client. This client's own order answers from the session (its
        status events keep it current). Any other id is looked up at the broker: its open
        orders carry their id and client id, its completed orders neither (IB sends them
        without), so the day's executions and orders seen open earlier link the id to a
        completed order's perm id. Another client's order that ended without a fill and was
        never seen open here has no such link: its idempotency key (orderRef) finds it.

        Raises:
            OrderNotFoundError: If no client's order with this id is known.
            InvalidInputError: If the id names orders of several other clients (none of this
                client's): which one is meant cannot be told from the id.
        """
        mine = self.conn.client_id
        trade = self._find_trade(order_id)
        if trade is not None and trade.order.clientId == mine:
            return convert.order_info(trade)
        if (pruned := self._pruned(order_id)) is not None:
            return pruned
        found = await self._orders_with_id(order_id)
        own = [info for info in found if info.client_id == mine]
        if own:
            return own[0]
        if len(found) > 1:
            raise ambiguous_id(order_id, found)
        if found:
            return found[0]
        # Not at the broker: this session's copy (heard meanwhile, or the last one seen).
        trade = self._find_trade(order_id)
        if trade is not None:
            return convert.order_info(trade)
        raise not_found(order_id)

    async def _orders_with_id(self, order_id: int) -> list[OrderInfo]:
        """Every client's order with this id that the broker reports (open or completed)."""
        records = await self.order_records()
        found = [r.info() for r in records if r.order_id == order_id]
        if any(info.client_id == self.conn.client_id for info in found):
            return found
        # Perm id -> client id of orders with this id: this session's copies (another
        # client's order seen open) and the day's executions (each names its order's ids).
        clients = {
            t.order.permId: t.order.clientId
            for t in self.conn.ib.trades()
            if t.order.orderId == order_id and t.order.permId
        }
        executed = {
            f.perm_id for f in await self.executions() if f.order_id == order_id and f.perm_id
        }
        clients.update(self._execution_clients(executed))
        for unseen in executed - clients.keys():
            clients[unseen] = 0  # a fill pruned from ib_async's list: client unknown
        known = {info.perm_id for info in found if info.perm_id}
        for record in records:
            perm_id = record.perm_id
            if perm_id is None or perm_id not in clients or perm_id in known:
                continue
            client_id = clients[perm_id] or None
            found.append(
                record.info().model_copy(update={"order_id": order_id, "client_id": client_id})
            )
            known.add(perm_id)
        return found

    def _execution_clients(self, perm_ids: set[int]) -> dict[int, int]:
        """The client id of each order (by perm id) its executions name.

        ib_async keeps each execution's client id; our ``Fill`` does not carry it.
        """
        return {
            f.execution.permId: f.execution.clientId
            for f in self.conn.ib.fills()
            if f.execution.permId in perm_ids
        }

    async def find_orders_by_ref(self, order_ref: str) -> list[OrderInfo]:
        """Open, completed and this session's orders whose ``orderRef`` is ``order_ref``."""
        records = await self.order_records()
        session = [
            convert.order_info(t)
            for t in self.conn.ib.trades()
            if t.order.orderRef == order_ref and not t.order.whatIf
        ]
        session += self.finished.by_ref(order_ref)
        # Open orders come first in the records, as they did in the lists before.
        booked = [r.info() for r in records if r.order_ref == order_ref]
        candidates = [i for i in [*session, *booked] if i.order_ref == order_ref]
        # A final state wins (another client's order in this session's list stays as it was
        # last seen: no status events reach us for it); the order id comes from any report.
        ranked = sorted(candidates, key=lambda i: i.status not in DONE_STATUSES)
        ids = {i.perm_id: i.order_id for i in candidates if i.perm_id and i.order_id}
        found = [
            i.model_copy(update={"order_id": ids[i.perm_id]})
            if not i.order_id and i.perm_id in ids
            else i
            for i in _unique(ranked)
        ]
        if any(info.order_id == 0 or not info.client_id for info in found):
            # IB sends completed orders without their order id and client id; executions
            # carry both (ib_async keeps each execution's client id; our Fill does not).
            fills = await self.fills_by_ref(order_ref)
            by_perm = {f.perm_id: f.order_id for f in fills if f.perm_id}
            clients = self._execution_clients(set(by_perm))
            found = [
                info.model_copy(
                    update={
                        "order_id": info.order_id or by_perm.get(info.perm_id or 0, 0),
                        "client_id": info.client_id or clients.get(info.perm_id or 0) or None,
                    }
                )
                for info in found
            ]
        return found

    async def executions(self, account: str | None = None) -> list[Fill]:
        """Today's fills (optionally of one account); shared within an order call.

        Inside an order call only the fills since the last read are asked (see ``DayBook``).
        """
        if day_book_allowed() and self.book.enabled:
            key = f"executions:{account or ''}"
            return await shared_read(key, lambda: self._day_fills(account))
        return await shared_read(
            f"executions:whole:{account or ''}", lambda: self._executions(account)
        )

    async def fills_by_ref(self, order_ref: str) -> list[Fill]:
        """Today's fills of orders whose ``orderRef`` is ``order_ref``; shared in an order call."""
        if day_book_allowed() and self.book.enabled:
            await shared_read("executions:read", self._read_day_fills)
            booked = self.book.fills(order_ref=order_ref)
            if booked is not None:
                return booked
        return [f for f in await self.executions() if f.order_ref == order_ref]

    async def _day_fills(self, account: str | None) -> list[Fill]:
        await shared_read("executions:read", self._read_day_fills)
        return self.book.fills(account) or []

    async def _read_day_fills(self) -> None:
        """Executions since the day book's newest (the whole day before the first read)."""
        since = self.book.fills_since()
        if since is None:
            await self._executions(None)
        else:
            await self._executions(None, since=since)

    async def _executions(
        self, account: str | None, *, since: datetime | None = None
    ) -> list[Fill]:
        """IB's executions (since ``since``: only those the day book did not hold settled)."""
        ib = self.conn.ib
        wrapper: Any = ib.wrapper
        flt = ExecutionFilter(acctCode=account or "")
        if since is not None:
            flt.time = ib_filter_time(since)
        generation = self.book.generation
        fills = await self.conn.call(lambda: ib.reqExecutionsAsync(flt), what="executions")
        out: dict[str, Fill] = {}
        settled: list[datetime] = []
        for fill in fills:
            if account and fill.execution.acctNumber != account:
                continue
            if since is not None and (held := self.book.settled_at(fill.execution.execId)):
                # Re-reported (the overlap, or this client's own fill heard as an event): held
                # with its commission already; its time still moves the next read forward.
                settled.append(held)
                continue
            # Commission reports update ib_async's session copy of a fill, not the request's.
            known = wrapper.fills.get(fill.execution.execId)
            report = known.commissionReport if known is not None else fill.commissionReport
            out[fill.execution.execId] = convert.fill_from_ib(fill, report)
        if account is None:
            self.book.add_fills(out.values(), generation, whole=since is None, settled=settled)
        return sorted(out.values(), key=lambda f: (f.time, f.exec_id))


def not_found(order_id: int) -> OrderNotFoundError:
    """The error for an order id nobody knows (with how to find the right one)."""
    return OrderNotFoundError(
        f"No order with id {order_id} is known.",
        remedy="Check the id with get_open_orders or get_executions.",
        details={"order_id": order_id},
    )


def ambiguous_id(order_id: int, orders: list[OrderInfo]) -> InvalidInputError:
    """The error for an id that names orders of several other API clients."""
    listed = [
        {
            "client_id": info.client_id,
            "perm_id": info.perm_id,
            "order_ref": info.order_ref,
            "symbol": info.symbol,
            "side": info.side,
            "quantity": info.quantity,
            "status": info.status,
        }
        for info in orders
    ]
    names = "; ".join(
        f"client {info.client_id or '?'}: {info.side} {info.quantity} {info.symbol} "
        f"{info.status} (perm id {info.perm_id}, key {info.order_ref!r})"
        for info in orders
    )
    return InvalidInputError(
        f"Order id {order_id} names {len(orders)} orders of other API clients (order ids are "
        f"per client id): {names}.",
        remedy="Pass the order's idempotency_key (its orderRef) instead of the id, or ask "
        "from the process (client id) that placed it.",
        details={
            "order_id": order_id,
            "errors": [
                {
                    "field": "order_id",
                    "value": order_id,
                    "message": "used by several API clients' orders",
                }
            ],
            "orders": listed,
        },
    )


def _unique(infos: Iterable[OrderInfo]) -> list[OrderInfo]:
    """First occurrence wins per order, matched by perm id or by (client id, order id)."""
    seen: set[tuple[int, ...]] = set()
    out: list[OrderInfo] = []
    for info in infos:
        keys: set[tuple[int, ...]] = set()
        if info.perm_id:
            keys.add((info.perm_id,))
        if info.order_id:
            keys.add((info.client_id or 0, info.order_id))
        if keys & seen:
            continue
        seen |= keys
        out.append(info)
    return out
