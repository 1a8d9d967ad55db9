"""HTTP hardening: hostile path values, Host headers, Origin on /mcp, docs offline, OpenAPI."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize("order_id", ["18446744073709551616", "2147483648", "0", "1_0", "١"])
async def test_order_ids_beyond_ib_range_are_422(client: Any, order_id: str) -> None:
    for method, path, body in (
        ("GET", "status", None), ("POST", "cancel", None),
        ("POST", "modify", {"limit_price": 216}),
    ):  # fmt: skip
        response = await client.request(method, f"/api/orders/{order_id}/{path}", json=body)
        assert response.status_code == 422, response.text
        body = response.json()["error"]
        assert body["code"] == "INVALID_INPUT"
        assert body["details"]["errors"][0]["field"] == "order_id"


@pytest.mark.parametrize(
    "host", ["127.0.0.1:1@evil.com", "localhost@evil.com", "127.0.0.1 evil.com", "evil.com:80"]
)
async def test_malformed_or_foreign_host_refused_without_token(client: Any, host: str) -> None:
    response = await client.get("/api/health", headers={"Host": host})
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "FORBIDDEN_HOST"


async def test_missing_host_refused_without_token(settings: Any) -> None:
    from ibkr_mcp.http_api.security import RequestGuard

    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    guard = RequestGuard(app, settings)
    scope = {"type": "http", "method": "GET", "path": "/api/health", "headers": []}
    await guard(scope, receive, send)
    assert reached == []
    assert sent[0]["status"] == 403
    await guard({**scope, "headers": [(b"host", b"127.0.0.1:8000")]}, receive, send)
    assert reached == ["/api/health"]


def test_host_name_parsing() -> None:
    from ibkr_mcp.http_api.security import host_name

    assert host_name("127.0.0.1:8000") == "127.0.0.1"
    assert host_name("[::1]:8000") == "[::1]"
    assert host_name("LOCALHOST") == "localhost"
    assert host_name("127.0.0.1:1@evil.com") is None
    assert host_name("") is None


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_render_without_network(client: Any, page: str) -> None:
    import re

    html = (await client.get(page)).text
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', html)
    assert assets, html
    for asset in assets:
        assert asset.startswith("/"), f"{page} loads {asset} from the network"
        response = await client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 1000


async def test_openapi_declares_bearer_and_probe_models(client: Any) -> None:
    doc = (await client.get("/openapi.json")).json()
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    quote = doc["paths"]["/api/market/quote"]["get"]
    assert {"bearerAuth": []} in quote["security"]
    assert "security" not in doc["paths"]["/health"]["get"]
    health = doc["paths"]["/health"]["get"]["responses"]["200"]["content"]["application/json"]
    assert health["schema"]["$ref"].endswith("/HealthBody")
    ready = doc["paths"]["/ready"]["get"]["responses"]
    assert ready["503"]["content"]["application/json"]["schema"]["$ref"].endswith("/ReadyBody")
    metrics = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    bars = {p["name"]: p["schema"] for p in doc["paths"]["/api/market/bars"]["get"]["parameters"]}
    assert "1 day" in bars["bar_size"]["enum"] and bars["duration"]["pattern"]
    quantity = doc["components"]["schemas"]["PreviewInput"]["properties"]["quantity"]
    text = next(b for b in quantity["anyOf"] if b.get("type") == "string")
    import re

    assert not re.fullmatch(text["pattern"], "")


async def test_every_prefilled_example_is_valid(client: Any) -> None:
    from ibkr_mcp.http_api.examples import EXAMPLES
    from ibkr_mcp.tools import build_registry

    doc = (await client.get("/openapi.json")).json()
    # Tools served over HTTP (admin tools are MCP only: no route, no example needed).
    for spec in build_registry().enabled(frozenset({"read", "trade"}), "http"):
        example = EXAMPLES.get(spec.name)
        required = spec.input_model.model_json_schema().get("required", [])
        assert example is not None or not required, f"{spec.name} has no example"
        if example is None:
            continue
        spec.input_model.model_validate(example)
        if spec.http_path not in doc["paths"]:
            continue  # a toolset not served over HTTP by default (e.g. admin)
        op = doc["paths"][spec.http_path][spec.http_method.lower()]
        shown = {p["name"]: p["example"] for p in op.get("parameters", []) if "example" in p}
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
        shown.update(body.get("example", {}))
        assert shown == example, spec.name


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://evil.example", False),
        ("http://127.0.0.1.evil.example", False),
        ("null", False),
        ("http://localhost:6274", True),
        ("http://127.0.0.1:8000", True),
    ],
)
async def test_mcp_refuses_a_foreign_origin(client: Any, origin: str, allowed: bool) -> None:
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    response = await client.post(
        "/mcp",
        json=init,
        headers={"Origin": origin, "Accept": "application/json, text/event-stream"},
    )
    if allowed:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "FORBIDDEN_ORIGIN"


async def test_huge_integer_in_a_body_is_a_named_field_error(client: Any) -> None:
    body = b'{"symbol": "AAPL", "side": "BUY", "order_type": "MKT", "quantity": %d}' % 10**400
    response = await client.post(
        "/api/orders/preview", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]["errors"][0]["field"] == "quantity"


async def test_every_error_status_is_documented(client: Any) -> None:
    from ibkr_mcp.errors import HTTP_STATUS

    doc = (await client.get("/openapi.json")).json()
    documented = set(doc["paths"]["/api/market/bars"]["get"]["responses"])
    assert {str(s) for s in HTTP_STATUS.values() if s != 500} <= documented
