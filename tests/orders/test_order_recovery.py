"""Idempotency across crashes and dropped connections, and no order without an audit row."""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal
from typing import Any

import pytest
from order_helpers import MKT10, call, preview_and_place, sent_orders

from ibkr_mcp.config import Settings
from ibkr_mcp.errors import IbkrMcpError
from ibkr_mcp.models import ContractRef, OrderRequest
from ibkr_mcp.runtime import open_runtime
from ibkr_mcp.tools.trading import PlaceInput


async def test_restart_between_send_and_ack_reconciles(
    enabled_settings: Settings, sim: Any
) -> None:
    key = "crash-0000001"
    # Process 1 records the intent exactly as place_order does, sends the order, and dies
    # before it can record the acknowledgement.
    async with open_runtime(enabled_settings, wait_connected=5) as first:
        preview = await call(first, "preview_order", MKT10)
        params = PlaceInput(
            **MKT10, confirmation_token=preview.confirmation_token, idempotency_key=key
        )
        contract = await first.gateway.resolve_contract(ContractRef(symbol="AAPL"))
        await first.audit.record_order_event(
            correlation_id="crashed-process",
            event="intent",
            idempotency_key=key,
            account="DU1234567",
            symbol="AAPL",
            side="BUY",
            quantity=Decimal(10),
            order_type="MKT",
            detail={"request_fingerprint": params.request_fingerprint()},
        )
        await first.gateway.place_order(
            OrderRequest(
                account="DU1234567",
                contract=contract,
                side="BUY",
                quantity=Decimal(10),
                order_type="MKT",
                order_ref=key,
            )
        )
    assert len(sent_orders(sim)) == 1
    # Process 2 (a restart) retries with the same key: it reconciles, it does not re-send.
    async with open_runtime(enabled_settings, wait_connected=5) as second:
        result = await preview_and_place(second, MKT10, key)
        assert result.replayed is True
        assert result.sent is True
        assert result.order_id == sent_orders(sim)[0].order_id
    assert len(sent_orders(sim)) == 1


async def test_retry_after_hung_gateway_never_double_sends(settings_for: Any, sim: Any) -> None:
    # The quote cache lets the gates pass while the gateway hangs on the order itself.
    settings = settings_for(
        sim.port, ORDERS_ENABLED=True, IBKR_REQUEST_TIMEOUT=0.5, QUOTE_CACHE_SECONDS=60
    )
    async with open_runtime(settings, wait_connected=5) as services:
        preview = await call(services, "preview_order", MKT10)
        # The gateway answers the idempotency lookups, then stops answering at the order
        # itself: its fate is unknown.
        sim.pause_on("PLACE_ORDER")
        with pytest.raises(IbkrMcpError) as info:
            await call(
                services,
                "place_order",
                {
                    **MKT10,
                    "confirmation_token": preview.confirmation_token,
                    "idempotency_key": "hung-00001",
                },
            )
        assert info.value.code in ("GATEWAY_TIMEOUT", "GATEWAY_UNAVAILABLE")
        assert "SAME idempotency_key" in (info.value.remedy or "")
        sim.pause(False)
        result = None
        for _ in range(40):
            try:
                result = await preview_and_place(services, MKT10, "hung-00001")
                break
            except IbkrMcpError as exc:
                if exc.code not in ("GATEWAY_TIMEOUT", "GATEWAY_UNAVAILABLE", "GATEWAY_ERROR"):
                    raise
                await asyncio.sleep(0.1)
        assert result is not None and result.replayed is True
    assert len(sent_orders(sim)) == 1


async def test_retry_after_reconnect_replays(enabled: Any, sim: Any) -> None:
    first = await preview_and_place(enabled, MKT10, "drop-00001")
    await sim.stop()  # drops every connection
    await sim.start("127.0.0.1", sim.port)
    for _ in range(100):
        if enabled.gateway.connected:
            break
        await asyncio.sleep(0.05)
    second = await preview_and_place(enabled, MKT10, "drop-00001")
    assert second.replayed is True
    assert second.order_id == first.order_id
    assert len(sent_orders(sim)) == 1


async def test_unwritable_audit_blocks_orders(settings_for: Any, sim: Any) -> None:
    settings = settings_for(sim.port, ORDERS_ENABLED=True, AUDIT_BUSY_TIMEOUT_SECONDS=0.2)
    async with open_runtime(settings, wait_connected=5) as services:
        preview = await call(services, "preview_order", MKT10)
        # Another process holds the database's write lock past the audit's busy timeout.
        blocker = sqlite3.connect(settings.audit_db_path, timeout=0.1, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(IbkrMcpError) as info:
                await call(
                    services,
                    "place_order",
                    {
                        **MKT10,
                        "confirmation_token": preview.confirmation_token,
                        "idempotency_key": "audit-0001",
                    },
                )
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert info.value.code == "AUDIT_UNAVAILABLE"
    assert sent_orders(sim) == []


async def test_audit_failure_after_send_still_reports_sent(settings_for: Any, sim: Any) -> None:
    settings = settings_for(sim.port, ORDERS_ENABLED=True, AUDIT_BUSY_TIMEOUT_SECONDS=0.2)
    blocker: list[sqlite3.Connection] = []

    def lock_audit_when_broker_answers(_info: Any) -> None:
        # The broker has the order: from here on the audit database is locked by someone else.
        if not blocker:
            conn = sqlite3.connect(settings.audit_db_path, timeout=0.1, isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE")
            blocker.append(conn)

    async with open_runtime(settings, wait_connected=5) as services:
        services.gateway.add_order_status_listener(lock_audit_when_broker_answers)
        try:
            result = await preview_and_place(services, MKT10, "late-audit-01")
        finally:
            for conn in blocker:
                conn.execute("ROLLBACK")
                conn.close()
        assert result.sent is True
        assert result.order_id is not None
        # The trail missed the 'sent' row; a retry with the same key still never re-sends.
        from ibkr_mcp.tools.registry import drain_audit

        await drain_audit()
        again = await preview_and_place(services, MKT10, "late-audit-01")
        assert again.replayed is True
        assert again.order_id == result.order_id
    assert len(sent_orders(sim)) == 1


async def test_cancel_works_while_audit_is_locked(settings_for: Any, sim: Any) -> None:
    settings = settings_for(sim.port, ORDERS_ENABLED=True, AUDIT_BUSY_TIMEOUT_SECONDS=0.2)
    async with open_runtime(settings, wait_connected=5) as services:
        quote = await call(services, "get_quote", {"symbol": "AAPL"})
        price = str((quote.bid * 97 / 100).quantize(quote.bid.__class__("0.01")))
        order = {"symbol": "AAPL", "side": "BUY", "quantity": 5, "order_type": "LMT",
                 "limit_price": price}  # fmt: skip
        placed = await preview_and_place(services, order, "cancel-lock-1")
        blocker = sqlite3.connect(settings.audit_db_path, timeout=0.1, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            cancelled = await call(services, "cancel_order", {"order_id": placed.order_id})
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert cancelled.status in ("Cancelled", "ApiCancelled", "PendingCancel")
        assert "could not be written" in cancelled.message


async def test_rejected_order_retried_with_same_key_is_not_resent(settings_for: Any) -> None:
    from ibkr_mcp.simulator import Simulator

    poor = Simulator(seed=42, starting_cash=Decimal(1000))
    port = await poor.start("127.0.0.1", 0)
    try:
        settings = settings_for(port, ORDERS_ENABLED=True)
        order = {**MKT10, "quantity": 40}  # ~8,000 USD against 4,000 of buying power
        async with open_runtime(settings, wait_connected=5) as services:
            with pytest.raises(IbkrMcpError) as first:
                await preview_and_place(services, order, "reject-0001")
            assert first.value.code == "ORDER_REJECTED"
            with pytest.raises(IbkrMcpError) as again:
                await preview_and_place(services, order, "reject-0001")
            assert again.value.code == "ORDER_REJECTED"
            assert again.value.details.get("replayed") is True
        assert len(sent_orders(poor)) == 1
    finally:
        await poor.stop()


async def test_concurrent_calls_with_one_key_send_once(enabled: Any, sim: Any) -> None:
    preview = await call(enabled, "preview_order", MKT10)
    args = {
        **MKT10,
        "confirmation_token": preview.confirmation_token,
        "idempotency_key": "race-0001",
    }
    results = await asyncio.gather(
        call(enabled, "place_order", args), call(enabled, "place_order", args)
    )
    assert {r.order_id for r in results} == {results[0].order_id}
    assert sorted(r.replayed for r in results) == [False, True]
    assert len(sent_orders(sim)) == 1
