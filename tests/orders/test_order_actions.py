"""modify_order, close_position, cancel_all_orders, wait_for_order through the simulator."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from order_helpers import MKT10, call, preview_and_place, sent_orders

from ibkr_mcp.errors import IbkrMcpError


async def _resting(services: Any, key: str, symbol: str = "AAPL", qty: int = 5) -> Any:
    quote = await call(services, "get_quote", {"symbol": symbol})
    price = (quote.bid * 97 / 100).quantize(Decimal("0.01"))
    order = {"symbol": symbol, "side": "BUY", "quantity": qty, "order_type": "LMT",
             "limit_price": str(price)}  # fmt: skip
    placed = await preview_and_place(services, order, key)
    assert placed.status in ("Submitted", "PreSubmitted")
    return placed, price


async def _two_step(services: Any, tool: str, args: dict[str, Any], key: str) -> Any:
    preview = await call(services, tool, args)
    assert preview.stage == "preview"
    assert preview.preview.refusals == [], preview.preview.refusals
    token = preview.preview.confirmation_token
    return await call(services, tool, {**args, "confirmation_token": token, "idempotency_key": key})


async def test_modify_changes_the_working_order_in_place(enabled: Any, sim: Any) -> None:
    placed, price = await _resting(enabled, "mod-base-001")
    new_price = price + Decimal("0.50")
    args = {"order_id": placed.order_id, "limit_price": str(new_price), "quantity": 7}
    done = await _two_step(enabled, "modify_order", args, "mod-key-001")
    assert done.stage == "done"
    assert done.result.order_id == placed.order_id
    assert done.result.order.modifies == placed.order_id
    orders = sent_orders(sim)
    assert len(orders) == 1  # modified in place, not cancelled and re-sent
    assert orders[0].fields.lmt_price == new_price
    assert orders[0].fields.total_quantity == 7
    assert orders[0].fields.order_ref == "mod-base-001"  # reconciliation still finds it
    # The same key replays; nothing is sent again.
    again = await call(enabled, "modify_order", {**args, "confirmation_token": "x" * 10,
                                                  "idempotency_key": "mod-key-001"})  # fmt: skip
    assert again.result.replayed is True


async def test_modify_token_is_bound_to_order_and_fields(enabled: Any, sim: Any) -> None:
    placed, price = await _resting(enabled, "mod-base-002")
    args = {"order_id": placed.order_id, "limit_price": str(price + Decimal("0.10"))}
    preview = await call(enabled, "modify_order", args)
    other = {**args, "limit_price": str(price + Decimal("0.20"))}
    token = preview.preview.confirmation_token
    with pytest.raises(IbkrMcpError) as info:
        await call(
            enabled,
            "modify_order",
            {**other, "idempotency_key": "mod-key-002", "confirmation_token": token},
        )
    assert info.value.details["gate"] == "confirmation"
    assert sent_orders(sim)[0].fields.lmt_price == price


async def test_modify_a_filled_order_is_a_clear_error(enabled: Any) -> None:
    placed = await preview_and_place(enabled, MKT10, "mod-filled-1")
    await call(enabled, "wait_for_order", {"order_id": placed.order_id, "timeout_seconds": 5})
    with pytest.raises(IbkrMcpError) as info:
        await call(enabled, "modify_order", {"order_id": placed.order_id, "quantity": 3})
    assert info.value.code == "ORDER_REJECTED"
    assert "Filled" in info.value.message and "cannot be modified" in info.value.message


async def test_modify_gates_see_the_new_price(enabled: Any, sim: Any) -> None:
    placed, price = await _resting(enabled, "mod-base-003")
    preview = await call(
        enabled, "modify_order", {"order_id": placed.order_id, "limit_price": str(price * 2)}
    )
    assert [r.gate for r in preview.preview.refusals] == ["price_band"]
    assert preview.preview.confirmation_token is None


async def test_cancel_all_orders_of_one_symbol(enabled: Any, sim: Any) -> None:
    aapl, _ = await _resting(enabled, "cxl-all-0001")
    msft, _ = await _resting(enabled, "cxl-all-0002", symbol="MSFT")
    result = await call(enabled, "cancel_all_orders", {"symbol": "aapl"})
    assert [o.order_id for o in result.orders] == [aapl.order_id]
    assert result.cancelled == 1
    still = await call(enabled, "get_open_orders", {})
    assert [o.order_id for o in still.orders] == [msft.order_id]
    everything = await call(enabled, "cancel_all_orders", {})
    assert everything.cancelled == 1
    assert (await call(enabled, "get_open_orders", {})).orders == []


async def test_close_position_flattens_through_the_gates(enabled: Any, sim: Any) -> None:
    placed = await preview_and_place(enabled, MKT10, "close-open-1")
    await call(enabled, "wait_for_order", {"order_id": placed.order_id, "until": "filled"})
    with pytest.raises(IbkrMcpError) as info:
        await call(enabled, "close_position", {"symbol": "AAPL", "quantity": 11})
    assert "quantity" in info.value.message
    done = await _two_step(enabled, "close_position", {"symbol": "AAPL"}, "close-key-001")
    assert done.result.sent is True
    assert done.result.order.side == "SELL" and done.result.order.quantity == 10
    await call(enabled, "wait_for_order", {"order_id": done.result.order_id, "until": "filled"})
    positions = await call(enabled, "get_positions", {})
    assert all(p.symbol != "AAPL" for p in positions.positions)
    with pytest.raises(IbkrMcpError) as none:
        await call(enabled, "close_position", {"symbol": "AAPL"})
    assert none.value.code == "NOT_FOUND"


async def test_wait_for_order_returns_fills_or_times_out(enabled: Any) -> None:
    placed = await preview_and_place(enabled, MKT10, "wait-fill-01")
    filled = await call(enabled, "wait_for_order", {"order_id": placed.order_id, "until": "filled"})
    assert (filled.status, filled.timed_out, filled.remaining) == ("Filled", False, 0)
    assert sum(f.quantity for f in filled.fills) == 10
    status = await call(enabled, "get_order_status", {"order_id": placed.order_id})
    assert [f.exec_id for f in status.fills] == [f.exec_id for f in filled.fills]
    resting, _ = await _resting(enabled, "wait-rest-01")
    waited = await call(
        enabled, "wait_for_order", {"order_id": resting.order_id, "timeout_seconds": 1}
    )
    assert waited.timed_out is True and waited.status in ("Submitted", "PreSubmitted")


async def test_executions_since(enabled: Any) -> None:
    placed = await preview_and_place(enabled, MKT10, "since-fill-1")
    filled = await call(enabled, "wait_for_order", {"order_id": placed.order_id})
    first = filled.fills[0].time
    assert (await call(enabled, "get_executions", {"since": first.isoformat()})).fills
    later = (first + timedelta(seconds=1)).isoformat()
    assert (await call(enabled, "get_executions", {"since": later})).fills == []


async def test_pnl_per_position(enabled: Any) -> None:
    placed = await preview_and_place(enabled, MKT10, "pnl-pos-0001")
    await call(enabled, "wait_for_order", {"order_id": placed.order_id, "until": "filled"})
    pnl = await call(enabled, "get_pnl", {})
    [aapl] = [p for p in pnl.positions if p.symbol == "AAPL"]
    assert aapl.position == 10
    assert aapl.daily_pnl is not None and aapl.unrealized_pnl is not None


async def test_kill_switch_refuses_a_modification_at_the_broker(enabled: Any, sim: Any) -> None:
    placed, price = await _resting(enabled, "mod-kill-0001")
    args = {"order_id": placed.order_id, "limit_price": str(price + Decimal("0.10"))}
    preview = await call(enabled, "modify_order", args)
    switch = enabled.settings.kill_switch_path
    switch.parent.mkdir(parents=True, exist_ok=True)
    switch.touch()
    token = preview.preview.confirmation_token
    with pytest.raises(IbkrMcpError) as info:
        await call(enabled, "modify_order", {**args, "confirmation_token": token,
                                             "idempotency_key": "mod-kill-key1"})  # fmt: skip
    assert info.value.details["gate"] == "kill_switch"
    assert sent_orders(sim)[0].fields.lmt_price == price  # the broker's order is unchanged
