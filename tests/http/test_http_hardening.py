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
