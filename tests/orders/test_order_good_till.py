"""A GTD time already past is bad input (naming good_till), never an order IB must reject."""

from __future__ import annotations

from typing import Any

import pytest
from order_helpers import call

from ibkr_mcp.errors import InvalidInputError

PAST_GTD = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "order_type": "LMT",
            "limit_price": "200.00", "tif": "GTD", "good_till": "2020-01-01T00:00:00Z"}  # fmt: skip


@pytest.mark.parametrize("tool", ["preview_order", "place_order"])
async def test_a_past_good_till_is_refused_before_the_broker(
    enabled: Any, sim: Any, tool: str
) -> None:
    args = dict(PAST_GTD)
    if tool == "place_order":
        args.update(confirmation_token="t" * 20, idempotency_key="gtd-past-0001")
    with pytest.raises(InvalidInputError) as refused:
        await call(enabled, tool, args)
    assert refused.value.details["errors"][0]["field"] == "good_till"
    assert "not in the future" in refused.value.message
    assert sim.orders() == []  # not even a what-if reached the simulator


async def test_a_modification_to_a_past_good_till_is_refused(enabled: Any, sim: Any) -> None:
    from order_helpers import preview_and_place, sent_orders

    resting = {**PAST_GTD, "tif": "GTC"}
    del resting["good_till"]
    placed = await preview_and_place(enabled, resting, "gtd-mod-0001")
    assert placed.sent
    change = {"order_id": placed.order_id, "tif": "GTD", "good_till": "2020-01-01T00:00:00Z"}
    with pytest.raises(InvalidInputError) as refused:
        await call(enabled, "modify_order", change)
    assert refused.value.details["errors"][0]["field"] == "good_till"
    (order,) = sent_orders(sim)
    assert order.fields.tif == "GTC"
