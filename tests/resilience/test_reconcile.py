"""Reconcile after a reconnect: what happened during the outage lands in the audit once."""

from __future__ import annotations

import sqlite3
from typing import Any

from resilience_helpers import wait_until

from ibkr_mcp.runtime import open_runtime
from ibkr_mcp.tools import build_registry

REGISTRY = build_registry()
ORDER = {"symbol": "AAPL", "side": "BUY", "quantity": 3, "order_type": "MKT"}


async def _call(services: Any, tool: str, args: dict[str, Any]) -> Any:
    return await REGISTRY.call(tool, args, services=services, surface="internal")


def _rows(db: Any, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


async def test_uncertain_order_filled_during_outage_is_reconciled_once(
    settings_for: Any, sim: Any
) -> None:
    settings = settings_for(sim.port, ORDERS_ENABLED=True, IBKR_REQUEST_TIMEOUT=1.0)
    db = settings.audit_db_path
    async with open_runtime(settings, wait_connected=5.0) as services:
        gw = services.gateway
        preview = (await _call(services, "preview_order", ORDER)).output
        # The gateway sits on the order until our place times out ("uncertain"), then fills
        # it, but its answers never reach us: the socket drops first.
        sim.pause_on("PLACE_ORDER")
        place = {
            **ORDER,
            "confirmation_token": preview.confirmation_token,
            "idempotency_key": "outage-1",
        }
        try:
            await _call(services, "place_order", place)
        except Exception as exc:  # noqa: BLE001 - the timeout is the point of the test
            assert getattr(exc, "code", "") == "GATEWAY_TIMEOUT", exc
        else:
            raise AssertionError("the place should have timed out")
        sim.drills.latency(5000)
        sim.pause(False)
        sent = [o for o in sim.orders() if not o.what_if]
        assert len(sent) == 1 and sent[0].status == "Filled"
        events = [
            r[0]
            for r in _rows(
                db, "SELECT event FROM order_events WHERE idempotency_key='outage-1' ORDER BY seq"
            )
        ]
        assert events[-1] == "uncertain"
        assert _rows(db, "SELECT COUNT(*) FROM fills")[0][0] == 0
        sim.drills.latency(0)
        sim.drills.drop()
        await wait_until(lambda: gw.connected and gw.conn.reconnects == 1, timeout=5)
        await wait_until(
            lambda: _rows(db, "SELECT COUNT(*) FROM fills WHERE kind='execution'")[0][0] >= 1
        )
        await wait_until(
            lambda: any(
                r[0] == "Filled"
                for r in _rows(
                    db,
                    "SELECT status FROM order_events WHERE idempotency_key='outage-1'",
                )
            )
        )
        # A second reconnect (the nightly reset) records nothing new.
        snapshot = (
            _rows(db, "SELECT COUNT(*) FROM fills"),
            _rows(db, "SELECT COUNT(*) FROM order_events WHERE idempotency_key='outage-1'"),
        )
        sim.drills.reset(refuse_seconds=0.3)
        await wait_until(lambda: gw.connected and gw.conn.reconnects == 2, timeout=5)
        await services.gateway.conn.guard(_settle(), 2.0, "settle")
        again = (
            _rows(db, "SELECT COUNT(*) FROM fills"),
            _rows(db, "SELECT COUNT(*) FROM order_events WHERE idempotency_key='outage-1'"),
        )
        assert again == snapshot
    execs = _rows(db, "SELECT exec_id, order_ref FROM fills WHERE kind='execution'")
    assert len(execs) == len({e for e, _ in execs}) == 1
    assert execs[0][1] == "outage-1"
    sent_rows = _rows(
        db, "SELECT detail FROM order_events WHERE event='sent' AND idempotency_key='outage-1'"
    )
    assert len(sent_rows) == 1 and "reconciled" in sent_rows[0][0]


async def _settle() -> None:
    import asyncio

    await asyncio.sleep(0.5)  # let the second reconciliation finish writing (if it would)


async def test_nightly_reset_expiry_is_recorded_once(settings_for: Any, sim: Any) -> None:
    settings = settings_for(sim.port, ORDERS_ENABLED=True)
    db = settings.audit_db_path
    order = {
        "symbol": "AAPL",
        "side": "BUY",
        "quantity": 1,
        "order_type": "LMT",
        "limit_price": 200,
        "tif": "DAY",
    }
    async with open_runtime(settings, wait_connected=5.0) as services:
        gw = services.gateway
        preview = (await _call(services, "preview_order", order)).output
        placed = await _call(
            services,
            "place_order",
            {
                **order,
                "confirmation_token": preview.confirmation_token,
                "idempotency_key": "day-order-1",
            },
        )
        assert placed.output.status in ("Submitted", "PreSubmitted")
        sim.drills.reset(refuse_seconds=0.3)  # DAY orders expire while we are disconnected
        await wait_until(lambda: gw.connected and gw.conn.reconnects == 1, timeout=5)
        query = "SELECT status FROM order_events WHERE idempotency_key='day-order-1' ORDER BY seq"
        await wait_until(lambda: _rows(db, query)[-1][0] == "Cancelled")
        sim.drills.drop()
        await wait_until(lambda: gw.connected and gw.conn.reconnects == 2, timeout=5)
        await gw.conn.guard(_settle(), 2.0, "settle")
    statuses = [r[0] for r in _rows(db, query)]
    assert statuses.count("Cancelled") == 1, statuses


async def test_cli_id_offset_avoids_the_clash_and_cancels_its_own_orders(
    settings_for: Any, sim: Any
) -> None:
    settings = settings_for(sim.port, ORDERS_ENABLED=True)
    order = {
        "symbol": "AAPL",
        "side": "BUY",
        "quantity": 1,
        "order_type": "LMT",
        "limit_price": 200,
    }
    cli_id = settings.cli_client_id
    assert cli_id == settings.IBKR_CLIENT_ID + settings.CLI_CLIENT_ID_OFFSET
    async with open_runtime(settings, wait_connected=5.0) as server:  # the running server
        async with open_runtime(settings, wait_connected=5.0, client_id=cli_id) as cli:
            assert server.gateway.connected and cli.gateway.connected  # no 326
            preview = (await _call(cli, "preview_order", order)).output
            args = {
                **order,
                "confirmation_token": preview.confirmation_token,
                "idempotency_key": "cli-order-1",
            }
            placed = (await _call(cli, "place_order", args)).output
        async with open_runtime(settings, wait_connected=5.0, client_id=cli_id) as cli:
            await _call(cli, "cancel_order", {"order_id": placed.order_id})
    mine = [o for o in sim.orders() if not o.what_if]
    assert [(o.client_id, o.status) for o in mine] == [(cli_id, "Cancelled")]
