"""Finished orders leave ib_async's session lists; lookups by id and orderRef still answer."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from ibkr_mcp.errors import OrderRejectedError
from ibkr_mcp.gateway.ib_gateway import IBGateway
from ibkr_mcp.models import ContractRef, OrderInfo, OrderRequest

ACCOUNT = "DU1234567"
KEEP = 2


@pytest.fixture
def gw(gw: IBGateway) -> IBGateway:
    """The connected gateway (conftest), with a small bound so a few orders exercise it."""
    gw.orders.finished.keep = KEEP
    return gw


async def _settled(gw: IBGateway, order_id: int) -> None:
    """Until the order's fill and commission reached ib_async (the simulator fills on a tick)."""
    fills: Any = gw.orders.conn.ib.fills
    deadline = asyncio.get_running_loop().time() + 5
    while not any(f.execution.orderId == order_id and f.commissionReport.execId for f in fills()):
        if gw.orders.finished.info(order_id, gw.orders.conn.client_id) is not None:
            return  # already pruned, hence settled
        assert asyncio.get_running_loop().time() < deadline, "order did not fill"
        await asyncio.sleep(0.02)


async def _place(gw: IBGateway, ref: str) -> OrderInfo:
    contract = await gw.resolve_contract(ContractRef(symbol="AAPL"))
    request = OrderRequest(
        account=ACCOUNT,
        contract=contract,
        side="BUY",
        quantity=Decimal(1),
        order_type="MKT",
        order_ref=ref,
    )
    placed = await gw.place_order(request)
    await _settled(gw, placed.order_id)
    return placed


async def test_finished_orders_beyond_the_bound_leave_ib_async(gw: IBGateway) -> None:
    placed = [await _place(gw, f"ref-{i:04d}") for i in range(5)]
    await _place(gw, "ref-last")  # its events prune the earlier ones, now settled
    ib = gw.orders.conn.ib
    session_ids = {t.order.orderId for t in ib.trades()}
    oldest = placed[0].order_id
    assert oldest not in session_ids
    assert len(session_ids) <= KEEP + 1
    assert not [f for f in ib.fills() if f.execution.orderId == oldest]
    assert gw.orders.finished.pruned >= 3


async def test_pruned_orders_answer_status_cancel_modify_and_ref(gw: IBGateway) -> None:
    first = await _place(gw, "ref-first")
    before = await gw.order_status(first.order_id)
    for i in range(KEEP + 1):
        await _place(gw, f"ref-more-{i}")
    assert first.order_id not in {t.order.orderId for t in gw.orders.conn.ib.trades()}

    status = await gw.order_status(first.order_id)
    assert status == before
    assert status.status == "Filled"
    assert await gw.cancel_order(first.order_id) == before
    with pytest.raises(OrderRejectedError, match="is Filled"):
        request = OrderRequest(
            account=ACCOUNT,
            contract=await gw.resolve_contract(ContractRef(symbol="AAPL")),
            side="BUY",
            quantity=Decimal(2),
            order_type="MKT",
        )
        await gw.modify_order(first.order_id, request)
    found = await gw.find_orders_by_ref("ref-first")
    assert [(f.order_id, f.status) for f in found] == [(first.order_id, "Filled")]


async def test_whole_day_reads_do_not_bring_pruned_orders_back(gw: IBGateway) -> None:
    for i in range(KEEP + 3):
        await _place(gw, f"ref-{i}")
    completed = await gw.completed_orders()  # puts every order of the day into ib_async
    fills = await gw.executions()
    assert len(completed) >= KEEP + 3
    assert len(fills) >= KEEP + 3
    await _place(gw, "ref-after")  # the next order events take the re-read copies out again
    ib = gw.orders.conn.ib
    assert len(ib.trades()) <= KEEP + 1
    assert len(ib.fills()) <= KEEP + 1


async def test_a_lost_session_forgets_pruned_records(gw: IBGateway) -> None:
    for i in range(KEEP + 2):
        await _place(gw, f"ref-{i}")
    finished = gw.orders.finished
    assert len(finished) >= 1
    finished.reset()
    assert len(finished) == 0


async def test_a_pruned_order_shares_the_day_books_record(gw: IBGateway) -> None:
    await gw.completed_orders()  # a whole read loads the day book
    first = await _place(gw, "ref-shared")
    for i in range(KEEP + 1):
        await _place(gw, f"ref-after-{i}")
    finished, book = gw.orders.finished, gw.orders.book
    pruned = finished._records[(gw.orders.conn.client_id, first.order_id)]
    booked = [r for r in book.completed() or [] if r.order_id == first.order_id]
    # One object for both (the day's orders are held once), and it reads back as the order.
    assert booked and booked[0] is pruned
    info = finished.info(first.order_id, gw.orders.conn.client_id)
    assert info is not None and info.status == "Filled" and info.order_ref == "ref-shared"
