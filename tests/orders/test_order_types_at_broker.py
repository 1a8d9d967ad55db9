"""Every order type, time in force and a bracket, proven at the simulator's side of the socket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from order_helpers import call, preview_and_place, sent_orders

FIXED_NOW = datetime(2026, 11, 25, 15, 0, 0, tzinfo=UTC)  # the `sim` fixture's clock


@pytest.fixture
def enabled_settings(settings_for: Any, sim: Any) -> Any:
    """Orders enabled; SELL stops without a position allowed (the short-sale gate has its own
    tests): these tests are about order shapes."""
    return settings_for(sim.port, ORDERS_ENABLED=True, ALLOW_SHORT=True)


async def _mid(services: Any) -> Decimal:
    quote = await call(services, "get_quote", {"symbol": "AAPL"})
    return ((quote.bid + quote.ask) / 2).quantize(Decimal("0.01"))


def _pct(price: Decimal, pct: str) -> str:
    return str((price * (1 + Decimal(pct) / 100)).quantize(Decimal("0.01")))


# (order fields relative to mid in %, IB order type at the broker, (field, broker attr))
TYPES: list[tuple[dict[str, Any], str, list[tuple[str, str]]]] = [
    ({"side": "BUY", "order_type": "MKT"}, "MKT", []),
    ({"side": "BUY", "order_type": "LMT", "limit_price": "-1"}, "LMT",
     [("limit_price", "lmt_price")]),
    ({"side": "SELL", "order_type": "STP", "stop_price": "-2"}, "STP",
     [("stop_price", "aux_price")]),
    ({"side": "SELL", "order_type": "STP_LMT", "stop_price": "-2", "limit_price": "-3"}, "STP LMT",
     [("stop_price", "aux_price"), ("limit_price", "lmt_price")]),
    ({"side": "SELL", "order_type": "TRAIL", "trailing_amount": "1.5"}, "TRAIL",
     [("trailing_amount", "aux_price")]),
    ({"side": "SELL", "order_type": "TRAIL", "trailing_percent": "1"}, "TRAIL",
     [("trailing_percent", "trailing_percent")]),
    ({"side": "SELL", "order_type": "TRAIL_LIMIT", "trailing_amount": "1.5", "limit_offset": "0.1"},
     "TRAIL LIMIT", [("trailing_amount", "aux_price")]),
    ({"side": "BUY", "order_type": "MIT", "stop_price": "-2"}, "MIT",
     [("stop_price", "aux_price")]),
    ({"side": "BUY", "order_type": "LIT", "stop_price": "-2", "limit_price": "-2"}, "LIT",
     [("stop_price", "aux_price")]),
    ({"side": "BUY", "order_type": "MOC"}, "MOC", []),
    ({"side": "BUY", "order_type": "LOC", "limit_price": "0"}, "LOC",
     [("limit_price", "lmt_price")]),
]  # fmt: skip
RELATIVE = ("limit_price", "stop_price")


@pytest.mark.parametrize(("fields", "ib_type", "checks"), TYPES, ids=lambda v: str(v)[:24])
async def test_every_order_type_reaches_the_broker(
    enabled: Any, sim: Any, fields: dict[str, Any], ib_type: str, checks: list[tuple[str, str]]
) -> None:
    mid = await _mid(enabled)
    order = {"symbol": "AAPL", "quantity": 1, **fields}
    for name in RELATIVE:
        if name in order:
            order[name] = _pct(mid, order[name])
    key = f"type-{ib_type.replace(' ', '-')}-{len(order)}"
    placed = await preview_and_place(enabled, order, key)
    assert placed.sent is True, placed
    [sent] = sent_orders(sim)
    assert sent.fields.order_type == ib_type
    assert sent.fields.order_ref == key
    for ours, theirs in checks:
        assert Decimal(str(getattr(sent.fields, theirs))) == Decimal(str(order[ours]))
    info = await call(enabled, "get_order_status", {"order_id": placed.order_id})
    assert info.order.order_type == fields["order_type"]


@pytest.mark.parametrize("tif", ["DAY", "GTC", "IOC", "FOK", "GTD", "OPG"])
async def test_every_time_in_force_reaches_the_broker(enabled: Any, sim: Any, tif: str) -> None:
    mid = await _mid(enabled)
    order: dict[str, Any] = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "order_type": "LMT",
                             "limit_price": _pct(mid, "-1"), "tif": tif.lower(),
                             "outside_rth": tif == "GTC"}  # fmt: skip
    # Ahead of both clocks: ours (a past good_till is refused) and the simulator's fixed one.
    good_till = max(FIXED_NOW, datetime.now(UTC)) + timedelta(days=2)
    if tif == "GTD":
        order["good_till"] = good_till.isoformat()
    placed = await preview_and_place(enabled, order, f"tif-{tif}-0001")
    assert placed.sent is True
    [sent] = sent_orders(sim)
    assert sent.fields.tif == tif
    assert sent.fields.outside_rth is (tif == "GTC")
    if tif == "GTD":
        assert sent.fields.good_till_date.startswith(good_till.strftime("%Y%m%d"))
    if tif in ("IOC", "FOK"):  # not marketable: cancelled at once, never resting
        final = await call(enabled, "wait_for_order", {"order_id": placed.order_id})
        assert final.status == "Cancelled"


async def test_bracket_all_legs_at_the_broker_and_oca_when_the_target_fills(
    enabled: Any, sim: Any
) -> None:
    mid = await _mid(enabled)
    order = {"symbol": "AAPL", "side": "BUY", "quantity": 5, "order_type": "LMT",
             "limit_price": _pct(mid, "-1"), "take_profit_price": _pct(mid, "3"),
             "stop_loss_price": _pct(mid, "-3"), "stop_loss_limit_price": _pct(mid, "-3.5"),
             "tif": "GTC"}  # fmt: skip
    placed = await preview_and_place(enabled, order, "bracket-0001")
    assert placed.sent is True
    assert [leg.role for leg in placed.legs] == ["take_profit", "stop_loss"]
    parent, take, stop = sent_orders(sim)
    assert (parent.fields.order_type, take.fields.order_type, stop.fields.order_type) == (
        "LMT", "LMT", "STP LMT",
    )  # fmt: skip
    assert take.fields.parent_id == stop.fields.parent_id == parent.fields.order_id
    assert take.fields.oca_group == stop.fields.oca_group == "oca.bracket-0001"
    assert [o.fields.order_ref for o in (parent, take, stop)] == [
        "bracket-0001", "bracket-0001.tp", "bracket-0001.sl",
    ]  # fmt: skip
    assert [o.fields.transmit for o in (parent, take, stop)] == [False, False, True]
    assert {o.fields.action for o in (take, stop)} == {"SELL"}
    # The entry fills (modify it to marketable); then the target fills; the stop is cancelled.
    quote = await call(enabled, "get_quote", {"symbol": "AAPL"})
    await _modify(enabled, placed.order_id, {"limit_price": str(quote.ask)}, "brk-mod-01")
    await call(enabled, "wait_for_order", {"order_id": placed.order_id, "until": "filled"})
    tp_id, sl_id = (leg.order_id for leg in placed.legs)
    await _modify(enabled, tp_id, {"limit_price": str(quote.bid)}, "brk-mod-02")
    done = await call(enabled, "wait_for_order", {"order_id": tp_id, "until": "filled"})
    assert done.status == "Filled"
    stopped = await call(enabled, "wait_for_order", {"order_id": sl_id})
    assert stopped.status == "Cancelled"
    positions = await call(enabled, "get_positions", {})
    assert all(p.symbol != "AAPL" for p in positions.positions)


async def _modify(services: Any, order_id: int, fields: dict[str, Any], key: str) -> Any:
    args = {"order_id": order_id, **fields}
    preview = await call(services, "modify_order", args)
    assert preview.preview.refusals == [], preview.preview.refusals
    token = preview.preview.confirmation_token
    done = await call(services, "modify_order", {**args, "confirmation_token": token,
                                                 "idempotency_key": key})  # fmt: skip
    assert done.result.sent is True
    return done
