"""No gateway listening: the server still answers, tools fail fast with a remedy."""

from __future__ import annotations

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
