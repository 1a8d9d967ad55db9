"""Limits over time hold for orders decided at the same moment, proven at the broker.

Concurrent calls each read the flow counters before any of them recorded its intent, so every
one of them saw room under the limit (12 concurrent orders all passed a limit of 2). Now one
order at a time goes from its gates to its durable intent in a process, and an intent row
judged on counters older than another intent is refused by the audit's writer (any process),
so the order is judged again.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from controls_helpers import call, modify, place, resting, runtime, sent_orders

from ibkr_mcp.errors import GateRefusedError
from ibkr_mcp.safety.halt import engage_halt


async def _previews(services: Any, orders: list[dict[str, Any]]) -> list[str]:
    tokens = []
    for order in orders:
        preview = await call(services, "preview_order", order)
        assert preview.confirmation_token, preview.refusals
        tokens.append(preview.confirmation_token)
    return tokens


async def _race(
    services: Any, orders: list[dict[str, Any]], tokens: list[str], tag: str
) -> list[Any]:
    """Place every order at once; each outcome (a result or the exception)."""
    calls = [
        call(services, "place_order",
             {**order, "confirmation_token": token, "idempotency_key": f"{tag}-{n:04d}"})
        for n, (order, token) in enumerate(zip(orders, tokens, strict=True))
    ]  # fmt: skip
    return await asyncio.gather(*calls, return_exceptions=True)


def _refused_by(outcomes: list[Any]) -> list[str]:
    return [o.details["gate"] for o in outcomes if isinstance(o, GateRefusedError)]


async def test_concurrent_orders_share_the_rate_limit(controls_settings: Any, sim: Any) -> None:
    settings = controls_settings(MAX_ORDERS_PER_MINUTE=2)
    orders = [resting(n) for n in range(1, 9)]
    async with runtime(settings) as services:
        tokens = await _previews(services, orders)
        outcomes = await _race(services, orders, tokens, "rate")
    assert len(sent_orders(sim)) == 2
    assert sum(1 for o in outcomes if getattr(o, "sent", False)) == 2
    assert _refused_by(outcomes) == ["order_rate"] * 6


async def test_concurrent_orders_share_the_daily_notional(controls_settings: Any, sim: Any) -> None:
    settings = controls_settings(MAX_DAILY_NOTIONAL=450)
    orders = [resting(n) for n in range(1, 5)]  # 100 .. 400 each: 1,000 in all
    async with runtime(settings) as services:
        tokens = await _previews(services, orders)
        outcomes = await _race(services, orders, tokens, "value")
    sent = sent_orders(sim)
    assert sent and sum(o.fields.total_quantity * 100 for o in sent) <= 450
    assert set(_refused_by(outcomes)) == {"daily_notional"}
    assert len(sent) + len(_refused_by(outcomes)) == len(orders)


async def test_concurrent_duplicates_send_one(controls_settings: Any, sim: Any) -> None:
    settings = controls_settings(DUPLICATE_ORDER_WINDOW_SECONDS=30)
    orders = [resting(2)] * 5  # the same order under five keys
    async with runtime(settings) as services:
        tokens = [
            (await call(services, "preview_order", order)).confirmation_token for order in orders
        ]
        outcomes = await _race(services, orders, tokens, "dup")
    assert len(sent_orders(sim)) == 1
    assert _refused_by(outcomes) == ["duplicate_order"] * 4


async def test_two_processes_racing_share_the_rate_limit(controls_settings: Any, sim: Any) -> None:
    # Two runtimes on one audit database: two processes' decision locks are not shared, so
    # only the intent row's check (under the database's write lock) keeps the count.
    a = controls_settings(MAX_ORDERS_PER_MINUTE=3)
    b = controls_settings(MAX_ORDERS_PER_MINUTE=3, IBKR_CLIENT_ID=7)
    async with runtime(a) as one, runtime(b) as two:
        first = [resting(n) for n in range(1, 5)]
        second = [resting(n) for n in range(5, 9)]
        tokens_one = await _previews(one, first)
        tokens_two = await _previews(two, second)
        outcomes = await asyncio.gather(
            _race(one, first, tokens_one, "one"), _race(two, second, tokens_two, "two")
        )
    flat = [o for batch in outcomes for o in batch]
    assert len(sent_orders(sim)) == 3
    assert _refused_by(flat) == ["order_rate"] * 5


async def test_a_stop_engaged_after_the_gates_keeps_the_order_from_the_broker(
    controls_settings: Any, sim: Any
) -> None:
    settings = controls_settings()
    order = resting(1)
    async with runtime(settings) as services:
        token = (await _previews(services, [order]))[0]
        # Another process holds the audit's write lock: the order passes its gates and then
        # waits for its intent row, which is when the emergency stop is engaged elsewhere.
        blocker = sqlite3.connect(settings.audit_db_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        placing = asyncio.ensure_future(
            call(services, "place_order",
                 {**order, "confirmation_token": token, "idempotency_key": "late-stop-1"})
        )  # fmt: skip
        # It cannot get past its intent row while the lock is held; give it time to get there.
        await asyncio.sleep(1.0)
        assert not placing.done()
        engage_halt(settings.halt_state_path, source="emergency_stop", reason="drill",
                    by="cli:test", now=datetime.now(UTC))  # fmt: skip
        blocker.execute("ROLLBACK")
        blocker.close()
        with pytest.raises(GateRefusedError) as stopped:
            await placing
        rows = await services.audit.order_events_for_key("late-stop-1")
        # A retry with the same key replays the stop instead of calling the order uncertain.
        with pytest.raises(GateRefusedError) as again:
            await call(
                services,
                "place_order",
                {**order, "confirmation_token": token, "idempotency_key": "late-stop-1"},
            )
    assert stopped.value.details["gate"] == "emergency_stop"
    assert stopped.value.details["after_intent"] is True
    assert "drill" in stopped.value.message
    assert [r["event"] for r in rows][-2:] == ["intent", "refused"]
    assert again.value.details["gate"] == "emergency_stop"
    assert sent_orders(sim) == []


async def test_concurrent_sells_cannot_sell_more_than_is_held(
    controls_settings: Any, sim: Any
) -> None:
    settings = controls_settings(DUPLICATE_ORDER_WINDOW_SECONDS=0)
    async with runtime(settings) as services:
        buy = {"symbol": "AAPL", "side": "BUY", "quantity": 50, "order_type": "MKT"}
        token = (await _previews(services, [buy]))[0]
        assert (await _race(services, [buy], [token], "hold"))[0].sent  # 50 held
        ask = (await call(services, "get_quote", {"symbol": "AAPL"})).ask
        high = str((ask * Decimal("1.05")).quantize(Decimal("0.01")))
        sells = [{"symbol": "AAPL", "side": "SELL", "quantity": n, "order_type": "LMT",
                  "limit_price": high, "tif": "GTC"} for n in (50, 40, 30)]  # fmt: skip
        outcomes = await _race(services, sells, await _previews(services, sells), "sell")
    sold = [o.fields.total_quantity for o in sent_orders(sim) if o.fields.action == "SELL"]
    assert sum(sold) <= 50 and sold
    assert set(_refused_by(outcomes)) == {"short_sale"}


async def test_a_bracket_stop_can_be_moved(controls_settings: Any, sim: Any) -> None:
    async with runtime(controls_settings()) as services:
        quote = await call(services, "get_quote", {"symbol": "AAPL"})
        cents = Decimal("0.01")
        entry = {
            "symbol": "AAPL", "side": "BUY", "quantity": 10, "order_type": "LMT",
            "limit_price": str(quote.ask),
            "take_profit_price": str((quote.ask * Decimal("1.03")).quantize(cents)),
            "stop_loss_price": str((quote.bid * Decimal("0.97")).quantize(cents)),
        }  # fmt: skip
        placed = await place(services, entry, "brkt-move-01")
        assert placed.sent and placed.status == "Filled"
        stop = next(leg for leg in placed.legs if leg.role == "stop_loss")
        tighter = str((quote.bid * Decimal("0.98")).quantize(Decimal("0.01")))
        moved = await modify(services, {"order_id": stop.order_id, "stop_price": tighter},
                             "brkt-move-02")  # fmt: skip
        assert moved.sent
    (at_broker,) = [o for o in sent_orders(sim) if o.order_id == stop.order_id]
    assert Decimal(str(at_broker.fields.aux_price)) == Decimal(tighter)
