"""No gateway listening: the server still answers, tools fail fast with a remedy."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from ibkr_mcp.errors import GatewayUnavailableError
from ibkr_mcp.gateway.base import Gateway
from ibkr_mcp.gateway.ib_gateway import IBGateway
from ibkr_mcp.models import ContractRef


async def test_absent_gateway_fails_fast_with_remedy(settings_for: Any, unused_port: int) -> None:
    gw = IBGateway(settings_for(unused_port))
    assert isinstance(gw, Gateway)
    started = time.monotonic()
    await gw.start()  # returns at once, connects in the background
    assert time.monotonic() - started < 0.5
    try:
        assert not gw.connected
        with pytest.raises(GatewayUnavailableError) as info:
            await gw.resolve_contract(ContractRef(symbol="AAPL"))
        err = info.value
        assert err.code == "GATEWAY_UNAVAILABLE"
        assert f"Connection refused at 127.0.0.1:{unused_port}" in err.message
        assert "--sim" in (err.remedy or "")
        assert "API enabled" in (err.remedy or "")
        assert time.monotonic() - started < 2.0
        for call in (gw.open_orders(), gw.quotes([ContractRef(symbol="AAPL")])):
            try:
                outcome = await call
            except GatewayUnavailableError:
                continue
            # quotes() reports per item instead of raising
            assert isinstance(outcome, list)
            assert isinstance(outcome[0], GatewayUnavailableError)
        status = await gw.status()
        assert status.connected is False
        assert status.broker is None
        assert status.port == unused_port
        assert status.accounts == ()
        assert status.last_error is not None
        assert "refused" in status.last_error
        assert gw.managed_accounts() == ()
    finally:
        await gw.close()
    with pytest.raises(GatewayUnavailableError):
        await gw.ensure_connected()


async def test_close_without_start_is_harmless(settings_for: Any, unused_port: int) -> None:
    gw = IBGateway(settings_for(unused_port), client_id=7, host="127.0.0.1")
    await gw.close()
    status = await gw.status()
    assert (status.client_id, status.connected) == (7, False)


async def _wait_for(check: Any, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_recovers_when_gateway_appears_and_after_disconnect(
    settings_for: Any, unused_port: int
) -> None:
    from ibkr_mcp.simulator import Simulator

    gw = IBGateway(settings_for(unused_port))
    await gw.start()
    sim = Simulator(seed=42, accounts=("DU1234567",))
    try:
        with pytest.raises(GatewayUnavailableError):
            await gw.ensure_connected()
        await sim.start("127.0.0.1", unused_port)
        # The same IBGateway recovers: the next call connects at once.
        contract = await gw.resolve_contract(ContractRef(symbol="AAPL"))
        assert contract.symbol == "AAPL"
        assert gw.connected
        status = await gw.status()
        assert (status.connected, status.broker, status.last_error) == (True, "simulator", None)

        # The gateway goes away: the connection is noticed as lost ...
        await sim.stop()
        await _wait_for(lambda: not gw.connected, 3.0)
        with pytest.raises(GatewayUnavailableError):
            await gw.quote(ContractRef(symbol="AAPL"))
        # ... and the background loop reconnects by itself once it is back.
        sim = Simulator(seed=42, accounts=("DU1234567",))
        await sim.start("127.0.0.1", unused_port)
        await _wait_for(lambda: gw.connected, 5.0)
        quote = await gw.quote(ContractRef(symbol="AAPL"))
        assert quote.source == "simulator"
    finally:
        await gw.close()
        await sim.stop()
    assert not gw.connected


async def test_silent_listener_times_out_with_firewall_remedy(settings_for: Any) -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)  # accept the socket, never speak the API
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    gw = IBGateway(settings_for(port, IBKR_CONNECT_TIMEOUT=0.3))
    try:
        with pytest.raises(GatewayUnavailableError) as info:
            await gw.ensure_connected()
        assert "Timed out connecting" in info.value.message
        assert "firewall" in (info.value.remedy or "")
        assert "API is enabled" in (info.value.remedy or "")
    finally:
        await gw.close()
        server.close()
        await server.wait_closed()
