"""Order shapes through the pipeline: the input union, brackets and stops proven at the broker."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from order_helpers import call, preview_and_place, sent_orders

from ibkr_mcp.errors import GateRefusedError, IbkrMcpError


@pytest.fixture
def enabled_settings(settings_for: Any, sim: Any) -> Any:
    """Orders enabled; SELL stops without a position allowed (the short-sale gate has its own
    tests): these tests are about order shapes."""
    return settings_for(sim.port, ORDERS_ENABLED=True, ALLOW_SHORT=True)


async def _mid(services: Any, symbol: str = "AAPL") -> Decimal:
    quote = await call(services, "get_quote", {"symbol": symbol})
    return ((quote.bid + quote.ask) / 2).quantize(Decimal("0.01"))


def _pct(price: Decimal, pct: str) -> Decimal:
    return (price * (1 + Decimal(pct) / 100)).quantize(Decimal("0.01"))


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"order_type": "STP"}, "stop_price"),
        ({"order_type": "STP_LMT", "stop_price": 100}, "limit_price"),
        ({"order_type": "MKT", "limit_price": 100}, "limit_price"),
        ({"order_type": "TRAIL"}, "trailing_amount"),
        ({"order_type": "TRAIL", "trailing_amount": 1, "trailing_percent": 1}, "trailing"),
        ({"order_type": "TRAIL_LIMIT", "trailing_amount": 1}, "limit_offset"),
        ({"order_type": "MIT", "limit_price": 1, "stop_price": 1}, "limit_price"),
        ({"order_type": "MOC", "tif": "GTC"}, "tif"),
        ({"order_type": "STP", "stop_price": 1, "tif": "OPG"}, "OPG"),
        ({"order_type": "LMT", "limit_price": 1, "tif": "GTD"}, "good_till"),
        ({"order_type": "LMT", "limit_price": 100, "take_profit_price": 90}, "take_profit_price"),
        ({"order_type": "LMT", "limit_price": 100, "stop_loss_price": 110}, "stop_loss_price"),
        ({"order_type": "MOC", "stop_loss_price": 90}, "bracket"),
        ({"order_type": "LMT", "limit_price": 1, "stop_loss_limit_price": 1}, "stop_loss_price"),
    ],
)
async def test_fields_a_type_needs_or_forbids_are_named(
    enabled: Any, sim: Any, fields: dict[str, Any], named: str
) -> None:
    order = {"symbol": "AAPL", "side": "BUY", "quantity": 1, **fields}
    with pytest.raises(IbkrMcpError) as info:
        await call(enabled, "preview_order", order)
    assert info.value.code == "INVALID_INPUT"
    assert named in info.value.message
    assert sent_orders(sim) == []


async def test_enums_accept_any_case(enabled: Any) -> None:
    mid = await _mid(enabled)
    order = {
        "symbol": "aapl",
        "side": "sell",
        "quantity": 1,
        "order_type": "stp lmt",
        "stop_price": str(_pct(mid, "-2")),
        "limit_price": str(_pct(mid, "-3")),
        "tif": "gtc",
    }
    preview = await call(enabled, "preview_order", order)
    assert (preview.order.side, preview.order.order_type, preview.order.tif) == (
        "SELL",
        "STP_LMT",
        "GTC",
    )
    assert preview.refusals == []


async def test_schema_shows_the_union_over_order_type() -> None:
    from ibkr_mcp.mcp_server import compact_schema
    from ibkr_mcp.tools.order_models import PlaceInput

    schema = compact_schema(PlaceInput)
    branches = {
        str(b["properties"]["order_type"].get("const") or b["properties"]["order_type"]["enum"]): b
        for b in schema["oneOf"]
    }
    stp = next(b for k, b in branches.items() if "'STP'" in k or k == "STP")
    assert stp["required"] == ["order_type", "stop_price"]
    assert stp["properties"]["limit_price"] is False
    mkt = next(b for k, b in branches.items() if "MKT" in k)
    assert all(mkt["properties"][f] is False for f in ("limit_price", "stop_price"))


async def test_stop_on_the_wrong_side_is_refused_and_nothing_sent(enabled: Any, sim: Any) -> None:
    mid = await _mid(enabled)
    order = {
        "symbol": "AAPL",
        "side": "SELL",
        "quantity": 1,
        "order_type": "STP",
        "stop_price": str(_pct(mid, "2")),
    }
    preview = await call(enabled, "preview_order", order)
    assert [r.gate for r in preview.refusals] == ["price_band"]
    assert "stop must be below the market" in preview.refusals[0].reason
    assert preview.next_step.startswith("REFUSED")
    with pytest.raises(GateRefusedError) as info:
        await preview_and_place(enabled, order, "stop-wrong-1")
    assert info.value.details["refusals"][0]["gate"] == "price_band"
    assert sent_orders(sim) == []


async def test_a_refused_bracket_leg_sends_nothing(enabled: Any, sim: Any) -> None:
    mid = await _mid(enabled)
    order = {
        "symbol": "AAPL",
        "side": "BUY",
        "quantity": 5,
        "order_type": "LMT",
        "limit_price": str(mid),
        "take_profit_price": str(_pct(mid, "30")),  # outside the 5% band: a fat finger
        "stop_loss_price": str(_pct(mid, "-2")),
    }
    preview = await call(enabled, "preview_order", order)
    assert preview.would_send is False
    assert preview.confirmation_token is None
    assert preview.refusals[0].gate == "price_band"
    assert preview.refusals[0].reason.startswith("take_profit leg:")
    assert preview.order.take_profit_price == _pct(mid, "30")
    with pytest.raises(GateRefusedError):
        await preview_and_place(enabled, order, "bracket-refused-1")
    assert sent_orders(sim) == []


async def test_bracket_token_binds_every_leg(enabled: Any, sim: Any) -> None:
    mid = await _mid(enabled)
    order = {
        "symbol": "AAPL",
        "side": "BUY",
        "quantity": 5,
        "order_type": "LMT",
        "limit_price": str(_pct(mid, "-1")),
        "take_profit_price": str(_pct(mid, "3")),
        "stop_loss_price": str(_pct(mid, "-3")),
    }
    preview = await call(enabled, "preview_order", order)
    assert preview.would_send is True
    changed = {**order, "stop_loss_price": str(_pct(mid, "-4"))}
    with pytest.raises(GateRefusedError) as info:
        await call(
            enabled,
            "place_order",
            {
                **changed,
                "confirmation_token": preview.confirmation_token,
                "idempotency_key": "brk-tok-1",
            },
        )
    assert info.value.details["gate"] == "confirmation"
    assert sent_orders(sim) == []


async def test_option_order_refused_by_default_allowlist(enabled: Any, sim: Any) -> None:
    order = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "order_type": "MKT",
             "sec_type": "OPT", "expiry": "20261218", "strike": 200, "right": "c"}  # fmt: skip
    try:
        preview = await call(enabled, "preview_order", order)
    except IbkrMcpError as exc:  # the simulator may not list options yet
        assert exc.code in ("CONTRACT_NOT_FOUND", "AMBIGUOUS_CONTRACT")
    else:
        assert preview.refusals[0].gate == "allowlists"
    assert sent_orders(sim) == []


async def test_bracket_preview_snapshot(enabled: Any, snapshot: Any) -> None:
    order = {"symbol": "AAPL", "side": "BUY", "quantity": 5, "order_type": "LMT",
             "limit_price": 207, "take_profit_price": 215, "stop_loss_price": 201,
             "stop_loss_limit_price": 200.5, "tif": "GTC"}  # fmt: skip
    preview = await call(enabled, "preview_order", order)
    assert preview.confirmation_token is not None
    # The token and its expiry are random / wall-clock: everything else is fixed by the seed.
    shown = preview.model_dump(mode="json", exclude={"confirmation_token", "token_expires_at",
                                                     "next_step"})  # fmt: skip
    assert shown == snapshot


async def test_wait_for_order_sends_mcp_progress(enabled: Any) -> None:
    from fastmcp import Client

    from ibkr_mcp.mcp_server import build_mcp

    mid = await _mid(enabled)
    order = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "order_type": "LMT",
             "limit_price": _pct(mid, "-2")}  # fmt: skip
    placed = await preview_and_place(enabled, order, "progress-0001")
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with Client(build_mcp(enabled)) as client:
        result = await client.call_tool(
            "wait_for_order",
            {"order_id": placed.order_id, "timeout_seconds": 1},
            progress_handler=on_progress,
        )
    assert result.structured_content["timed_out"] is True
    assert seen and seen[0][1] == 1 and "Submitted" in (seen[0][2] or "")
