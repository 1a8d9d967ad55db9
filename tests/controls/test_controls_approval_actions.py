"""Approval queues modify_order, close_position and brackets too; sent once, whole, on approval."""

from __future__ import annotations

import asyncio
from typing import Any

from controls_helpers import call, place, resting, runtime, sent_orders
from test_controls_halt import cli

from ibkr_mcp.safety.approvals import decide, list_approvals
from ibkr_mcp.tools.approval_runner import process_approvals

MKT5 = {"symbol": "AAPL", "side": "BUY", "quantity": 5, "order_type": "MKT"}


def placements(sim: Any) -> int:
    """PLACE_ORDER requests the simulator received (orders, modifications and what-ifs)."""
    return sum(1 for m in sim.received() if m.name == "PLACE_ORDER")


async def queue(server: Any, sim: Any, tool: str, args: dict[str, Any], key: str) -> Any:
    """Preview, then act with the token under ``key``: it is queued, and IB received nothing."""
    preview = await call(server, tool, args)
    assert preview.stage == "preview" and preview.preview.refusals == []
    token = preview.preview.confirmation_token
    before = placements(sim)  # after the preview's what-if
    done = await call(server, tool, {**args, "confirmation_token": token, "idempotency_key": key})
    assert placements(sim) == before
    assert done.result.status == "PENDING_APPROVAL" and not done.result.sent
    return done.result


async def approve(server: Any, approval_id: str) -> Any:
    """A human approves; this server's runner sends it (one pass); the approval as it ends."""
    await decide(
        server.audit, approval_id, approve=True, by="cli:test", reason=None, now=server.now()
    )
    await process_approvals(server)
    return next(
        a for a in await list_approvals(server.audit, server.now()) if a.approval_id == approval_id
    )


async def test_modify_order_is_queued_and_sent_once_on_approval(
    controls_settings: Any, sim: Any, tmp_path: Any
) -> None:
    async with runtime(controls_settings(REQUIRE_APPROVAL="never")) as server:
        placed = await place(server, resting(1), "mod-appr-base")
        assert placed.sent
    async with runtime(controls_settings(REQUIRE_APPROVAL="always")) as server:
        args = {"order_id": placed.order_id, "limit_price": "101.00", "quantity": 2}
        queued = await queue(server, sim, "modify_order", args, "mod-appr-0001")
        before = placements(sim)
        assert queued.approval_id and queued.order.modifies == placed.order_id
        # Nothing reached the broker: the working order is as it was.
        order = sent_orders(sim)[0].fields
        assert (order.lmt_price, order.total_quantity) == (100, 1)
        # A retry of the key answers the approval's state; it never queues twice.
        again = await call(
            server, "modify_order",
            {**args, "confirmation_token": "x" * 10, "idempotency_key": "mod-appr-0001"},
        )  # fmt: skip
        assert again.result.status == "PENDING_APPROVAL"
        assert again.result.approval_id == queued.approval_id
        listed = await list_approvals(server.audit, server.now())
        assert [(a.tool, a.modifies) for a in listed] == [("modify_order", placed.order_id)]
        code, shown = await cli(tmp_path, "approvals", "list")  # what the human sees
        assert code == 0 and f"MODIFY order {placed.order_id} to BUY 2 AAPL" in shown, shown
        done = await approve(server, queued.approval_id)
        assert done.state == "sent" and done.order_id == placed.order_id
        assert placements(sim) == before + 1  # the modification, once
        order = sent_orders(sim)[0].fields
        assert (order.lmt_price, order.total_quantity) == (101, 2)
        await process_approvals(server)  # a second pass sends nothing more
        assert placements(sim) == before + 1
        assert len(sent_orders(sim)) == 1  # modified in place: no new order


async def test_close_position_is_queued_and_sent_once_on_approval(
    controls_settings: Any, sim: Any
) -> None:
    async with runtime(controls_settings(REQUIRE_APPROVAL="never")) as server:
        bought = await place(server, MKT5, "close-appr-buy")
        await call(server, "wait_for_order", {"order_id": bought.order_id, "until": "filled"})
        by_key = await call(server, "get_order_status", {"order_id": "close-appr-buy"})
        assert (by_key.order_id, by_key.status, by_key.approval_id) == (
            bought.order_id, "Filled", None,
        )  # fmt: skip
    async with runtime(controls_settings(REQUIRE_APPROVAL="always")) as server:
        queued = await queue(server, sim, "close_position", {"symbol": "AAPL"}, "close-appr-01")
        before = placements(sim)
        assert len(sent_orders(sim)) == 1
        done = await approve(server, queued.approval_id)
        assert done.state == "sent" and done.tool == "close_position"
        orders = sent_orders(sim)
        assert len(orders) == 2 and placements(sim) == before + 1
        assert (orders[1].fields.action, orders[1].fields.total_quantity) == ("SELL", 5)
        assert orders[1].fields.order_ref == "close-appr-01"


async def test_bracket_is_queued_whole_and_sent_whole(controls_settings: Any, sim: Any) -> None:
    bracket = resting(1, take_profit_price="250.00", stop_loss_price="90.00")
    async with runtime(controls_settings(REQUIRE_APPROVAL="always")) as server:
        queued = await place(server, bracket, "brkt-appr-001")
        assert queued.status == "PENDING_APPROVAL" and sent_orders(sim) == []
        assert queued.order.take_profit_price == 250 and queued.order.stop_loss_price == 90
        done = await approve(server, queued.approval_id)
        assert done.state == "sent"
        for _ in range(40):  # the children's rows are written behind the answer
            if len(sent_orders(sim)) == 3:
                break
            await asyncio.sleep(0.05)
        refs = sorted(o.fields.order_ref for o in sent_orders(sim))
        assert refs == ["brkt-appr-001", "brkt-appr-001.sl", "brkt-appr-001.tp"]
        await process_approvals(server)
        assert len(sent_orders(sim)) == 3


async def test_order_status_and_wait_follow_a_queued_order(
    controls_settings: Any, sim: Any
) -> None:
    async with runtime(controls_settings(REQUIRE_APPROVAL="always")) as server:
        queued = await place(server, MKT5, "status-appr-01")
        apr = queued.approval_id
        status = await call(server, "get_order_status", {"order_id": apr})
        assert (status.status, status.approval_state, status.order_id) == (
            "PENDING_APPROVAL", "pending", None,
        )  # fmt: skip
        by_key = await call(server, "get_order_status", {"order_id": "status-appr-01"})
        assert by_key.approval_id == apr and by_key.remaining == 5
        waited = await call(server, "wait_for_order", {"order_id": apr, "timeout_seconds": 1})
        assert waited.timed_out and waited.approval_state == "pending"
        assert sent_orders(sim) == []
        await decide(server.audit, apr, approve=True, by="cli:test", reason=None, now=server.now())
        # The runner sends it; the wait follows the approval into the broker's order.
        filled = await call(
            server, "wait_for_order", {"order_id": apr, "until": "filled", "timeout_seconds": 10}
        )
        assert (filled.status, filled.approval_state, filled.timed_out) == ("Filled", "sent", False)
        assert filled.order_id == sent_orders(sim)[0].order_id and len(sent_orders(sim)) == 1
        assert sum(f.quantity for f in filled.fills) == 5
        denied = await place(server, resting(2), "status-deny-01")
        await decide(
            server.audit, denied.approval_id, approve=False, by="cli:test", reason="no",
            now=server.now(),
        )  # fmt: skip
        over = await call(
            server, "wait_for_order", {"order_id": denied.approval_id, "timeout_seconds": 5}
        )
        assert (over.status, over.timed_out) == ("DENIED", False)
    assert len(sent_orders(sim)) == 1
