"""REST routes generated from the registry: every route, OpenAPI, error statuses, correlation."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import httpx
from fastapi.routing import APIRoute
from http_helpers import runtime_client

from ibkr_mcp.config import Settings
from ibkr_mcp.http_api import create_app
from ibkr_mcp.tools import build_registry


def test_one_route_per_tool(settings: Settings) -> None:
    app = create_app(settings)
    registry = build_registry().enabled(settings.enabled_toolsets, "http")
    routes = {
        (method, route.path): route.name
        for route in app.routes
        if isinstance(route, APIRoute)
        and route.path.startswith("/api/")
        and "control" not in route.tags  # the human control routes, whatever the toolsets
        for method in route.methods
    }
    expected = {(spec.http_method, spec.http_path): spec.name for spec in registry}
    assert routes == expected
    assert len(routes) == len(registry) >= 19


async def test_openapi_documents_real_models(client: httpx.AsyncClient) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    schemas = doc["components"]["schemas"]
    for spec in build_registry().enabled(frozenset({"read", "trade"}), "http"):
        op = doc["paths"][spec.http_path][spec.http_method.lower()]
        assert op["operationId"] == spec.name
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok["$ref"].rsplit("/", 1)[1].startswith(spec.output_model.__name__)
        fields = set(spec.input_model.model_fields)
        if spec.http_method == "GET":
            assert {p["name"] for p in op.get("parameters", [])} == fields
        else:
            path_names = {p["name"] for p in op.get("parameters", [])}
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            if body:
                ref = body["schema"]["$ref"].rsplit("/", 1)[1]
                assert set(schemas[ref]["properties"]) == fields
            else:
                assert path_names == fields
        assert op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    quote = doc["paths"]["/api/market/quote"]["get"]["parameters"]
    symbol = next(p for p in quote if p["name"] == "symbol")
    assert symbol["required"] is True and symbol["in"] == "query"
    # Every $ref resolves inside the document.
    refs = set(re.findall(r'"\$ref":\s*"#/components/schemas/([^"]+)"', resp.text))
    assert refs and refs <= set(schemas)
    # Output fields keep their types (a wildcard serializer once left only their titles).
    ok = doc["paths"]["/api/market/quote"]["get"]["responses"]["200"]["content"]
    quote_props = schemas[ok["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    quote_props = quote_props["properties"]
    assert {"type": "number"} in quote_props["bid"]["anyOf"]
    assert (quote_props["timestamp"]["type"], quote_props["timestamp"]["format"]) == (
        "string", "date-time"
    )  # fmt: skip
    assert quote_props["symbol"]["type"] == "string"


PREVIEW = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "order_type": "MKT"}


def _sample_requests() -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", "/api/health", None),
        ("GET", "/api/market/quote?symbol=AAPL", None),
        ("GET", "/api/market/quotes?symbols=AAPL,MSFT", None),
        ("GET", "/api/market/bars?symbol=SPY&duration=5%20D&bar_size=1%20day", None),
        ("GET", "/api/contracts/search?pattern=AAP", None),
        ("GET", "/api/contracts/details?symbol=AAPL", None),
        ("GET", "/api/account/summary", None),
        ("GET", "/api/account/positions", None),
        ("GET", "/api/account/pnl", None),
        ("GET", "/api/orders/open", None),
        ("GET", "/api/orders/executions", None),
        ("POST", "/api/orders/preview", PREVIEW),
    ]


async def test_read_routes_answer_200(client: httpx.AsyncClient) -> None:
    for method, url, body in _sample_requests():
        resp = await client.request(method, url, json=body)
        assert resp.status_code == 200, (url, resp.text)
        assert resp.headers["content-type"].startswith("application/json")
        assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["x-correlation-id"])
    quotes = (await client.get("/api/market/quotes?symbols=AAPL&symbols=MSFT")).json()
    assert [q["symbol"] for q in quotes["quotes"]] == ["AAPL", "MSFT"]
    quote = (await client.get("/api/market/quote", params={"symbol": "aapl"})).json()
    assert quote["symbol"] == "AAPL" and Decimal(quote["ask"]) >= Decimal(quote["bid"])


async def test_order_lifecycle_over_http(sim: Any, settings_for: Any) -> None:
    async with runtime_client(settings_for(sim.port, ORDERS_ENABLED=True)) as client:
        quote = (await client.get("/api/market/quote?symbol=AAPL")).json()
        # A limit 3 % under the bid: inside the price band, but not marketable, so it works.
        price = (Decimal(quote["bid"]) * Decimal("0.97")).quantize(Decimal("0.01"))
        order = {"symbol": "AAPL", "side": "BUY", "quantity": 5, "limit_price": str(price)}
        preview = await client.post("/api/orders/preview", json=order)
        assert preview.status_code == 200, preview.text
        token = preview.json()["confirmation_token"]
        placed = await client.post(
            "/api/orders",
            json={**order, "confirmation_token": token, "idempotency_key": "http-test-0001"},
        )
        assert placed.status_code == 200, placed.text
        order_id = placed.json()["order_id"]
        assert placed.json()["sent"] is True and order_id
        status = await client.get(f"/api/orders/{order_id}/status")
        assert status.status_code == 200 and status.json()["order_id"] == order_id
        cancel = await client.post(f"/api/orders/{order_id}/cancel")
        assert cancel.status_code == 200, cancel.text
        assert cancel.json()["order_id"] == order_id
        assert cancel.json()["status"] in ("Cancelled", "PendingCancel", "ApiCancelled")


async def test_invalid_input_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/market/quote")
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "INVALID_INPUT"
    assert [e["field"] for e in error["details"]["errors"]] == ["symbol"]
    assert error["details"]["correlation_id"] == resp.headers["x-correlation-id"]
    extra = await client.get("/api/market/quote?symbol=AAPL&bogus=1")
    assert extra.status_code == 422
    assert extra.json()["error"]["details"]["errors"][0]["field"] == "bogus"
    bad_id = await client.get("/api/orders/abc/status")
    assert bad_id.status_code == 422
    assert bad_id.json()["error"]["details"]["errors"][0]["field"] == "order_id"
    not_json = await client.post(
        "/api/orders/preview", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422 and not_json.json()["error"]["code"] == "INVALID_INPUT"
    # A text/plain body (what a web page can send cross-site without preflight) is refused.
    plain = await client.post(
        "/api/orders/preview",
        content=b'{"symbol":"AAPL","side":"BUY","quantity":1,"order_type":"MKT"}',
        headers={"content-type": "text/plain"},
    )
    assert plain.status_code == 422


async def test_gate_refusal_is_403_with_gate_name(client: httpx.AsyncClient) -> None:
    order = {"symbol": "AAPL", "side": "BUY", "quantity": 5_000_000, "order_type": "MKT"}
    preview = await client.post("/api/orders/preview", json=order)
    assert preview.status_code == 200, preview.text
    assert {r["gate"] for r in preview.json()["refusals"]} >= {"quantity"}
    assert preview.json()["confirmation_token"] is None  # a refused preview issues no token
    placed = await client.post(
        "/api/orders",
        json={**order, "confirmation_token": "made-up-token-0001", "idempotency_key": "refuse-01"},
    )
    assert placed.status_code == 403, placed.text
    error = placed.json()["error"]
    assert error["code"] == "GATE_REFUSED"
    assert error["details"]["gate"] == "quantity"
    assert "MAX_ORDER_QUANTITY" in error["message"]


async def test_unknown_symbol_is_404(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/market/quote?symbol=ZZZZQ")
    assert resp.status_code == 404, resp.text
    assert resp.json()["error"]["code"] == "CONTRACT_NOT_FOUND"


async def test_unknown_route_uses_error_shape(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/nope")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "NOT_FOUND"


async def test_correlation_id_is_honoured_or_replaced(client: httpx.AsyncClient) -> None:
    mine = "client-chosen.id_0001"
    resp = await client.get("/api/market/quote?symbol=AAPL", headers={"X-Correlation-ID": mine})
    assert resp.headers["x-correlation-id"] == mine
    err = await client.get("/api/market/quote", headers={"X-Correlation-ID": mine})
    assert err.json()["error"]["details"]["correlation_id"] == mine
    evil = await client.get(
        "/api/market/quote?symbol=AAPL", headers={"X-Correlation-ID": "bad id\twith junk"}
    )
    assert re.fullmatch(r"[0-9a-f]{32}", evil.headers["x-correlation-id"])


async def test_probes_and_metrics(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["version"]
    ready = await client.get("/ready")
    assert ready.status_code == 200 and ready.json()["connected"] is True
    for _ in range(3):
        assert (await client.get("/api/market/quote?symbol=AAPL")).status_code == 200
    text = (await client.get("/metrics")).text
    match = re.search(
        r'ibkr_tool_calls_total\{outcome="ok",surface="http",tool="get_quote"\} (\S+)', text
    )
    assert match and float(match[1]) >= 3
    assert re.search(r"^ibkr_gateway_connected 1\.0$", text, re.M)
    assert "ibkr_tool_latency_seconds_bucket" in text
