"""Output and error shapes an agent keys on: numbers as JSON numbers, sentinels null, fields named.

Over an in-memory ``fastmcp.Client`` against the seeded simulator (the red-team findings: account
values as IB's raw text, model-level validation errors blamed on ``(input)``, limits as text).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from fastmcp import Client

from ibkr_mcp.errors import InvalidInputError, json_safe
from ibkr_mcp.gateway.account_values import account_value
from ibkr_mcp.mcp_server import build_mcp

#: A LMT order that passes input validation (each case below breaks one thing).
LMT = {"symbol": "AAPL", "side": "BUY", "quantity": 10, "order_type": "LMT", "limit_price": 100}


@pytest.fixture
async def client(services: Any) -> Any:
    async with Client(build_mcp(services)) as c:
        yield c


async def test_account_values_are_numbers_texts_or_null(client: Any) -> None:
    result = await client.call_tool("get_account_summary", {}, raise_on_error=False)
    values = result.structured_content["values"]
    assert values["NetLiquidation"] == 1000000 and values["Cushion"] == 1
    assert values["AccountType"] == "INDIVIDUAL" and values["Currency"] == "USD"
    assert values["AccountCode"] == "DU1234567"
    assert values["DayTradesRemaining"] is None  # IB's -1: no day-trade limit, not a count
    texts = {"AccountType", "AccountCode", "Currency"}
    assert all(v is None or isinstance(v, int | float) for k, v in values.items() if k not in texts)
    resource = json.loads((await client.read_resource("ibkr://account/summary"))[0].text)
    assert resource["values"] == values


@pytest.mark.parametrize(
    ("tag", "text", "expected"),
    [
        ("NetLiquidation", "1000000.00", Decimal("1000000.00")),
        ("UnrealizedPnL", "-1.50", Decimal("-1.50")),  # -1 is a sentinel only for day trades
        ("UnrealizedPnL", "-1", Decimal(-1)),
        ("DayTradesRemaining", "-1", None),
        ("DayTradesRemainingT+2", "-1", None),
        ("DayTradesRemaining", "3", Decimal(3)),
        ("MaintMarginReq", "1.7976931348623157E308", None),  # IB's unset double
        ("Cushion", "NaN", None),
        ("Cushion", "inf", None),
        ("AccruedCash", "", None),
        ("AccountType", "INDIVIDUAL", "INDIVIDUAL"),
        ("AccountCode", "12345678", "12345678"),  # an identifier, even when all digits
        ("SegmentTitle-S", "Securities", "Securities"),
        ("WhatIfPMEnabled", "true", "true"),
        ("TradingType-S", "STKNOPT", "STKNOPT"),
    ],
)
def test_account_value(tag: str, text: str, expected: Any) -> None:
    value = account_value(tag, text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("tool", "args", "fields"),
    [
        ("preview_order", {**LMT, "limit_price": None}, ["limit_price"]),
        ("preview_order", {**LMT, "order_type": "MKT"}, ["limit_price"]),
        ("preview_order", {**LMT, "take_profit_price": 90}, ["take_profit_price"]),
        ("preview_order", {**LMT, "side": "SELL", "stop_loss_price": 90}, ["stop_loss_price"]),
        ("preview_order", {**LMT, "tif": "GTD"}, ["good_till"]),
        ("preview_order", {**LMT, "quantity": "1.5"}, ["quantity"]),
        ("preview_order", {**LMT, "stop_loss_limit_price": 90}, ["stop_loss_price"]),
        ("preview_order", {**LMT, "tif": "IOC", "take_profit_price": 110}, ["tif"]),
        (
            "preview_order",
            {**LMT, "order_type": "MOC", "limit_price": None, "take_profit_price": 110},
            ["order_type"],
        ),
        ("preview_order", {**LMT, "sec_type": "OPT"}, ["expiry", "strike", "right"]),
        ("preview_order", {**LMT, "sec_type": "OPT", "strike": 200}, ["expiry", "right"]),
        ("get_quote", {"symbol": "ES", "sec_type": "FUT", "right": "C"}, ["right"]),
        ("get_quote", {"symbol": "AAPL", "expiry": "20261218"}, ["expiry"]),
        ("close_position", {"symbol": "AAPL", "order_type": "LMT"}, ["limit_price"]),
        (
            "get_option_chain",
            {"symbol": "AAPL", "expiry_from": "20270101", "expiry_to": "20261201"},
            ["expiry_to"],
        ),
        (
            "modify_order",
            {"order_id": 1, "limit_price": 1, "confirmation_token": "tok-12345"},
            ["idempotency_key"],
        ),
        # No one field is wrong: the whole input is.
        ("modify_order", {"order_id": 1}, ["(input)"]),
    ],
)
async def test_model_level_errors_name_their_fields(
    client: Any, tool: str, args: dict[str, Any], fields: list[str]
) -> None:
    args = {k: v for k, v in args.items() if v is not None}
    result = await client.call_tool(tool, args, raise_on_error=False)
    assert result.is_error
    error = result.structured_content
    assert error["code"] == "INVALID_INPUT"
    assert [e["field"] for e in error["details"]["errors"]] == fields
    for e in error["details"]["errors"]:
        assert e["type"] == "value_error" and not e["message"].startswith("Value error")
        if e["field"] != "(input)":
            assert f"{e['field']}: " in error["message"]  # the summary names it too


def test_decimals_in_error_details_are_numbers() -> None:
    error = InvalidInputError("x", details={"limit": Decimal("50000"), "pct": Decimal("2.5")})
    assert error.to_dict()["details"] == {"limit": 50000, "pct": 2.5}
    assert json_safe([Decimal("NaN"), Decimal("1E+30")]) == [None, str(10**30)]


async def test_safety_limits_are_numbers(client: Any) -> None:
    health = (await client.call_tool("get_health", {})).structured_content
    policy = json.loads((await client.read_resource("ibkr://safety/policy"))[0].text)
    for limits in (health["safety"]["limits"], policy["limits"]):
        assert limits["max_order_quantity"] == 1000
        assert limits["max_order_notional"] == 50000
        assert limits["price_band_pct"] == 5
        assert limits["max_daily_notional"] == 250000
        assert limits["max_daily_loss"] is None  # off by default


@pytest.mark.parametrize("expiry", ["20261318", "20260431", "202613", "00000000"])
async def test_an_expiry_must_be_a_calendar_date(client: Any, expiry: str) -> None:
    result = await client.call_tool(
        "get_option_chain", {"symbol": "AAPL", "expiry_from": expiry}, raise_on_error=False
    )
    assert result.is_error and result.structured_content["code"] == "INVALID_INPUT"
    assert [e["field"] for e in result.structured_content["details"]["errors"]] == ["expiry_from"]
