"""Compact order and fill records: the same fields as the models, the same values back, smaller."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from ibkr_mcp.gateway.records import FillRecord, OrderRecord
from ibkr_mcp.models import Fill, OrderInfo

AT = datetime(2026, 3, 2, 15, 0, 1, tzinfo=UTC)


def _order(i: int) -> OrderInfo:
    return OrderInfo(
        order_id=i, perm_id=1_000 + i, client_id=1, account="DU1234567", symbol="AAPL",
        con_id=265598, sec_type="STK", side="BUY", quantity=Decimal(1), order_type="LMT",
        limit_price=Decimal("190.10"), tif="DAY", status="Filled", filled=Decimal(1),
        remaining=Decimal(0), avg_fill_price=Decimal("190.05"), order_ref=f"key-{i:028d}",
        updated_at=AT,
    )  # fmt: skip


def _fill(i: int) -> Fill:
    return Fill(
        exec_id=f"0000e0d5.{i:08x}.01.01", order_id=i, perm_id=1_000 + i, account="DU1234567",
        symbol="AAPL", con_id=265598, side="SELL", quantity=Decimal(1), price=Decimal("190.05"),
        time=AT, commission=Decimal("1.00"), commission_currency="USD",
        realized_pnl=Decimal(0), order_ref=f"key-{i:028d}",
    )  # fmt: skip


def test_records_have_exactly_the_models_fields_in_order() -> None:
    # A field added to OrderInfo / Fill must be added to its record too (else it is lost).
    assert OrderRecord._fields == tuple(OrderInfo.model_fields)
    assert FillRecord._fields == tuple(Fill.model_fields)


def test_records_give_back_equal_models_with_the_same_json() -> None:
    info, fill = _order(7), _fill(7)
    back_info, back_fill = OrderRecord.of(info).info(), FillRecord.of(fill).fill()
    assert back_info == info and back_fill == fill
    assert back_info.model_dump_json() == info.model_dump_json()
    assert back_fill.model_dump_json() == fill.model_dump_json()
    assert OrderRecord.of(info).key == (1_007,)
    assert OrderRecord.of(info.model_copy(update={"perm_id": None})).key == (1, 7)


def test_shared_decimals_keep_their_exact_text() -> None:
    # 1 and 1.0 are equal Decimals; sharing one must never turn the other's text into it.
    one = OrderRecord.of(_order(1))
    other = OrderRecord.of(_order(2).model_copy(update={"quantity": Decimal("1.0")}))
    assert str(one.quantity) == "1" and str(other.quantity) == "1.0"


def _retained(build: Callable[[], list[object]]) -> int:
    """Bytes still allocated by what ``build`` returns (its temporaries are freed)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        size = tracemalloc.get_traced_memory()[0] - before
        assert len(kept) == 1000
        return size
    finally:
        tracemalloc.stop()


def test_a_thousand_records_take_under_half_of_the_models() -> None:
    models = _retained(lambda: [(_order(i), _fill(i)) for i in range(1000)])
    records = _retained(
        lambda: [(OrderRecord.of(_order(i)), FillRecord.of(_fill(i))) for i in range(1000)]
    )
    assert records * 2 < models, (records, models)
