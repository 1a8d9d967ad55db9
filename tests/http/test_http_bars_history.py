"""GET /api/market/bars with an end IB has no bars for: a prompt, clear error (no timeout)."""

from __future__ import annotations

import httpx


async def test_bars_ending_in_1900_are_market_data_unavailable(client: httpx.AsyncClient) -> None:
    resp = await client.get(
        "/api/market/bars",
        params={
            "symbol": "SPY", "duration": "1 D", "bar_size": "1 hour",
            "end": "1900-12-01T15:00:00Z",
        },
    )  # fmt: skip
    assert resp.status_code == 502
    error = resp.json()["error"]
    assert error["code"] == "MARKET_DATA_UNAVAILABLE"
    assert error["details"]["ib_code"] == 162
    assert "HMDS query returned no data" in error["message"]
