"""Connection supervisor over real sockets: hang, drop, refuse, 326, notices (MCP and HTTP)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastmcp import Client
from http_helpers import http_client
from resilience_helpers import FAST, count, notify, wait_until

from ibkr_mcp.gateway.ib_gateway import IBGateway
from ibkr_mcp.mcp_server import build_mcp
from ibkr_mcp.runtime import open_runtime


async def test_hang_is_detected_fails_fast_and_recovers(fast_services: Any, sim: Any) -> None:
    gw = fast_services.gateway
    async with Client(build_mcp(fast_services)) as client:
        sim.drills.hang(30)
        await wait_until(lambda: gw.conn.state == "hung", timeout=5)
        health = (await client.call_tool("get_health", {})).structured_content
        assert (health["ready"], health["state"]) == (False, "hung")
        assert "not answering" in health["summary"]
        started = time.monotonic()
        quote = await client.call_tool("get_quote", {"symbol": "IBM"}, raise_on_error=False)
        assert quote.is_error
        assert quote.content[0].text.startswith("GATEWAY_HUNG:")
        assert time.monotonic() - started < 1.0  # not the 5 s request timeout
        async with http_client(fast_services.settings, fast_services) as http:
            ready = await http.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["state"] == "hung"
            refused = await http.get("/api/market/quote", params={"symbol": "IBM"})
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "GATEWAY_HUNG"
            sim.drills.end_hang()  # the gateway answers its held probes: recovery by itself
            await wait_until(lambda: gw.conn.state == "connected", timeout=3)
            assert (await http.get("/ready")).status_code == 200
        ok = await client.call_tool("get_quote", {"symbol": "IBM"})
        assert ok.structured_content["symbol"] == "IBM"


async def test_in_flight_request_fails_when_the_hang_is_detected(
    fast_services: Any, sim: Any
) -> None:
    from ibkr_mcp.errors import GatewayHungError
    from ibkr_mcp.models import ContractRef

    gw = fast_services.gateway
    sim.drills.hang(30)
    started = time.monotonic()
    try:
        await gw.quote(ContractRef(symbol="MSFT"))
    except GatewayHungError as exc:
        assert exc.details["state"] == "hung"
    else:
        raise AssertionError("expected GATEWAY_HUNG")
    # Detected after ~1 s of silence + 0.3 s probe, well before the 5 s request timeout.
    assert time.monotonic() - started < 3.0
    sim.drills.end_hang()
    await wait_until(lambda: gw.conn.state == "connected", timeout=3)


async def test_every_hang_fails_in_flight_requests_and_answers_resume_between(
    fast_services: Any, sim: Any
) -> None:
    """Waiting requests share one hung signal per hang: settled by each hang, fresh after it."""
    from ibkr_mcp.errors import GatewayHungError
    from ibkr_mcp.models import ContractRef

    gw = fast_services.gateway
    for round_ in range(2):
        sim.drills.hang(30)
        started = time.monotonic()
        outcomes = await asyncio.gather(
            gw.quote(ContractRef(symbol="MSFT")),
            gw.quote(ContractRef(symbol="IBM")),
            return_exceptions=True,
        )
        assert all(isinstance(o, GatewayHungError) for o in outcomes), (round_, outcomes)
        assert time.monotonic() - started < 3.0, round_  # the hang, not the request timeout
        sim.drills.end_hang()
        await wait_until(lambda: gw.conn.state == "connected", timeout=3)
        # Recovered: the signal of the hang that ended no longer fails anything.
        quote = await gw.quote(ContractRef(symbol="MSFT"))
        assert quote.symbol == "MSFT", round_


async def test_background_reconnect_within_a_second(settings_for: Any, unused_port: int) -> None:
    from ibkr_mcp.simulator import Simulator

    async with open_runtime(settings_for(unused_port, **FAST), wait_connected=0) as services:
        gw = services.gateway
        first = Simulator(seed=42)
        await first.start("127.0.0.1", unused_port)
        await wait_until(lambda: gw.connected, timeout=3)
        await first.stop()  # the nightly restart: socket dropped, port refused for a while
        await wait_until(lambda: gw.conn.state == "reconnecting", timeout=3)
        await asyncio.sleep(1.5)  # outage with no tool calls; backoff has grown to its cap
        second = Simulator(seed=42)
        await second.start("127.0.0.1", unused_port)
        try:
            took = await wait_until(lambda: gw.connected, timeout=3)
            assert took < 1.0, took
            status = await gw.status()
            assert (status.state, status.reconnects) == ("connected", 1)
        finally:
            await second.stop()


async def test_drop_and_refuse_then_accepted(fast_services: Any, sim: Any) -> None:
    gw = fast_services.gateway
    sim.drills.refuse(1.0)
    sim.drills.drop()
    await wait_until(lambda: gw.conn.state == "reconnecting", timeout=3)
    assert not (await gw.status()).connected
    await wait_until(lambda: not sim.drills.refusing, timeout=3)
    took = await wait_until(lambda: gw.connected, timeout=3)
    assert took < 1.0, took


async def test_nightly_reset_reconnects_by_itself(fast_services: Any, sim: Any) -> None:
    gw = fast_services.gateway
    sim.drills.reset(refuse_seconds=1.5)
    await wait_until(lambda: gw.conn.state == "reconnecting", timeout=3)
    await wait_until(lambda: not sim.drills.refusing, timeout=4)
    took = await wait_until(lambda: gw.connected, timeout=3)
    assert took < 1.0, took
    assert (await gw.status()).reconnects == 1


async def test_client_id_clash_names_the_id_and_remedy(
    fast_services: Any, settings_for: Any, sim: Any
) -> None:
    second = IBGateway(settings_for(sim.port))  # same IBKR_CLIENT_ID as the running server
    await second.start()
    try:
        await wait_until(lambda: second.conn.last_error is not None, timeout=3)
        status = await second.status()
        assert status.connected is False
        assert "326" in (status.last_error or "") and "client id 1" in (status.last_error or "")
        from ibkr_mcp.tools.health import readiness_summary

        summary = readiness_summary(fast_services.settings, status)
        assert "client id 1 is already in use" in summary
        assert "start it" not in summary
        assert fast_services.gateway.connected  # the first client is unaffected
    finally:
        await second.close()


async def test_bad_symbol_is_not_the_gateways_last_error(services: Any, sim: Any) -> None:
    async with Client(build_mcp(services)) as client:
        bad = await client.call_tool("get_quote", {"symbol": "NOPEXYZ"}, raise_on_error=False)
        assert bad.is_error and bad.content[0].text.startswith("CONTRACT_NOT_FOUND")
        health = (await client.call_tool("get_health", {})).structured_content
        assert health["last_error"] is None
        assert health["ready"] is True
    async with http_client(services.settings, services) as http:
        ready = await http.get("/ready")
        assert ready.status_code == 200 and ready.json()["last_error"] is None


async def test_upstream_lost_and_restored(fast_services: Any, sim: Any) -> None:
    gw = fast_services.gateway
    notify(sim, 1100)
    await wait_until(lambda: gw.conn.state == "upstream-lost")
    async with http_client(fast_services.settings, fast_services) as http:
        ready = await http.get("/ready")
        assert ready.status_code == 503
        body = ready.json()
        assert body["state"] == "upstream-lost" and body["last_notice"]["code"] == 1100
        assert body["last_notice"]["age_seconds"] >= 0
        quote = await http.get("/api/market/quote", params={"symbol": "IBM"})
        assert quote.json()["error"]["code"] == "GATEWAY_UNAVAILABLE"
        notify(sim, 1102)
        await wait_until(lambda: gw.conn.state == "connected")
        assert (await http.get("/ready")).status_code == 200


async def test_2110_is_upstream_lost(fast_services: Any, sim: Any) -> None:
    gw = fast_services.gateway
    notify(sim, 2110, "Connectivity between TWS and server is broken. It will be restored.")
    await wait_until(lambda: gw.conn.state == "upstream-lost")
    notify(sim, 1102, "Connectivity restored - data maintained.")
    await wait_until(lambda: gw.conn.state == "connected")


async def test_data_lost_1101_re_requests_subscriptions(fast_services: Any, sim: Any) -> None:
    async with Client(build_mcp(fast_services)) as client:
        await client.call_tool("get_pnl", {"account": "DU1234567"})
        pnl_before = count(sim, "REQ_PNL")
        updates_before = count(sim, "REQ_ACCT_DATA")
        notify(sim, 1101)
        await wait_until(lambda: count(sim, "REQ_PNL") == pnl_before + 1)
        assert count(sim, "REQ_ACCT_DATA") == updates_before + 1
        pnl = await client.call_tool("get_pnl", {"account": "DU1234567"})
        assert not pnl.is_error


async def test_farm_down_flags_quotes_stale(fast_services: Any, sim: Any) -> None:
    gw = fast_services.gateway
    async with Client(build_mcp(fast_services)) as client:
        sim.drills.farm_outage(30)  # 2103 + 2105
        await wait_until(lambda: gw.conn.state == "farm-down")
        health = (await client.call_tool("get_health", {})).structured_content
        assert health["state"] == "farm-down" and health["ready"] is True
        assert any(f.startswith("market-data:") for f in health["farms_down"])
        assert "degraded" in health["summary"]
        quote = (await client.call_tool("get_quote", {"symbol": "IBM"})).structured_content
        assert quote["stale"] is True
        quotes = await client.call_tool("get_quotes", {"symbols": ["IBM", "AAPL"]})
        assert all(q["stale"] for q in quotes.structured_content["quotes"])
        sim.drills.clear()
        notify(sim, 2104)
        notify(sim, 2106)
        await wait_until(lambda: gw.conn.state == "connected")
        quote = (await client.call_tool("get_quote", {"symbol": "IBM"})).structured_content
        assert quote["stale"] is False


async def test_competing_session_notice_has_its_remedy(fast_services: Any, sim: Any) -> None:
    notify(sim, 10197, "No market data during competing live session", req_id=-1)
    gw = fast_services.gateway
    await wait_until(lambda: gw.conn.last_notice is not None and gw.conn.last_notice.code == 10197)
    status = await gw.status()
    assert status.last_notice is not None
    assert "log out" in (status.last_notice.remedy or "").lower()


async def test_metrics_report_state_notice_and_queues(fast_services: Any, sim: Any) -> None:
    notify(sim, 2103, "Market data farm connection is broken:usfarm")
    await wait_until(lambda: fast_services.gateway.conn.state == "farm-down")
    async with http_client(fast_services.settings, fast_services) as http:
        text = (await http.get("/metrics")).text
    assert 'ibkr_gateway_state{state="farm-down"} 1.0' in text
    assert 'ibkr_gateway_state{state="connected"} 0.0' in text
    assert "ibkr_gateway_last_notice_code 2103.0" in text
    assert 'ibkr_queue_depth{queue="market_data_waiting"} 0.0' in text
    assert FAST  # settings used by the fixture


async def test_mkt_preview_while_hung_names_the_hang(settings_for: Any, sim: Any) -> None:
    settings = settings_for(sim.port, ORDERS_ENABLED=True, **FAST)
    async with (
        open_runtime(settings, wait_connected=5.0) as services,
        Client(build_mcp(services)) as client,
    ):
        order = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "order_type": "MKT"}
        await client.call_tool("get_quote", {"symbol": "AAPL"})  # contract cached
        sim.drills.hang(30)
        await wait_until(lambda: services.gateway.conn.state == "hung")
        preview = await client.call_tool("preview_order", order, raise_on_error=False)
        assert preview.is_error
        assert preview.content[0].text.startswith("GATEWAY_HUNG:"), preview.content[0].text
        sim.drills.end_hang()
    assert not [o for o in sim.orders() if not o.what_if]


async def test_health_state_on_both_mcp_protocol_versions(fast_services: Any, sim: Any) -> None:
    notify(sim, 2103)
    await wait_until(lambda: fast_services.gateway.conn.state == "farm-down")
    for mode in ("current", "legacy"):
        client = (
            Client(build_mcp(fast_services))
            if mode == "current"
            else Client(build_mcp(fast_services), mode="legacy")
        )
        async with client:
            health = (await client.call_tool("get_health", {})).structured_content
        assert health["state"] == "farm-down", mode
        assert health["last_notice"]["code"] == 2103
        assert set(health["queues"]) >= {"market_data_waiting", "historical_open"}


async def test_order_in_flight_fails_fast_when_the_gateway_hangs(
    settings_for: Any, sim: Any
) -> None:
    from ibkr_mcp.errors import IbkrMcpError
    from ibkr_mcp.tools import build_registry

    registry = build_registry()
    order = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "order_type": "MKT"}
    settings = settings_for(sim.port, ORDERS_ENABLED=True, IBKR_REQUEST_TIMEOUT=20.0, **FAST)
    async with open_runtime(settings, wait_connected=5.0) as services:

        async def call(tool: str, args: dict[str, Any]) -> Any:
            result = await registry.call(tool, args, services=services, surface="internal")
            return result.output

        preview = await call("preview_order", order)
        sim.pause_on("PLACE_ORDER")  # the gateway freezes on the order itself
        started = time.monotonic()
        args = {**order, "confirmation_token": preview.confirmation_token,
                "idempotency_key": "hang-in-flight-1"}  # fmt: skip
        try:
            await call("place_order", args)
        except IbkrMcpError as exc:
            assert exc.code == "GATEWAY_HUNG"
            assert "SAME idempotency_key" in (exc.remedy or "")
        else:
            raise AssertionError("expected GATEWAY_HUNG")
        assert time.monotonic() - started < 5.0  # the hang, not the 20 s request timeout
        sim.pause(False)
        await wait_until(lambda: services.gateway.conn.state == "connected", timeout=5)
        retried = await call("place_order", {**args, "confirmation_token": "spent-token-0"})
        assert retried.replayed is True
    assert count(sim, "PLACE_ORDER") == 2  # the what-if preview and the one real order
