"""Idempotency across processes and audit files: the broker (orderRef) is the source of truth."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from order_helpers import MKT10, call, preview_and_place, sent_orders

from ibkr_mcp.errors import IbkrMcpError
from ibkr_mcp.runtime import open_runtime


def _settings(root: Path, port: int, name: str, **overrides: Any) -> Any:
    from ibkr_mcp.config import load_settings

    return load_settings(
        _env_file=None,
        DATA_DIR=root / name,
        IBKR_PORT=port,
        IBKR_CONNECT_TIMEOUT=2.0,
        IBKR_REQUEST_TIMEOUT=5.0,
        ORDERS_ENABLED=True,
        **overrides,
    )


async def test_second_data_dir_replays_instead_of_sending(tmp_path: Path, sim: Any) -> None:
    async with open_runtime(_settings(tmp_path, sim.port, "a"), wait_connected=5) as first:
        original = await preview_and_place(first, MKT10, "cross-dir-01")
    assert len(sent_orders(sim)) == 1
    # Another working directory: a different audit database that has never seen the key.
    async with open_runtime(_settings(tmp_path, sim.port, "b"), wait_connected=5) as second:
        again = await preview_and_place(second, MKT10, "cross-dir-01")
        assert again.replayed is True and again.sent is True
        assert again.order_id == original.order_id
        assert again.status == "Filled" and again.filled == 10
        assert again.avg_fill_price is not None
        # Recorded in b's audit: the next retry is answered from it, still sending nothing.
        rows = await second.audit.order_events_for_key("cross-dir-01")
        assert [r["event"] for r in rows] == ["intent", "sent"]
        assert '"found_at_broker":true' in rows[0]["detail"]
        # The day's value holds the adopted MKT order at its fill price (it counted 0).
        adopted = json.loads(rows[0]["detail"])
        assert Decimal(str(adopted["notional"])) == 10 * again.avg_fill_price
        third = await preview_and_place(second, MKT10, "cross-dir-01")
        assert third.replayed is True and third.order_id == original.order_id
    assert len(sent_orders(sim)) == 1
    assert [o.fields.order_ref for o in sent_orders(sim)] == ["cross-dir-01"]


async def test_concurrent_runtimes_with_two_data_dirs(tmp_path: Path, sim: Any) -> None:
    a = _settings(tmp_path, sim.port, "a", IBKR_CLIENT_ID=11)
    b = _settings(tmp_path, sim.port, "b", IBKR_CLIENT_ID=12)
    async with (
        open_runtime(a, wait_connected=5) as first,
        open_runtime(b, wait_connected=5) as second,
    ):
        one = await preview_and_place(first, MKT10, "two-procs-01")
        two = await preview_and_place(second, MKT10, "two-procs-01")
        assert two.replayed is True and two.perm_id == one.perm_id
        # Another client id sees a completed order without its order id, as at IB: the perm id
        # names it, and the id is reported only when the broker shows it (never a made-up 0).
        assert two.order_id in (one.order_id, None)
    assert len(sent_orders(sim)) == 1


async def test_audit_moved_aside_still_replays(tmp_path: Path, sim: Any) -> None:
    settings = _settings(tmp_path, sim.port, "a")
    async with open_runtime(settings, wait_connected=5) as first:
        original = await preview_and_place(first, MKT10, "moved-aside-1")
    db = Path(settings.audit_db_path)
    for suffix in ("", "-wal", "-shm"):  # the runbook's "move the broken database aside"
        part = db.with_name(db.name + suffix)
        if part.exists():
            part.rename(part.with_name(part.name + ".broken"))
    async with open_runtime(settings, wait_connected=5) as second:
        again = await preview_and_place(second, MKT10, "moved-aside-1")
        assert again.replayed is True and again.order_id == original.order_id
    assert len(sent_orders(sim)) == 1


async def test_same_key_different_order_at_broker_conflicts(tmp_path: Path, sim: Any) -> None:
    async with open_runtime(_settings(tmp_path, sim.port, "a"), wait_connected=5) as first:
        original = await preview_and_place(first, MKT10, "conflict-bk-1")
    async with open_runtime(_settings(tmp_path, sim.port, "b"), wait_connected=5) as second:
        with pytest.raises(IbkrMcpError) as info:
            await preview_and_place(second, {**MKT10, "quantity": 11}, "conflict-bk-1")
    assert info.value.code == "IDEMPOTENCY_CONFLICT"
    assert info.value.details["original_order_id"] == original.order_id
    assert len(sent_orders(sim)) == 1


async def test_conflict_names_the_original_order_id(enabled: Any, sim: Any) -> None:
    original = await preview_and_place(enabled, MKT10, "conflict-id-1")
    from ibkr_mcp.tools.registry import drain_audit

    await drain_audit()
    with pytest.raises(IbkrMcpError) as info:
        await preview_and_place(enabled, {**MKT10, "quantity": 3}, "conflict-id-1")
    assert info.value.code == "IDEMPOTENCY_CONFLICT"
    assert info.value.details["original_order_id"] == original.order_id


async def test_replay_after_restart_shows_the_fill(enabled_settings: Any, sim: Any) -> None:
    async with open_runtime(enabled_settings, wait_connected=5) as first:
        original = await preview_and_place(first, MKT10, "filled-rs-01")
        assert original.status == "Filled"
    async with open_runtime(enabled_settings, wait_connected=5) as second:
        again = await preview_and_place(second, MKT10, "filled-rs-01")
    assert again.replayed is True
    assert again.status == "Filled"
    assert again.filled == 10
    assert again.avg_fill_price == original.avg_fill_price


async def test_replay_after_gateway_lost_every_order(settings_for: Any) -> None:
    from ibkr_mcp.simulator import Simulator

    sim = Simulator(seed=42)
    port = await sim.start("127.0.0.1", 0)
    settings = settings_for(port, ORDERS_ENABLED=True)
    try:
        async with open_runtime(settings, wait_connected=5) as services:
            quote = await call(services, "get_quote", {"symbol": "AAPL"})
            price = str((quote.bid * 97 / 100).quantize(quote.bid.__class__("0.01")))
            order = {**MKT10, "order_type": "LMT", "limit_price": price}
            first = await preview_and_place(services, order, "lost-all-01")
            assert first.status == "Submitted"
            await sim.stop()
            sim = Simulator(seed=43)  # the gateway restarted with nothing
            await sim.start("127.0.0.1", port)
            for _ in range(100):
                if services.gateway.connected:
                    break
                await asyncio.sleep(0.05)
            again = await preview_and_place(services, order, "lost-all-01")
            assert again.replayed is True
            assert again.status != "Submitted"
            assert again.status == "Unknown"
            assert "no longer has an order" in again.message
            assert again.order_id == first.order_id
            assert sent_orders(sim) == []
    finally:
        await sim.stop()


async def test_replay_after_the_nightly_reset_names_the_original_order(
    tmp_path: Path, settings_for: Any
) -> None:
    # The DAY order expired in IB Gateway's nightly restart: IB lists it among completed orders,
    # which carry no order id. The replay still names order N (the audit's sent row knows it).
    from ibkr_mcp.simulator import Simulator

    sim = Simulator(seed=42, reset_refuse_seconds=0.1, control=False)
    port = await sim.start("127.0.0.1", 0)
    settings = settings_for(port, ORDERS_ENABLED=True)
    try:
        async with open_runtime(settings, wait_connected=5) as services:
            quote = await call(services, "get_quote", {"symbol": "AAPL"})
            price = str((quote.bid * 97 / 100).quantize(quote.bid.__class__("0.01")))
            order = {**MKT10, "order_type": "LMT", "limit_price": price}
            first = await preview_and_place(services, order, "nightly-01")
            assert first.status == "Submitted" and first.order_id is not None
            assert "1 DAY order(s) expired" in sim.drills.reset()
        async with open_runtime(settings, wait_connected=5) as services:
            again = await preview_and_place(services, order, "nightly-01")
        assert again.replayed is True and again.status == "Cancelled"
        assert again.order_id == first.order_id
        assert again.perm_id == first.perm_id
        assert len(sent_orders(sim)) == 1
    finally:
        await sim.stop()
