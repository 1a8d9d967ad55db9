"""Finished orders leave ib_async's session lists (bounded memory); a compact record stays."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, Final

from ib_async import Fill as IbFill
from ib_async import Trade

from ibkr_mcp.gateway import convert
from ibkr_mcp.gateway.records import OrderRecord
from ibkr_mcp.models import OrderInfo

#: Finished trades of this session kept whole in ib_async (the newest ones); older ones are
#: pruned and answered from their compact record. 100 trades cost about 1.5 MB.
KEEP_FINISHED: Final = 100
#: Final statuses after which IB sends nothing more for an order but its commission reports.
FINAL: Final[frozenset[str]] = frozenset({"Filled", "Cancelled", "ApiCancelled"})


class FinishedOrders:
    """Keeps ib_async's session state from growing with every order of the day.

    ib_async keeps every order of the session (``ib.trades()``: the order, its status, log,
    fills and seven events, ~14 kB each) and every fill (``ib.fills()``) until disconnect, and
    adds every completed order a ``reqCompletedOrders`` read returns. After ``KEEP_FINISHED``
    newer orders of this session finished, a finished one is taken out of those lists once IB
    can send nothing more for it (final status, every fill's commission reported); its last
    state stays here as an ``OrderRecord`` (~0.5 kB) for lookups by order id or orderRef.
    Reads of the whole day put pruned orders and fills back into ib_async; ``prune`` takes them
    out again. Orders this session never saw live (other clients', earlier sessions') are left to
    ib_async: the reconnect reconciliation reads them from its lists.

    Args:
        ib: The ``ib_async.IB`` instance.
        keep: How many finished trades stay whole in ib_async.
        booked: The day book's equal record of an order, if it holds one (kept once, shared).
    """

    def __init__(
        self,
        ib: Any,
        keep: int = KEEP_FINISHED,
        *,
        booked: Callable[[OrderRecord], OrderRecord | None] | None = None,
    ) -> None:
        self.ib = ib
        self.keep = keep
        self._booked = booked
        # Registered after the order service's handlers: listeners hear an event first.
        ib.orderStatusEvent += self.note
        ib.commissionReportEvent += self._on_commission
        #: Live trades of this session that reached a final status, oldest first.
        self._done: OrderedDict[int, Trade] = OrderedDict()
        #: (client id, order id) -> compact OrderInfo of a pruned order.
        self._records: dict[tuple[int, int], OrderRecord] = {}
        self._perm_ids: set[int] = set()
        self.pruned = 0

    def reset(self) -> None:
        """The session was lost: ib_async starts afresh, and so do these records.

        As before pruning existed, earlier orders are then found through the broker's open
        and completed orders and executions.
        """
        self._done.clear()
        self._records.clear()
        self._perm_ids.clear()

    def note(self, trade: Trade) -> None:
        """A live status event: a trade that reached a final status becomes prunable."""
        if trade.orderStatus.status in FINAL and not trade.order.whatIf:
            self._done[id(trade)] = trade
        self.prune()

    def _on_commission(self, *_: object) -> None:
        self.prune()  # the report a finished trade waited for

    def prune(self) -> None:
        """Take the oldest finished trades beyond ``keep`` (and re-read copies) out of ib_async."""
        wrapper = self.ib.wrapper
        excess = len(self._done) - self.keep
        for key, trade in list(self._done.items()):
            if excess <= 0:
                break
            if not _settled(trade):
                continue  # a commission report is still due: ib_async routes it by this trade
            del self._done[key]
            excess -= 1
            self._forget(wrapper, trade)
        if self._perm_ids:
            self._drop_rereads(wrapper)

    def _forget(self, wrapper: Any, trade: Trade) -> None:
        order = trade.order
        info = convert.order_info(trade)
        if order.orderId:
            record = OrderRecord.of(info)
            shared = self._booked(record) if self._booked is not None else None
            self._records[(order.clientId, order.orderId)] = shared or record
        if order.permId:
            self._perm_ids.add(order.permId)
            if wrapper.permId2Trade.get(order.permId) is trade:
                del wrapper.permId2Trade[order.permId]
        for key in [k for k, t in wrapper.trades.items() if t is trade]:
            del wrapper.trades[key]
        for fill in trade.fills:
            if wrapper.fills.get(fill.execution.execId) is fill:
                del wrapper.fills[fill.execution.execId]
        self.pruned += 1

    def _drop_rereads(self, wrapper: Any) -> None:
        """Pruned orders and fills that a whole-day read put back into ib_async's lists."""
        for key in [k for k, t in wrapper.trades.items() if t.order.permId in self._perm_ids]:
            trade = wrapper.trades.pop(key)
            if wrapper.permId2Trade.get(trade.order.permId) is trade:
                del wrapper.permId2Trade[trade.order.permId]
        # A fill of an executions read still in flight stays: its commission may be on the way.
        in_flight = {id(f) for f in _pending_fills(wrapper)}
        stale = [
            exec_id
            for exec_id, fill in wrapper.fills.items()
            if fill.execution.permId in self._perm_ids and id(fill) not in in_flight
        ]
        for exec_id in stale:
            del wrapper.fills[exec_id]

    def info(self, order_id: int, client_id: int) -> OrderInfo | None:
        """A pruned order's last state (``client_id``'s order first), or ``None``."""
        record = self._records.get((client_id, order_id))
        if record is None:
            record = next((r for (_, oid), r in self._records.items() if oid == order_id), None)
        return None if record is None else record.info()

    def by_ref(self, order_ref: str) -> list[OrderInfo]:
        """Pruned orders whose orderRef is ``order_ref``."""
        return [r.info() for r in self._records.values() if r.order_ref == order_ref]

    def __len__(self) -> int:
        return len(self._records)


def _settled(trade: Trade) -> bool:
    """Final, and IB reported every fill and its commission (nothing more will arrive)."""
    fills = trade.fills
    shares = sum(f.execution.shares for f in fills)
    if shares < trade.orderStatus.filled:
        return False
    return all(f.commissionReport.execId for f in fills)


def _pending_fills(wrapper: Any) -> Iterator[IbFill]:
    for result in list(wrapper._results.values()):
        if isinstance(result, list):
            yield from (item for item in result if isinstance(item, IbFill))
