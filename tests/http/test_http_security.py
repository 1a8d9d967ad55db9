"""HTTP security: bearer token, Host check, body limit, bind refusal, gateway down → 503."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from http_helpers import TOKEN, http_client, runtime_client
from typer.testing import CliRunner

from ibkr_mcp.cli import app as cli_app
from ibkr_mcp.http_api import BindRefusedError, check_bind, is_loopback

MCP_INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
MCP_HEADERS = {"accept": "application/json, text/event-stream"}


async def test_token_required_on_api_and_mcp(settings_for: Any, sim: Any, services: Any) -> None:
    settings = settings_for(sim.port, API_TOKEN=TOKEN)
    async with http_client(settings, services) as client:
        missing = await client.get("/api/market/quote?symbol=AAPL")
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "UNAUTHORIZED"
        assert missing.headers["www-authenticate"] == "Bearer"
        assert missing.headers["x-correlation-id"]
        wrong = await client.get(
            "/api/market/quote?symbol=AAPL", headers={"Authorization": f"Bearer {TOKEN}x"}
        )
        assert wrong.status_code == 401
        right = await client.get(
            "/api/market/quote?symbol=AAPL", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert right.status_code == 200, right.text
        # Liveness stays open for probes; MCP is behind the same token.
        assert (await client.get("/health")).status_code == 200
        mcp = await client.post("/mcp", json=MCP_INIT, headers=MCP_HEADERS)
        assert mcp.status_code == 401
        mcp_ok = await client.post(
            "/mcp", json=MCP_INIT, headers={**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}
        )
        assert mcp_ok.status_code == 200, mcp_ok.text
        assert "ibkr-mcp" in mcp_ok.text


async def test_foreign_host_refused_without_token(client: Any) -> None:
    resp = await client.get("/api/market/quote?symbol=AAPL", headers={"Host": "evil.example"})
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "FORBIDDEN_HOST"
    ready = await client.get("/ready", headers={"Host": "evil.example"})
    assert ready.status_code == 403
    ok = await client.get("/api/health", headers={"Host": "localhost:8000"})
    assert ok.status_code == 200


async def test_body_over_limit_is_413(client: Any) -> None:
    big = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "padding": "x" * 70_000}
    resp = await client.post("/api/orders/preview", json=big)
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit is enforced while the body streams in.
        yield b'{"symbol": "AAPL", "pad": "'
        for _ in range(20):
            yield b"y" * 5000
        yield b'"}'

    streamed = await client.post(
        "/api/orders/preview", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    # The same on /mcp: a clean 413 before FastMCP reads anything (it used to answer 500).
    to_mcp = await client.post(
        "/mcp",
        content=chunks(),
        headers={"content-type": "application/json", "accept": "application/json"},
    )
    assert to_mcp.status_code == 413
    assert to_mcp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_gateway_down_is_503(settings_for: Any, unused_port: int) -> None:
    settings = settings_for(unused_port, IBKR_CONNECT_TIMEOUT=1.0)
    async with runtime_client(settings, wait_connected=0) as client:
        quote = await client.get("/api/market/quote?symbol=AAPL")
        assert quote.status_code == 503, quote.text
        error = quote.json()["error"]
        assert error["code"] == "GATEWAY_UNAVAILABLE"
        assert "--sim" in error["remedy"] or "IB Gateway" in error["remedy"]
        ready = await client.get("/ready")
        assert ready.status_code == 503 and ready.json()["connected"] is False
        assert (await client.get("/health")).status_code == 200
        metrics = (await client.get("/metrics")).text
        assert "ibkr_gateway_connected 0.0" in metrics


def test_loopback_detection_and_bind_check(settings_for: Any, unused_port: int) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert not is_loopback("example.com")
    open_settings = settings_for(unused_port)
    check_bind("127.0.0.1", open_settings)
    with pytest.raises(BindRefusedError, match="API_TOKEN"):
        check_bind("0.0.0.0", open_settings)
    with pytest.raises(BindRefusedError, match="shorter than 32"):
        check_bind("0.0.0.0", settings_for(unused_port, API_TOKEN="a"))
    check_bind("0.0.0.0", settings_for(unused_port, API_TOKEN="x" * 32))


async def test_ready_and_metrics_need_the_token_and_a_local_host(
    settings_for: Any, sim: Any, services: Any
) -> None:
    import httpx

    from ibkr_mcp.http_api import create_app

    app = create_app(settings_for(sim.port, API_TOKEN="t" * 32), services=services)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client,
    ):
        assert (await client.get("/health")).status_code == 200
        for path in ("/ready", "/metrics"):
            assert (await client.get(path)).status_code == 401
            auth = {"Authorization": "Bearer " + "t" * 32}
            assert (await client.get(path, headers=auth)).status_code in (200, 503)


def test_start_api_refuses_exposed_bind_without_token(tmp_path: Any) -> None:
    result = CliRunner().invoke(
        cli_app, ["start-api", "--host", "0.0.0.0"], env={"DATA_DIR": str(tmp_path)}
    )
    assert result.exit_code == 2
    assert "API_TOKEN" in result.stderr
    assert "Traceback" not in result.output


async def test_cross_site_empty_post_refused(client: Any) -> None:
    # A web page's <form method=post> to /cancel carries an Origin and no JSON body.
    hostile = await client.post(
        "/api/orders/1/cancel",
        headers={
            "Origin": "https://evil.example",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert hostile.status_code == 422
    assert "Cross-site" in hostile.json()["error"]["message"]
    # A local tool (curl) posting an empty body is still fine: it reaches the tool.
    local = await client.post("/api/orders/999999/cancel")
    assert local.status_code == 404
