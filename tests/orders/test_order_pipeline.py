"""Orders through the registry pipeline against the simulator: gates, tokens, idempotency, audit."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from order_helpers import MKT10, call, preview_and_place, sent_orders

from ibkr_mcp.errors import GateRefusedError, IbkrMcpError, IdempotencyConflictError


async def test_place_sends_exactly_one_order_with_key_as_order_ref(enabled: Any, sim: Any) -> None:
    result = await preview_and_place(enabled, MKT10, "key-00000001")
    assert result.sent is True
    assert result.order_id is not None
    assert result.status in ("Submitted", "Filled", "PreSubmitted")
    orders = sent_orders(sim)
    assert len(orders) == 1
    assert orders[0].fields.order_ref == "key-00000001"


async def test_gate_decision_commits_with_the_intent_right_before_it(enabled: Any) -> None:
    result = await preview_and_place(enabled, MKT10, "key-gate-0001")
    with sqlite3.connect(enabled.settings.audit_db_path) as conn:
        (gate,) = conn.execute(
            "SELECT seq FROM events WHERE kind = 'gate' AND correlation_id = ?",
            (result.correlation_id,),
        ).fetchall()
        (intent,) = conn.execute(
            "SELECT seq FROM order_events WHERE event = 'intent' AND idempotency_key = ?",
            ("key-gate-0001",),
        ).fetchall()
    assert intent[0] == gate[0] + 1  # one durable commit, the decision first


async def test_same_key_same_order_replays_and_sends_nothing(enabled: Any, sim: Any) -> None:
    first = await preview_and_place(enabled, MKT10, "key-00000002")
    second = await preview_and_place(enabled, MKT10, "key-00000002")
    assert second.replayed is True
    assert second.order_id == first.order_id
    assert len(sent_orders(sim)) == 1


async def test_same_key_different_order_conflicts(enabled: Any, sim: Any) -> None:
    await preview_and_place(enabled, MKT10, "key-00000003")
    with pytest.raises(IdempotencyConflictError):
        await preview_and_place(enabled, {**MKT10, "quantity": 11}, "key-00000003")
    assert len(sent_orders(sim)) == 1


async def test_token_is_single_use_and_bound_to_the_order(enabled_settings: Any, sim: Any) -> None:
    from ibkr_mcp.runtime import open_runtime

    # The same order under a second key would be a probable duplicate: switch that gate off.
    settings = enabled_settings.model_copy(update={"DUPLICATE_ORDER_WINDOW_SECONDS": 0})
    async with open_runtime(settings, wait_connected=5.0) as enabled:
        await _token_single_use(enabled, sim)


async def _token_single_use(enabled: Any, sim: Any) -> None:
    preview = await call(enabled, "preview_order", MKT10)
    args = {**MKT10, "confirmation_token": preview.confirmation_token}
    await call(enabled, "place_order", {**args, "idempotency_key": "key-00000004"})
    with pytest.raises(GateRefusedError) as reused:
        await call(enabled, "place_order", {**args, "idempotency_key": "key-00000005"})
    assert reused.value.details["gate"] == "confirmation"
    preview2 = await call(enabled, "preview_order", MKT10)
    other = {**MKT10, "quantity": 12, "confirmation_token": preview2.confirmation_token}
    with pytest.raises(GateRefusedError) as mismatch:
        await call(enabled, "place_order", {**other, "idempotency_key": "key-00000006"})
    assert mismatch.value.details["gate"] == "confirmation"
    assert len(sent_orders(sim)) == 1


async def test_huge_market_order_refused_by_default_limits(enabled: Any, sim: Any) -> None:
    huge = {**MKT10, "quantity": 5_000_000}
    preview = await call(enabled, "preview_order", huge)
    assert preview.would_send is False
    assert preview.refusals
    assert preview.confirmation_token is None
    with pytest.raises(GateRefusedError) as info:
        await call(
            enabled,
            "place_order",
            {
                **huge,
                "confirmation_token": "not-a-real-token-123",
                "idempotency_key": "huge-0001",
            },
        )
    assert info.value.details["gate"] in ("quantity", "notional")
    assert "Remedy" in str(info.value)
    assert sent_orders(sim) == []


async def test_kill_switch_refuses_then_releases(enabled: Any, sim: Any) -> None:
    switch = enabled.settings.kill_switch_path
    switch.parent.mkdir(parents=True, exist_ok=True)
    switch.write_text("maintenance\n")
    with pytest.raises(GateRefusedError) as info:
        await preview_and_place(enabled, MKT10, "kill-0001")
    assert info.value.details["gate"] == "kill_switch"
    assert sent_orders(sim) == []
    switch.unlink()
    result = await preview_and_place(enabled, MKT10, "kill-0002")
    assert result.sent is True
    assert len(sent_orders(sim)) == 1


async def test_live_account_in_paper_mode_refused(settings_for: Any) -> None:
    from ibkr_mcp.runtime import open_runtime
    from ibkr_mcp.simulator import Simulator

    live_sim = Simulator(seed=42, accounts=("U7654321",))
    port = await live_sim.start("127.0.0.1", 0)
    try:
        settings = settings_for(port, ORDERS_ENABLED=True)
        async with open_runtime(settings, wait_connected=5.0) as services:
            with pytest.raises(GateRefusedError) as info:
                await preview_and_place(services, MKT10, "live-0001")
            assert info.value.details["gate"] == "trading_mode"
        assert sent_orders(live_sim) == []
    finally:
        await live_sim.stop()


async def test_dry_run_when_orders_disabled(services: Any, sim: Any) -> None:
    result = await preview_and_place(services, MKT10, "dry-00001")
    assert (result.sent, result.status) == (False, "SIMULATED")
    assert result.passed is not None and "orders_enabled (dry_run)" in result.passed
    assert sent_orders(sim) == []


async def test_limit_order_rests_and_cancel_is_never_gated(enabled: Any, sim: Any) -> None:
    quote = await call(enabled, "get_quote", {"symbol": "AAPL"})
    price = (quote.bid * 97 / 100).quantize(quote.bid.__class__("0.01"))
    order = {
        "symbol": "AAPL",
        "side": "BUY",
        "quantity": 5,
        "order_type": "LMT",
        "limit_price": str(price),
    }
    placed = await preview_and_place(enabled, order, "lmt-00001")
    assert placed.status in ("Submitted", "PreSubmitted")
    # Cancelling works even with orders disabled and a kill switch in place.
    switch = enabled.settings.kill_switch_path
    switch.parent.mkdir(parents=True, exist_ok=True)
    switch.touch()
    disabled = dataclasses.replace(
        enabled, settings=enabled.settings.model_copy(update={"ORDERS_ENABLED": False})
    )
    cancelled = await call(disabled, "cancel_order", {"order_id": placed.order_id})
    assert cancelled.status in ("Cancelled", "ApiCancelled", "PendingCancel")
    status = await call(enabled, "get_order_status", {"order_id": placed.order_id})
    assert status.status in ("Cancelled", "ApiCancelled")


async def test_off_tick_limit_price_is_invalid_input(enabled: Any, sim: Any) -> None:
    order = {
        "symbol": "AAPL",
        "side": "BUY",
        "quantity": 1,
        "order_type": "LMT",
        "limit_price": "100.005",
    }
    with pytest.raises(IbkrMcpError) as info:
        await call(enabled, "preview_order", order)
    assert info.value.code == "INVALID_INPUT"
    assert "limit_price" in info.value.message
    assert sent_orders(sim) == []


async def test_fills_commissions_and_seed_queries_in_audit(enabled: Any, sim: Any) -> None:
    import asyncio

    result = await preview_and_place(enabled, MKT10, "fill-0001")
    db: Path = enabled.settings.audit_db_path
    for _ in range(50):
        with sqlite3.connect(db) as conn:
            kinds = {row[0] for row in conn.execute("SELECT kind FROM fills")}
        if {"execution", "commission"} <= kinds or "commission" in kinds:
            break
        await asyncio.sleep(0.05)
    with sqlite3.connect(db) as conn:
        fills = conn.execute("SELECT order_id, quantity, commission FROM fills").fetchall()
        assert any(row[0] == result.order_id for row in fills)
        assert any(row[2] is not None for row in fills), "commission not recorded"
        recent = conn.execute("SELECT * FROM orders ORDER BY timestamp DESC LIMIT 10").fetchall()
        assert recent
        trail = conn.execute(
            "SELECT correlation_id, orderId, action, timestamp FROM audit WHERE correlation_id = ?",
            (result.correlation_id,),
        ).fetchall()
        assert trail, "the call's correlation id is not in the audit view"


async def test_preview_and_place_rows_share_the_token_id(enabled: Any) -> None:
    from ibkr_mcp.audit import token_id

    preview = await call(enabled, "preview_order", MKT10)
    await call(
        enabled,
        "place_order",
        {
            **MKT10,
            "confirmation_token": preview.confirmation_token,
            "idempotency_key": "tokid-0001",
        },
    )
    expected = token_id(preview.confirmation_token)
    from ibkr_mcp.tools.registry import drain_audit

    await drain_audit()  # tool-call summary rows are written behind the answer
    with sqlite3.connect(enabled.settings.audit_db_path) as conn:
        preview_ids = {
            r[0] for r in conn.execute("SELECT token_id FROM order_events WHERE event='preview'")
        }
        raw = conn.execute(
            "SELECT COUNT(*) FROM events WHERE arguments LIKE ?",
            (f"%{preview.confirmation_token}%",),
        ).fetchone()[0]
        placed_args = [
            r[0]
            for r in conn.execute(
                "SELECT arguments FROM events WHERE tool='place_order' AND kind='tool_call'"
            )
        ]
    assert expected in preview_ids
    assert raw == 0, "a raw confirmation token reached the audit trail"
    assert any(expected in a for a in placed_args)


async def test_delayed_data_refuses_market_but_not_limit_orders(
    settings_for: Any, sim: Any
) -> None:
    from ibkr_mcp.runtime import open_runtime

    settings = settings_for(sim.port, ORDERS_ENABLED=True, MARKET_DATA_TYPE="delayed")
    async with open_runtime(settings, wait_connected=5) as services:
        quote = await call(services, "get_quote", {"symbol": "AAPL"})
        assert quote.market_data_type == "delayed"
        preview = await call(services, "preview_order", MKT10)
        assert [r.gate for r in preview.refusals] == ["price_band"]
        assert "delayed" in preview.refusals[0].reason
        limit = {**MKT10, "order_type": "LMT", "limit_price": str(quote.ask)}
        assert (await call(services, "preview_order", limit)).refusals == []
    assert sent_orders(sim) == []
