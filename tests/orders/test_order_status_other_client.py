"""get_order_status for orders of another API client (another process, another client id).

IB reports another client's finished orders (reqCompletedOrders) without their order id;
executions carry it with the perm id. Each runtime here is one process with its own
IBKR_CLIENT_ID, all on one simulator over a real socket (as the CLI beside a running server).
"""

from __future__ import annotations

from typing import Any

import pytest
from order_helpers import MKT10, call, preview_and_place

from ibkr_mcp.errors import IbkrMcpError
from ibkr_mcp.runtime import open_runtime

#: A LMT far below the market: it rests until cancelled.
RESTING = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "order_type": "LMT",
           "limit_price": "100.00"}  # fmt: skip


@pytest.fixture
def client(settings_for: Any, sim: Any) -> Any:
    """``client(n)``: settings of a process with client id ``n`` (one shared DATA_DIR)."""

    def build(client_id: int) -> Any:
        return settings_for(
            sim.port, ORDERS_ENABLED=True, PRICE_BAND_PCT=60, IBKR_CLIENT_ID=client_id
        )

    return build


async def test_filled_order_of_another_client_by_id_and_key(client: Any) -> None:
    async with open_runtime(client(1), wait_connected=5) as first:
        placed = await preview_and_place(first, MKT10, "other-client-fill-1")
        assert placed.status == "Filled"
    async with open_runtime(client(101), wait_connected=5) as other:
        for ref in (placed.order_id, "other-client-fill-1"):
            status = await call(other, "get_order_status", {"order_id": ref})
            assert status.order_id == placed.order_id
            assert status.status == "Filled" and status.filled == 10
            assert status.order.perm_id == placed.perm_id
            assert status.order.client_id == 1
            assert status.order.order_ref == "other-client-fill-1"
            assert [f.perm_id for f in status.fills] == [placed.perm_id]
        with pytest.raises(IbkrMcpError) as info:
            await call(other, "get_order_status", {"order_id": placed.order_id + 1000})
        assert info.value.code == "ORDER_NOT_FOUND"


async def test_an_id_used_by_two_other_clients_is_ambiguous(client: Any) -> None:
    async with open_runtime(client(1), wait_connected=5) as first:
        one = await preview_and_place(first, MKT10, "same-id-client-1")
    async with open_runtime(client(2), wait_connected=5) as second:
        two = await preview_and_place(second, {**MKT10, "quantity": 11}, "same-id-client-2")
        assert two.order_id == one.order_id  # order ids are per API client
        # A client's own order is what its id names for it.
        mine = await call(second, "get_order_status", {"order_id": two.order_id})
        assert mine.order.perm_id == two.perm_id
    async with open_runtime(client(101), wait_connected=5) as third:
        with pytest.raises(IbkrMcpError) as info:
            await call(third, "get_order_status", {"order_id": one.order_id})
        error = info.value
        assert error.code == "INVALID_INPUT"
        assert error.details["errors"][0]["field"] == "order_id"
        orders = error.details["orders"]
        assert {(o["client_id"], o["perm_id"], o["order_ref"]) for o in orders} == {
            (1, one.perm_id, "same-id-client-1"),
            (2, two.perm_id, "same-id-client-2"),
        }
        assert "idempotency_key" in (error.remedy or "")


async def test_a_key_names_one_order_when_its_id_is_ambiguous(client: Any) -> None:
    async with open_runtime(client(1), wait_connected=5) as first:
        one = await preview_and_place(first, MKT10, "same-id-key-1")
    async with open_runtime(client(2), wait_connected=5) as second:
        two = await preview_and_place(second, {**MKT10, "quantity": 11}, "same-id-key-2")
    assert two.order_id == one.order_id
    async with open_runtime(client(101), wait_connected=5) as third:
        by_key = await call(third, "get_order_status", {"order_id": "same-id-key-2"})
    assert by_key.order.perm_id == two.perm_id and by_key.filled == 11


async def test_another_clients_order_cancelled_after_it_was_seen_open(client: Any) -> None:
    async with (
        open_runtime(client(1), wait_connected=5) as first,
        open_runtime(client(101), wait_connected=5) as other,
    ):
        placed = await preview_and_place(first, RESTING, "other-client-cxl-1")
        seen = await call(other, "get_order_status", {"order_id": placed.order_id})
        assert seen.status == "Submitted"
        await call(first, "cancel_order", {"order_id": placed.order_id})
        # No status event reaches this client for the other client's order: the broker's
        # completed orders say what happened, not the session copy seen open earlier.
        after = await call(other, "get_order_status", {"order_id": placed.order_id})
        assert after.status == "Cancelled"
        assert after.order_id == placed.order_id and after.order.perm_id == placed.perm_id
