"""Flow limits proven at the broker: the simulator never receives what a gate refused."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from controls_helpers import call, dec, modify, place, resting, runtime, sent_orders

from ibkr_mcp.errors import GateRefusedError

MKT = {"symbol": "AAPL", "side": "BUY", "quantity": 10, "order_type": "MKT"}


async def refused_everywhere(services: Any, order: dict[str, Any], key: str, gate: str) -> None:
    """The preview names ``gate``, and place_order (with no token to be had) sends nothing."""
    preview = await call(services, "preview_order", order)
    assert [r.gate for r in preview.refusals][:1] == [gate]
    assert gate in next(r.reason for r in preview.refusals) or preview.refusals[0].reason
    with pytest.raises(GateRefusedError):
        await place(services, order, key)


async def test_order_rate_survives_a_restart_and_is_shared(
    controls_settings: Any, sim: Any
) -> None:
    settings = controls_settings(MAX_ORDERS_PER_MINUTE=3)
    async with runtime(settings) as first:
        for n in (1, 2):
            assert (await place(first, resting(n), f"rate-000{n}")).sent
    # A "restart": a new runtime (new memory) on the same audit database.
    async with runtime(settings) as second:
        assert (await place(second, resting(3), "rate-0003")).sent
        with pytest.raises(GateRefusedError) as refused:
            await place(second, resting(4), "rate-0004")
    assert refused.value.details["gate"] == "order_rate"
    assert "MAX_ORDERS_PER_MINUTE=3" in refused.value.message
    assert len(sent_orders(sim)) == 3


async def test_two_processes_share_the_daily_count(controls_settings: Any, sim: Any) -> None:
    a = controls_settings(MAX_ORDERS_PER_DAY=2)
    b = controls_settings(MAX_ORDERS_PER_DAY=2, IBKR_CLIENT_ID=7)
    async with runtime(a) as one, runtime(b) as two:
        assert (await place(one, resting(1), "day-0001")).sent
        assert (await place(two, resting(2), "day-0002")).sent
        with pytest.raises(GateRefusedError) as refused:
            await place(one, resting(3), "day-0003")
    assert refused.value.details["gate"] == "order_rate"
    assert "MAX_ORDERS_PER_DAY=2" in refused.value.message
    assert len(sent_orders(sim)) == 2


async def test_daily_notional_counts_every_sent_order(controls_settings: Any, sim: Any) -> None:
    settings = controls_settings(MAX_DAILY_NOTIONAL=450)
    async with runtime(settings) as services:
        assert (await place(services, resting(1), "notional-1")).sent  # 100
        assert (await place(services, resting(2), "notional-2")).sent  # 200
    async with runtime(settings) as services:  # a restart: the day's value is still known
        with pytest.raises(GateRefusedError) as refused:
            await place(services, resting(3), "notional-3")  # 300 more > 450
    assert refused.value.details["gate"] == "daily_notional"
    assert "300.00 already sent" in refused.value.message
    assert len(sent_orders(sim)) == 2


async def test_daily_notional_counts_what_a_modification_adds(
    controls_settings: Any, sim: Any
) -> None:
    settings = controls_settings(MAX_DAILY_NOTIONAL=450)
    async with runtime(settings) as services:
        placed = await place(services, resting(1), "grow-0001")  # 100
        change = {"order_id": placed.order_id, "quantity": 3}  # 300: adds 200
        assert (await modify(services, change, "grow-0002")).sent
        # The day now holds 300, not the 100 the order was placed with: 200 more is too much.
        with pytest.raises(GateRefusedError) as refused:
            await place(services, resting(2), "grow-0003")
    assert refused.value.details["gate"] == "daily_notional"
    assert "300.00 already sent" in refused.value.message
    orders = sent_orders(sim)
    assert [o.fields.total_quantity for o in orders] == [3]


async def test_near_the_daily_limit_an_order_can_still_be_reduced(
    controls_settings: Any, sim: Any
) -> None:
    # The order's value is already in the day's: a change is judged by what it adds. Counting
    # the new value whole (400 + 300 > 450) refused even making the order smaller.
    settings = controls_settings(MAX_DAILY_NOTIONAL=450)
    async with runtime(settings) as services:
        placed = await place(services, resting(4), "near-0001")  # 400 of 450
        smaller = await modify(services, {"order_id": placed.order_id, "quantity": 3}, "near-0002")
        assert smaller.sent
        # Raising it back past the limit (300 → 500 adds 200: 600 > 450) is still refused:
        # no token is issued, and the broker never hears of it.
        preview = await call(services, "modify_order", {"order_id": placed.order_id, "quantity": 5})
        refusal = next(r for r in preview.preview.refusals if r.gate == "daily_notional")
        assert "200.00 more than it stands" in refusal.reason
        assert preview.preview.confirmation_token is None and not preview.preview.would_send
    assert [o.fields.total_quantity for o in sent_orders(sim)] == [3]


async def test_raising_a_trail_limit_offset_counts_toward_the_day(
    controls_settings: Any, sim: Any
) -> None:
    # IB does not report a working order's limit offset: the order as it stood is valued
    # without one (the least it can be), so raising the offset is never counted as nothing.
    settings = controls_settings(MAX_DAILY_NOTIONAL=100_000, ALLOW_SHORT=True)
    order = {"symbol": "AAPL", "side": "SELL", "quantity": 2, "order_type": "TRAIL_LIMIT",
             "trailing_amount": "1.5", "limit_offset": "0.1"}  # fmt: skip
    async with runtime(settings) as services:
        placed = await place(services, order, "trail-0001")
        assert placed.sent
        change = {"order_id": placed.order_id, "limit_offset": "5"}
        assert (await modify(services, change, "trail-0002")).sent
        rows = await services.audit.order_events_for_key("trail-0002")
    recorded = dec(
        json.loads(next(r for r in rows if r["event"] == "intent")["detail"])["notional"]
    )
    assert recorded >= 2 * 5  # at least the quantity times the offset it gained


async def test_duplicate_under_another_key_is_refused(controls_settings: Any, sim: Any) -> None:
    async with runtime(controls_settings()) as services:
        first = await place(services, resting(1), "dup-00001")
        with pytest.raises(GateRefusedError) as refused:
            await place(services, resting(1), "dup-00002")
        # The same key is a retry: it replays, never re-sends.
        again = await place(services, resting(1), "dup-00001")
    assert refused.value.details["gate"] == "duplicate_order"
    assert "dup-00001" in (refused.value.remedy or "") and "wait" in (refused.value.remedy or "")
    assert again.replayed and again.order_id == first.order_id
    assert len(sent_orders(sim)) == 1


async def test_short_sale_refused_unless_held(controls_settings: Any, sim: Any) -> None:
    sell = {**MKT, "side": "SELL"}
    async with runtime(controls_settings()) as services:
        await refused_everywhere(services, sell, "short-0001", "short_sale")
        assert sent_orders(sim) == []
        assert (await place(services, MKT, "short-0002")).sent  # now 10 held
        assert (await place(services, sell, "short-0003")).sent
    assert [o.fields.action for o in sent_orders(sim)] == ["BUY", "SELL"]


async def test_short_allowed_when_configured(controls_settings: Any, sim: Any) -> None:
    async with runtime(controls_settings(ALLOW_SHORT=True)) as services:
        assert (await place(services, {**MKT, "side": "SELL"}, "short-ok-01")).sent
    assert len(sent_orders(sim)) == 1


async def test_concentration_limit(controls_settings: Any, sim: Any) -> None:
    # 0.1 % of 1,000,000 net liq = 1,000; a MKT buy is valued at ask × 1.6 (the 60 % band):
    # ten AAPL (~3,300) are too much, two (~670) fit.
    async with runtime(controls_settings(MAX_POSITION_PCT_OF_NET_LIQ="0.1")) as services:
        await refused_everywhere(services, MKT, "conc-0001", "concentration")
        assert (await place(services, {**MKT, "quantity": 2}, "conc-0002")).sent
    assert len(sent_orders(sim)) == 1


async def test_daily_loss_blocks_new_exposure_but_not_closing(settings_for: Any) -> None:
    from ibkr_mcp.simulator import Simulator
    from ibkr_mcp.simulator.clock import ManualClock

    clock = ManualClock(datetime(2026, 11, 25, 15, 0, tzinfo=UTC))
    moving = Simulator(seed=42, accounts=("DU1234567",), clock=clock)
    port = await moving.start("127.0.0.1", 0)
    try:
        settings = settings_for(port, ORDERS_ENABLED=True, MAX_DAILY_LOSS="1", PRICE_BAND_PCT=60)
        async with runtime(settings) as services:
            assert (await place(services, {**MKT, "quantity": 100}, "loss-0001")).sent
            # Let the (seeded) market move until the position has lost more than 1 USD today.
            for _ in range(60):
                clock.advance(600)
                moving.tick()
                await asyncio.sleep(0.05)  # the PnL stream reaches the client
                pnl = (await call(services, "get_pnl", {})).daily_pnl
                if pnl is not None and pnl < -1:
                    break
            assert pnl is not None and pnl < -1, pnl
            await refused_everywhere(services, {**MKT, "quantity": 5}, "loss-0002", "daily_loss")
            closing = await place(services, {**MKT, "side": "SELL", "quantity": 5}, "loss-0003")
            assert closing.sent
        assert [o.fields.action for o in moving.orders() if not o.what_if] == ["BUY", "SELL"]
    finally:
        await moving.stop()


async def test_trading_hours_refuse_outside_the_session(controls_settings: Any, sim: Any) -> None:
    saturday = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
    async with runtime(controls_settings(TRADING_HOURS_ONLY=True)) as services:
        services.now = lambda: saturday
        with pytest.raises(GateRefusedError) as refused:
            await place(services, resting(1), "hours-0001")
        assert refused.value.details["gate"] == "trading_hours"
        assert "outside regular trading hours" in refused.value.message
        wednesday = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # 10:00 New York
        services.now = lambda: wednesday
        assert (await place(services, resting(2), "hours-0002")).sent
    assert len(sent_orders(sim)) == 1


async def test_rejection_breaker_halts_until_a_human_resets(settings_for: Any, sim: Any) -> None:
    from ibkr_mcp.errors import OrderRejectedError
    from ibkr_mcp.safety.emergency import clear_emergency_stop
    from ibkr_mcp.simulator import Simulator

    poor = Simulator(seed=42, accounts=("DU1234567",), starting_cash=Decimal(50))
    port = await poor.start("127.0.0.1", 0)
    try:
        settings = settings_for(port, ORDERS_ENABLED=True, MAX_REJECTIONS=2, PRICE_BAND_PCT=60)
        async with runtime(settings) as services:
            for n in (1, 2):
                with pytest.raises(OrderRejectedError):
                    await place(services, {**MKT, "quantity": n}, f"rej-0000{n}")
        async with runtime(settings) as services:  # a restart keeps the halt
            with pytest.raises(GateRefusedError) as refused:
                await place(services, resting(1), "rej-00003")
            assert refused.value.details["gate"] == "rejection_breaker"
            health = await call(services, "get_health", {})
            assert health.state == "halted" and "System ready" not in health.summary
            await clear_emergency_stop(
                services.audit, settings, by="test-human", now=datetime.now(UTC)
            )
            # Cleared: the next order passes every gate again and reaches the broker (which,
            # with 50 USD of cash, rejects it on margin).
            with pytest.raises(OrderRejectedError):
                await place(services, resting(1), "rej-00004")
        assert len([o for o in poor.orders() if not o.what_if]) == 3
    finally:
        await poor.stop()


async def test_broker_orders_of_the_day_count_too(
    controls_settings: Any, sim: Any, tmp_path: Any
) -> None:
    # Another client with another audit file (or TWS) placed an order today: the broker knows.
    other = controls_settings(DATA_DIR=tmp_path / "other", IBKR_CLIENT_ID=9)
    async with runtime(other) as elsewhere:
        assert (await place(elsewhere, resting(1), "elsewhere-01")).sent
    async with runtime(controls_settings(MAX_ORDERS_PER_DAY=1)) as services:
        with pytest.raises(GateRefusedError) as refused:
            await place(services, resting(2), "here-000001")
    assert refused.value.details["gate"] == "order_rate"
    assert len(sent_orders(sim)) == 1


async def test_the_cli_previews_confirms_and_sends_a_modification_in_one_run(
    sim: Any, tmp_path: Any
) -> None:
    # Tokens live in the process that previewed: a CLI run given a key previews, asks and
    # sends in the same run (a token from another run would be unknown there).
    from test_controls_halt import cli

    env = {"IBKR_PORT": str(sim.port), "ORDERS_ENABLED": "true", "PRICE_BAND_PCT": "60"}
    order = ("place", "AAPL", "BUY", "1", "--order-type", "LMT", "--limit-price", "100")
    code, out = await cli(tmp_path, *order, "--idempotency-key", "cli-mod-0001", "--yes", **env)
    assert code == 0, out
    order_id = next(o.order_id for o in sent_orders(sim))
    args = ("modify", str(order_id), "--quantity", "2", "--idempotency-key", "cli-mod-0002")
    code, out = await cli(tmp_path, *args, **env)  # no answer at the prompt: not a yes
    assert code == 3 and "Not confirmed" in out, out
    assert [o.fields.total_quantity for o in sent_orders(sim)] == [1]
    code, out = await cli(tmp_path, *args, "--yes", **env)
    assert code == 0, out
    assert [o.fields.total_quantity for o in sent_orders(sim)] == [2]
    code, out = await cli(tmp_path, "modify", str(order_id), "--quantity", "3", **env)
    assert code == 0 and "preview" in out  # without a key: the preview alone, as before
    assert [o.fields.total_quantity for o in sent_orders(sim)] == [2]


async def test_short_sale_counts_what_working_sells_may_still_sell(
    controls_settings: Any, sim: Any
) -> None:
    async with runtime(controls_settings(DUPLICATE_ORDER_WINDOW_SECONDS=0)) as services:
        assert (await place(services, {**MKT, "quantity": 50}, "cover-0001")).sent  # 50 held
        ask = (await call(services, "get_quote", {"symbol": "AAPL"})).ask
        high = str((dec(ask) * dec("1.05")).quantize(dec("0.01")))
        rest = {"symbol": "AAPL", "side": "SELL", "quantity": 50, "order_type": "LMT",
                "limit_price": high, "tif": "GTC"}  # fmt: skip
        working = await place(services, rest, "cover-0002")
        assert working.sent and working.status != "Filled"
        # The whole position is already for sale: selling it again would end short.
        with pytest.raises(GateRefusedError) as refused:
            await place(services, {**rest, "quantity": 20}, "cover-0003")
        assert refused.value.details["gate"] == "short_sale"
        assert "50 already for sale in working or just-sent orders" in refused.value.message
        close = await call(services, "close_position", {"symbol": "AAPL", "quantity": 20})
        assert [r.gate for r in close.preview.refusals] == ["short_sale"]
        # Reducing the working sell frees what it no longer sells.
        assert (await modify(services, {"order_id": working.order_id, "quantity": 30},
                             "cover-0004")).sent  # fmt: skip
        assert (await place(services, {**rest, "quantity": 20}, "cover-0005")).sent
        with pytest.raises(GateRefusedError):
            await place(services, {**rest, "quantity": 1}, "cover-0006")
    sells = [o.fields.total_quantity for o in sent_orders(sim) if o.fields.action == "SELL"]
    assert sells == [30, 20]  # the modified order (50 → 30) and the 20


async def test_another_clients_option_order_counts_with_its_multiplier(
    controls_settings: Any, sim: Any, tmp_path: Any
) -> None:
    # Client 7 keeps its own audit: this server only learns of its order from the broker.
    other = controls_settings(ALLOWED_SEC_TYPES="STK,OPT", IBKR_CLIENT_ID=7,
                              AUDIT_DB_PATH=str(tmp_path / "other-audit.db"))  # fmt: skip
    mine = controls_settings(MAX_DAILY_NOTIONAL=6000)
    async with runtime(other) as b:
        chain = await call(b, "get_option_chain", {"symbol": "AAPL", "strikes_around_spot": 3})
        leg = {"symbol": "AAPL", "sec_type": "OPT", "expiry": chain.expirations[0],
               "strike": str(chain.strikes[len(chain.strikes) // 2]), "right": "C"}  # fmt: skip
        bid = (await call(b, "get_quote", leg)).bid
        price = (dec(bid) * dec("0.5")).quantize(dec("0.01"))  # rests below the market
        qty = int(7000 / (100 * price)) + 1  # worth ~7,000 with the multiplier, ~70 without
        assert (await place(b, {**leg, "side": "BUY", "quantity": qty, "order_type": "LMT",
                                "limit_price": str(price)}, "opt-rest-01")).sent  # fmt: skip
        async with runtime(mine) as a:
            stock = {**MKT, "quantity": 2}
            value = (await call(a, "preview_order", stock)).order.estimated_notional
            # Counted per unit (50 × price) the stock order fits; per contract it does not.
            assert value + qty * price <= 6000 < value + qty * 100 * price
            with pytest.raises(GateRefusedError) as refused:
                await place(a, stock, "stock-after-opt")
    assert refused.value.details["gate"] == "daily_notional"
    assert f"{qty * 100 * price:,.2f} already sent" in refused.value.message
