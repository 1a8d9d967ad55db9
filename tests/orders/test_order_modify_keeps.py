"""A modification changes what it names and keeps the rest (GTD time, trailing limit offset)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from order_helpers import call, preview_and_place, sent_orders


async def _modify(services: Any, change: dict[str, Any], key: str) -> Any:
    preview = await call(services, "modify_order", change)
    assert preview.preview.confirmation_token, preview.preview.refusals
    token = preview.preview.confirmation_token
    done = await call(
        services, "modify_order", {**change, "confirmation_token": token, "idempotency_key": key}
    )
    return done.result


async def _mid(services: Any) -> Decimal:
    quote = await call(services, "get_quote", {"symbol": "AAPL"})
    return ((quote.bid + quote.ask) / 2).quantize(Decimal("0.01"))


async def test_a_price_change_keeps_the_gtd_time(enabled: Any, sim: Any) -> None:
    until = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    price = (await _mid(enabled) * Decimal("0.98")).quantize(Decimal("0.01"))
    order = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "order_type": "LMT",
             "limit_price": str(price), "tif": "GTD", "good_till": until.isoformat()}  # fmt: skip
    placed = await preview_and_place(enabled, order, "keep-gtd-0001")
    assert placed.sent
    changed = await _modify(enabled, {"order_id": placed.order_id,
                                      "limit_price": str(price - 1)}, "keep-gtd-0002")  # fmt: skip
    assert changed.sent
    (at_broker,) = sent_orders(sim)
    assert at_broker.fields.tif == "GTD"
    assert at_broker.fields.good_till_date == until.strftime("%Y%m%d %H:%M:%S UTC")
    assert Decimal(str(at_broker.fields.lmt_price)) == price - 1


async def test_a_quantity_change_keeps_the_trailing_limit_offset(enabled: Any, sim: Any) -> None:
    bought = {"symbol": "AAPL", "side": "BUY", "quantity": 2, "order_type": "MKT"}
    assert (await preview_and_place(enabled, bought, "keep-trl-0000")).sent  # 2 held
    order = {"symbol": "AAPL", "side": "SELL", "quantity": 1, "order_type": "TRAIL_LIMIT",
             "trailing_amount": "1.5", "limit_offset": "0.1"}  # fmt: skip
    placed = await preview_and_place(enabled, order, "keep-trl-0001")
    assert placed.sent
    status = await call(enabled, "get_order_status", {"order_id": placed.order_id})
    assert status.order.limit_offset == Decimal("0.1")
    changed = await _modify(enabled, {"order_id": placed.order_id, "quantity": 2},
                            "keep-trl-0002")  # fmt: skip
    assert changed.sent
    at_broker = sent_orders(sim)[-1]
    assert at_broker.fields.total_quantity == 2
    assert Decimal(str(at_broker.fields.lmt_price_offset)) == Decimal("0.1")
