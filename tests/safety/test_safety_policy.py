"""describe_policy: JSON-safe, ordered gates, one-line summary, override status when live."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ibkr_mcp.safety.chain import GATES
from ibkr_mcp.safety.policy import describe_policy


def test_default_policy(make_settings: Any) -> None:
    policy = describe_policy(make_settings())
    orjson.dumps(policy)  # JSON-safe: raises otherwise
    assert policy["summary"] == (
        "paper mode, orders disabled (dry run), max 1000 shares / 50000 USD per order, "
        "price band 5%"
    )
    assert policy["mode"] == "paper" and policy["orders_enabled"] is False
    assert [g["name"] for g in policy["gates"]] == [g.name for g in GATES]
    assert policy["limits"]["max_order_quantity"] == 1000  # a JSON number, not text
    assert policy["allowlists"] == {
        "all_symbols": True,
        "symbols": [],
        "sec_types": ["STK"],
        "currencies": ["USD"],
    }
    assert policy["kill_switch"]["active"] is False
    assert policy["live_override"]["required"] is False
    assert policy["confirmation_token_ttl_seconds"] == 120


def test_kill_switch_detected_from_file_or_given(make_settings: Any) -> None:
    settings = make_settings(ORDERS_ENABLED=True)
    assert describe_policy(settings, kill_switch_active=True)["summary"].startswith(
        "KILL SWITCH ACTIVE"
    )
    settings.kill_switch_path.parent.mkdir(parents=True)
    settings.kill_switch_path.touch()
    policy = describe_policy(settings)
    assert policy["kill_switch"] == {"path": str(settings.kill_switch_path), "active": True}
    assert "orders enabled" in policy["summary"]


def test_live_policy_reports_override_status(make_settings: Any, tmp_path: Path) -> None:
    path = tmp_path / "ov.txt"
    settings = make_settings(TRADING_MODE="live", LIVE_TRADING_OVERRIDE_FILE=path)
    status = describe_policy(settings)["live_override"]
    assert status["required"] and status["present"] is False and status["problem"] == "missing"
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    path.write_text(f"account=U7654321\nexpires={expires}\nsymbols=AAPL\n")
    os.chmod(path, 0o600)
    status = describe_policy(settings)["live_override"]
    assert status["valid"] is True and status["account"] == "U7654321"
    assert status["symbols"] == ["AAPL"]
    os.chmod(path, 0o666)
    assert describe_policy(settings)["live_override"]["problem"] == "writable by group or others"
