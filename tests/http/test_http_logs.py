"""Logs of HTTP requests: no forged lines from user text, access lines with correlation ids."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ibkr_mcp.http_api import build_server
from ibkr_mcp.logs import configure_logging

#: The issue's reproduction: an unknown query field whose name holds a newline, a forged
#: timestamp and level, and an ANSI "clear screen" sequence.
FORGED = (
    "/api/account/positions?x%0A2026-12-01T00:00:00.000%2B00:00%20CRITICAL%20-%20FORGED%1B%5B2J=1"
)


async def _serve(settings: Any) -> AsyncIterator[str]:
    server = build_server(settings, host="127.0.0.1", port=0)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started or task.done():
                break
            await asyncio.sleep(0.02)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_forged_query_cannot_write_a_log_line(
    settings_for: Any, sim: Any, log_format: str
) -> None:
    settings = settings_for(sim.port, LOG_LEVEL="INFO", LOG_FORMAT=log_format)
    buf = io.StringIO()
    configure_logging(settings, stream=buf)
    async for base in _serve(settings):
        async with httpx.AsyncClient(base_url=base) as client:
            response = await client.get(FORGED)
            assert response.status_code == 422, response.text
            cid = response.headers["x-correlation-id"]
            # A path with a newline of its own (the access log prints the decoded path).
            await client.get("/api/nope%0A2026-12-01%20CRITICAL%20FORGED-PATH")
    text = buf.getvalue()
    assert "\x1b" not in text
    lines = text.splitlines()
    assert lines
    for line in lines:
        # Every line is a real record: our timestamp, never the forged one or its level.
        assert not line.startswith("2026-12-01"), line
        assert log_format == "json" or line.split()[1] != "CRITICAL", line
    # The unknown field's name is logged, escaped (INVALID_INPUT names it).
    escaped = "x\\n2026-12-01T00:00:00.000+00:00 CRITICAL - FORGED\\x1b[2J: unknown field"
    if log_format == "json":
        messages = [json.loads(line)["record"]["message"] for line in lines]
    else:
        messages = lines
    assert any(escaped in message for message in messages), text
    if log_format == "json":
        records = [json.loads(line)["record"] for line in lines]
        access = [r for r in records if r["name"].startswith("uvicorn")]
        assert any(r["extra"]["correlation_id"] == cid for r in access), access
        assert all(r["message"].count("\n") == 0 for r in records)
    else:
        access_lines = [line for line in lines if '"GET /api/account/positions?' in line]
        assert len(access_lines) == 1 and cid in access_lines[0], access_lines
