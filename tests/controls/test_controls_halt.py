"""Emergency stop and toolsets on all three surfaces, proven at the broker and across restarts."""

from __future__ import annotations

from typing import Any

import pytest
from controls_helpers import REGISTRY, call, http, place, resting, runtime, sent_orders
from fastmcp import Client

from ibkr_mcp.errors import GateRefusedError
from ibkr_mcp.mcp_server import build_mcp

TOKEN = "controls-token-0123456789abcdef0123"


async def cli(tmp_path: Any, *args: str, **env: str) -> tuple[int, str]:
    """The human's CLI as a process of its own (same data directory)."""
    import asyncio
    import os
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ibkr_mcp", *args,
        env={**os.environ, "DATA_DIR": str(tmp_path), **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, output.decode()


def working(sim: Any) -> list[Any]:
    return [o for o in sent_orders(sim) if o.is_live]


async def test_mcp_emergency_stop_cancels_halts_and_survives_restart(
    controls_settings: Any, sim: Any, tmp_path: Any
) -> None:
    settings = controls_settings(TOOLSETS="read,trade,admin")
    async with runtime(settings) as services:
        assert (await place(services, resting(1), "estop-0001")).sent
        assert len(working(sim)) == 1
        async with Client(build_mcp(services)) as client:
            names = {t.name for t in await client.list_tools()}
            assert {"emergency_stop", "approve_order", "deny_order"} <= names
            result = await client.call_tool("emergency_stop", {"reason": "runaway agent"})
        assert result.structured_content["halted"] is True
        assert result.structured_content["orders_working_before"] == 1
        assert working(sim) == []  # IB's global cancel reached the broker
        with pytest.raises(GateRefusedError) as refused:
            await place(services, resting(2), "estop-0002")
        assert refused.value.details["gate"] == "emergency_stop"
        health = await call(services, "get_health", {})
        assert health.state == "halted" and health.halted
        assert health.halt["reason"] == "runaway agent" and health.halt["by"].startswith("mcp:")
        assert "System ready" not in health.summary and "runaway agent" in health.summary
    async with runtime(settings) as services:  # a restart keeps the halt
        with pytest.raises(GateRefusedError):
            await place(services, resting(3), "estop-0003")
        # No MCP tool clears it.
        assert not [s for s in REGISTRY if "clear" in s.name]
    assert len(sent_orders(sim)) == 1
    # Only a human clears it: the CLI asks (here: --yes), then orders pass again.
    code, output = await cli(tmp_path, "emergency-stop", "--clear", "--yes")
    assert code == 0, output
    assert "halt cleared" in output
    async with runtime(settings) as services:
        assert (await place(services, resting(4), "estop-0004")).sent
        health = await call(services, "get_health", {})
        assert not health.halted and health.state != "halted"


async def test_http_emergency_stop_and_token_only_clear(controls_settings: Any, sim: Any) -> None:
    settings = controls_settings()  # no API_TOKEN: loopback only
    async with runtime(settings) as services, http(settings, services) as client:
        assert (await place(services, resting(1), "http-stop-01")).sent
        stop = await client.post("/api/emergency-stop", json={"reason": "desk says stop"})
        assert stop.status_code == 200, stop.text
        assert stop.json()["orders_working_before"] == 1 and working(sim) == []
        ready = await client.get("/ready")
        assert ready.status_code == 200  # the gateway is still usable (reads, cancels)
        body = ready.json()
        assert body["state"] == "halted" and body["halt"]["reason"] == "desk says stop"
        assert "System ready" not in body["summary"]
        policy = (await call(services, "get_health", {})).safety
        assert policy["state"] == "halted" and policy["halt"]["reason"] == "desk says stop"
        # DELETE is refused without a configured token: no way to tell a human from an agent.
        refused = await client.delete("/api/emergency-stop")
        assert refused.status_code == 401
        with pytest.raises(GateRefusedError):
            await place(services, resting(2), "http-stop-02")
    tokened = controls_settings(API_TOKEN=TOKEN)
    async with runtime(tokened) as services, http(tokened, services, TOKEN) as client:
        cleared = await client.delete("/api/emergency-stop")
        assert cleared.status_code == 200 and cleared.json()["was"]["halted"]
        assert (await place(services, resting(3), "http-stop-03")).sent
    assert len(sent_orders(sim)) == 2


async def test_kill_switch_file_is_a_halt_for_health(controls_settings: Any, sim: Any) -> None:
    settings = controls_settings()
    settings.kill_switch_path.parent.mkdir(parents=True, exist_ok=True)
    settings.kill_switch_path.write_text("maintenance\n")
    async with runtime(settings) as services:
        health = await call(services, "get_health", {})
        assert health.state == "halted" and health.halt["source"] == "kill_switch"
        assert "System ready" not in health.summary
        with pytest.raises(GateRefusedError):
            await place(services, resting(1), "kill-00001")
    assert sent_orders(sim) == []


async def test_read_toolset_has_no_trading_tools_anywhere(controls_settings: Any, sim: Any) -> None:
    settings = controls_settings(READ_ONLY=True)
    async with runtime(settings) as services:
        async with Client(build_mcp(services)) as client:
            names = {t.name for t in await client.list_tools()}
        assert "get_quote" in names
        assert not names & {"preview_order", "place_order", "cancel_order", "emergency_stop"}
        async with http(settings, services) as client:
            missing = await client.post("/api/orders", json={})
            assert missing.status_code in (404, 405)
            # The human control routes exist whatever the toolsets.
            state = await client.get("/api/emergency-stop")
            assert state.status_code == 200 and state.json()["halted"] is False
    assert sent_orders(sim) == []


def test_cli_has_no_trading_commands_with_read_only(tmp_path: Any) -> None:
    import subprocess
    import sys

    env = {"DATA_DIR": str(tmp_path), "READ_ONLY": "true", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "ibkr_mcp", "--help"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert " quote " in proc.stdout and " place " not in proc.stdout
    assert "emergency-stop" in proc.stdout and "approvals" in proc.stdout
