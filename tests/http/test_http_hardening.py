"""HTTP hardening: hostile path values, Host headers, Origin on /mcp, docs offline, OpenAPI."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize("order_id", ["18446744073709551616", "2147483648", "0", "1_0", "١"])
async def test_order_ids_beyond_ib_range_are_422(client: Any, order_id: str) -> None:
    for method, path in (("GET", "status"), ("POST", "cancel")):
        response = await client.request(method, f"/api/orders/{order_id}/{path}")
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
