"""Keyed audit chain (HMAC under a key outside the database), anchors, and order-row origins."""

from __future__ import annotations

import json
import sqlite3
import stat
from typing import Any

from controls_helpers import place, resting, runtime
from fastmcp import Client
from test_controls_halt import cli

from ibkr_mcp.audit._codec import canonical_json
from ibkr_mcp.audit.keys import read_key
from ibkr_mcp.audit.verify import verify_file
from ibkr_mcp.mcp_server import build_mcp


async def test_chain_is_keyed_and_verify_needs_the_key(
    controls_settings: Any, sim: Any, tmp_path: Any
) -> None:
    settings = controls_settings()
    async with runtime(settings) as services:
        await place(services, resting(1), "keyed-00001")
    key_file = settings.audit_key_path
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = read_key(key_file)
    assert key is not None and len(key) == 32
    db = settings.audit_db_path
    with sqlite3.connect(db) as conn:
        hashes = [r[0] for r in conn.execute("SELECT row_hash FROM order_events")]
    assert hashes and all(h.startswith("k1:") for h in hashes)
    assert verify_file(db, key).ok
    assert not verify_file(db, None).ok  # keyed rows cannot be checked without the key
    code, output = await cli(tmp_path, "audit", "verify")
    assert code == 0, output
    assert key.hex() not in output


async def test_rehashed_rows_without_the_key_are_detected(controls_settings: Any, sim: Any) -> None:
    import hashlib

    settings = controls_settings()
    async with runtime(settings) as services:
        await place(services, resting(1), "tamper-0001")
    db, key = settings.audit_db_path, read_key(settings.audit_key_path)
    with sqlite3.connect(db) as conn:
        # The attacker can write the file: drop the triggers, edit a row and re-hash the
        # whole chain from there with plain SHA-256 (they do not have the key).
        conn.execute("DROP TRIGGER order_events_no_update")
        row = conn.execute("SELECT * FROM order_events ORDER BY seq LIMIT 1").fetchone()
        names = [d[0] for d in conn.execute("SELECT * FROM order_events LIMIT 0").description]
        values = dict(zip(names, row, strict=True))
        values["quantity"] = "1000"
        body = {k: v for k, v in values.items() if k != "row_hash"}
        forged = hashlib.sha256(canonical_json(body)).hexdigest()
        conn.execute(
            "UPDATE order_events SET quantity = '1000', row_hash = ? WHERE id = ?",
            (forged, values["id"]),
        )
    result = verify_file(db, key)
    assert not result.ok and result.first_bad is not None


async def test_anchor_detects_truncation(controls_settings: Any, sim: Any, tmp_path: Any) -> None:
    settings = controls_settings()
    async with runtime(settings) as services:
        await place(services, resting(1), "anchor-0001")
    anchors = tmp_path / "anchors.jsonl"
    code, output = await cli(tmp_path, "audit", "anchor", "--output", str(anchors))
    assert code == 0, output
    line = json.loads(anchors.read_text().splitlines()[-1])
    assert set(line) == {"seq", "hash", "time"} and line["hash"].startswith("k1:")
    code, output = await cli(tmp_path, "audit", "verify", "--anchor", str(anchors))
    assert code == 0, output
    with sqlite3.connect(settings.audit_db_path) as conn:
        for table in ("events", "order_events", "fills"):
            conn.execute(f"DROP TRIGGER {table}_no_delete")
            conn.execute(f"DELETE FROM {table} WHERE seq >= ?", (line["seq"],))
    code, output = await cli(tmp_path, "audit", "verify", "--anchor", str(anchors))
    assert code == 1
    assert "truncated" in output


async def test_every_order_row_names_its_origin(controls_settings: Any, sim: Any) -> None:
    settings = controls_settings()
    async with runtime(settings) as services:
        async with Client(build_mcp(services)) as client:
            preview = await client.call_tool("preview_order", resting(1))
            token = preview.structured_content["confirmation_token"]
            await client.call_tool(
                "place_order",
                {**resting(1), "confirmation_token": token, "idempotency_key": "origin-0001"},
            )
        rows = await services.audit.order_events_for_key("origin-0001")
    intent = next(r for r in rows if r["event"] == "intent")
    origin = json.loads(intent["detail"])["origin"]
    assert origin["surface"] == "mcp"
    assert origin["correlation_id"] == intent["correlation_id"]
    assert origin["client_name"] and "session" in origin
