"""Human approval out of band, end to end: the agent's server queues, the human's CLI decides."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from controls_helpers import call, place, resting, runtime, sent_orders
from fastmcp import Client
from test_controls_halt import TOKEN, cli

from ibkr_mcp.errors import InvalidInputError
from ibkr_mcp.mcp_server import build_mcp
from ibkr_mcp.safety.approvals import decide, list_approvals


async def test_approval_end_to_end_with_the_cli_as_a_second_process(
    controls_settings: Any, sim: Any, tmp_path: Any
) -> None:
    settings = controls_settings(REQUIRE_APPROVAL="always")
    async with runtime(settings) as server:
        queued = await place(server, resting(1), "approve-0001")
        assert queued.status == "PENDING_APPROVAL" and not queued.sent
        assert queued.approval_id and queued.approval_id.startswith("apr_")
        assert sent_orders(sim) == []  # nothing reaches the broker before a human says so
        # A retry of the same key reports the state; it never queues twice.
        again = await place(server, resting(1), "approve-0001")
        assert again.status == "PENDING_APPROVAL" and again.approval_id == queued.approval_id
        async with Client(build_mcp(server)) as client:
            pending = json.loads((await client.read_resource("ibkr://approvals/pending"))[0].text)
        assert [a["approval_id"] for a in pending["approvals"]] == [queued.approval_id]
        # The human, in another process: list, then approve (with --yes for the test).
        code, listed = await cli(tmp_path, "approvals", "list", "--json")
        assert code == 0, listed
        assert json.loads(listed)[0]["approval_id"] == queued.approval_id
        code, output = await cli(
            tmp_path, "approvals", "approve", queued.approval_id, "--yes",
            IBKR_PORT=str(sim.port),
        )  # fmt: skip
        assert code == 0, output
        assert "fresh quote: bid" in output and "approved and sent" in output
        orders = sent_orders(sim)
        assert len(orders) == 1 and orders[0].fields.order_ref == "approve-0001"
        assert orders[0].client_id == settings.IBKR_CLIENT_ID  # the server's, not the CLI's
        done = (await list_approvals(server.audit, server.now()))[0]
        assert done.state == "sent" and done.decided_by and done.decided_by.startswith("cli:")
        # Exactly once: a second pass of the runner and a retry send nothing more.
        from ibkr_mcp.tools.approval_runner import process_approvals

        await process_approvals(server)
        replay = await place(server, resting(1), "approve-0001")
        assert replay.replayed and replay.sent
        assert len(sent_orders(sim)) == 1
        rows = await server.audit.order_events_for_key("approve-0001")
        events = [r["event"] for r in rows]
        assert events.count("intent") == 1 and "approved" in events
        approved = next(r for r in rows if r["event"] == "approved")
        assert json.loads(approved["detail"])["by"].startswith("cli:")
        intent = next(r for r in rows if r["event"] == "intent")
        origin = json.loads(intent["detail"])["origin"]
        assert origin["approval_id"] == queued.approval_id and origin["approved_by"]


async def test_denied_and_expired_approvals_send_nothing(controls_settings: Any, sim: Any) -> None:
    settings = controls_settings(REQUIRE_APPROVAL="always", APPROVAL_TTL_SECONDS=10)
    async with runtime(settings) as server:
        denied = await place(server, resting(1), "deny-000001")
        await decide(
            server.audit, denied.approval_id, approve=False, by="cli:test", reason="no",
            now=server.now(),
        )  # fmt: skip
        with pytest.raises(InvalidInputError):  # decided once
            await decide(
                server.audit, denied.approval_id, approve=True, by="cli:x", reason=None,
                now=server.now(),
            )  # fmt: skip
        lapsed = await place(server, resting(2), "expire-00001")
        later = server.now() + timedelta(seconds=11)
        server.now = lambda: later
        with pytest.raises(InvalidInputError):  # too late to approve
            await decide(
                server.audit, lapsed.approval_id, approve=True, by="cli:x", reason=None,
                now=later,
            )  # fmt: skip
        await asyncio.sleep(0.6)  # the runner records the expiry
        states = {a.approval_id: a.state for a in await list_approvals(server.audit, later)}
        assert states == {denied.approval_id: "denied", lapsed.approval_id: "expired"}
        retry = await place(server, resting(1), "deny-000001")
        assert retry.status == "DENIED" and not retry.sent
    assert sent_orders(sim) == []


async def test_approved_order_reruns_every_gate(controls_settings: Any, sim: Any) -> None:
    settings = controls_settings(REQUIRE_APPROVAL="always")
    async with runtime(settings) as server:
        queued = await place(server, resting(1), "rerun-00001")
        # Trading is halted between the queueing and the approval: the re-run refuses.
        from ibkr_mcp.safety.halt import engage_halt

        engage_halt(
            settings.halt_state_path, source="emergency_stop", reason="halt", by="test",
            now=server.now(),
        )  # fmt: skip
        await decide(
            server.audit, queued.approval_id, approve=True, by="http:token:x", reason=None,
            now=server.now(),
        )  # fmt: skip
        for _ in range(40):
            state = (await list_approvals(server.audit, server.now()))[0]
            if state.state != "approved":
                break
            await asyncio.sleep(0.05)
        assert state.state == "refused" and "emergency" in (state.reason or "")
    assert sent_orders(sim) == []


async def test_http_approval_routes_need_the_token(controls_settings: Any, sim: Any) -> None:
    from controls_helpers import http

    settings = controls_settings(REQUIRE_APPROVAL="always", API_TOKEN=TOKEN)
    async with runtime(settings) as server, http(settings, server, TOKEN) as client:
        queued = await place(server, resting(1), "http-appr-01")
        listed = await client.get("/api/approvals")
        assert listed.status_code == 200
        assert listed.json()["approvals"][0]["approval_id"] == queued.approval_id
        decided = await client.post(f"/api/approvals/{queued.approval_id}/approve")
        assert decided.status_code == 200, decided.text
        assert decided.json()["decided_by"].startswith("http:token:")
        for _ in range(40):
            if sent_orders(sim):
                break
            await asyncio.sleep(0.05)
    assert len(sent_orders(sim)) == 1
    plain = controls_settings(REQUIRE_APPROVAL="always")
    async with runtime(plain) as server, http(plain, server) as client:
        assert (await client.get("/api/approvals")).status_code == 401


async def test_paper_default_needs_no_approval(controls_settings: Any, sim: Any) -> None:
    async with runtime(controls_settings()) as server:  # REQUIRE_APPROVAL=live, paper account
        result = await place(server, resting(1), "paper-00001")
        preview = await call(server, "preview_order", resting(2))
    assert result.sent and result.approval_id is None
    assert "approval (skip)" in preview.passed and preview.refusals == []


@pytest.mark.parametrize("mode", ["legacy", "auto"])  # 2025-11-25 elicit / 2026-07-28 MRTR
@pytest.mark.parametrize("answer", [False, True])
async def test_elicitation_is_an_extra_layer_only(
    controls_settings: Any, sim: Any, answer: bool, mode: str
) -> None:
    from fastmcp.client.elicitation import ElicitResult

    asked: list[str] = []

    async def human(message: str, response_type: Any, params: Any, context: Any) -> Any:
        asked.append(message)
        return ElicitResult(action="accept", content={"value": answer})

    settings = controls_settings(REQUIRE_APPROVAL="always")
    async with runtime(settings) as server:
        preview = await call(server, "preview_order", resting(1))
        args = {
            **resting(1),
            "confirmation_token": preview.confirmation_token,
            "idempotency_key": f"elicit-{int(answer)}-{mode}",
        }
        async with Client(build_mcp(server), mode=mode, elicitation_handler=human) as client:
            result = await client.call_tool("place_order", args)
        data = result.structured_content
        assert len(asked) == 1 and "AAPL" in asked[0]
        state = (await list_approvals(server.audit, server.now()))[0]
        if answer:  # a yes sends nothing: the out-of-band approval is still required
            assert data["status"] == "PENDING_APPROVAL" and state.state == "pending"
        else:  # a no denies it at once
            assert data["status"] == "DENIED" and state.state == "denied"
            assert (state.decided_by or "").startswith("mcp-elicitation:")
        assert len(await list_approvals(server.audit, server.now())) == 1  # queued once
    assert sent_orders(sim) == []


async def test_cli_place_waits_for_the_human_and_sends_once(tmp_path: Any) -> None:
    import os
    import sys

    env = {**os.environ, "DATA_DIR": str(tmp_path), "ORDERS_ENABLED": "true",
           "REQUIRE_APPROVAL": "always", "PRICE_BAND_PCT": "60"}  # fmt: skip
    place_proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ibkr_mcp", "place", "AAPL", "BUY", "1", "--order-type", "LMT",
        "--limit-price", "100", "--idempotency-key", "cli-appr-001", "--yes", "--sim", "--json",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        approval_id = None
        for _ in range(200):
            code, listed = await cli(tmp_path, "approvals", "list", "--json")
            if code == 0 and json.loads(listed):
                approval_id = json.loads(listed)[0]["approval_id"]
                break
            await asyncio.sleep(0.2)
        assert approval_id, "the CLI never queued the order"
        code, output = await cli(
            tmp_path, "approvals", "approve", approval_id, "--yes", IBKR_CONNECT_TIMEOUT="1"
        )
        assert code == 0, output
        stdout, stderr = await asyncio.wait_for(place_proc.communicate(), 60)
    finally:
        if place_proc.returncode is None:
            place_proc.kill()
    assert place_proc.returncode == 0, stderr.decode()
    result = json.loads(stdout)
    assert result["sent"] is True and result["replayed"] is True, result
    assert approval_id in stderr.decode()


async def test_runner_reports_an_unavailable_audit_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from loguru import logger

    from ibkr_mcp.audit import AuditLog
    from ibkr_mcp.config import load_settings
    from ibkr_mcp.services import Services
    from ibkr_mcp.tools import approval_runner

    monkeypatch.setattr(approval_runner, "POLL_SECONDS", 0.01)
    settings = load_settings(_env_file=None, DATA_DIR=tmp_path)
    unopened = AuditLog(settings.audit_db_path)  # every read: AUDIT_UNAVAILABLE
    services = Services(settings=settings, gateway=None, audit=unopened, tokens=None)  # type: ignore[arg-type]
    lines: list[str] = []
    sink = logger.add(lines.append, level="ERROR", format="{message}")
    try:
        task = asyncio.create_task(approval_runner.run_approvals(services))
        await asyncio.sleep(0.3)  # ~30 failed passes
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        logger.remove(sink)
    assert len(lines) == 1, lines
    assert "AUDIT_UNAVAILABLE" in lines[0]


async def test_the_runner_reads_only_approvals_that_can_still_need_it(
    controls_settings: Any, sim: Any
) -> None:
    # Its polls (four a second) must not grow with every approval ever queued.
    from ibkr_mcp.safety.approvals import LATE_GRACE
    from ibkr_mcp.tools.approval_runner import process_approvals

    settings = controls_settings(REQUIRE_APPROVAL="always", APPROVAL_TTL_SECONDS=10)
    async with runtime(settings) as server:
        queued = await place(server, resting(1), "window-0001")
        now = server.now()
        assert [
            a.approval_id
            for a in await list_approvals(
                server.audit, now, queued_since=now - timedelta(minutes=1)
            )
        ] == [queued.approval_id]
        assert (
            await list_approvals(server.audit, now, queued_since=now + timedelta(seconds=1)) == []
        )
        # Long after its TTL and the grace, the runner no longer reads it (nothing to do).
        long_after = now + timedelta(seconds=10) + LATE_GRACE + timedelta(minutes=1)
        server.now = lambda: long_after
        assert await process_approvals(server) == 0
        # Shown as expired all the same (the state is derived from the time).
        shown = await list_approvals(server.audit, long_after)
        assert [a.state for a in shown] == ["expired"]
        server.now = lambda: now
        other = await place(server, resting(2), "window-0002")
    # Approved in time, after its server stopped, and never acted on: past the grace, expired.
    from ibkr_mcp.audit import AuditLog
    from ibkr_mcp.audit.keys import load_or_create_key

    key = load_or_create_key(settings.audit_key_path)
    async with AuditLog(settings.audit_db_path, key=key) as audit:
        await decide(audit, other.approval_id, approve=True, by="cli:x", reason=None, now=now)
        assert {a.approval_id: a.state for a in await list_approvals(audit, now)}[
            other.approval_id
        ] == "approved"
        shown = {a.approval_id: a for a in await list_approvals(audit, long_after)}
    assert shown[other.approval_id].state == "expired"
    assert "not sent" in (shown[other.approval_id].reason or "")
    assert sent_orders(sim) == []
