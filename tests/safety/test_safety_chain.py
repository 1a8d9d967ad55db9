"""The chain: gate order, stop at first refusal when placing, every verdict when previewing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from safety_helpers import PAPER, build_intent, build_quote

from ibkr_mcp.errors import GateRefusedError
from ibkr_mcp.safety.chain import GATES, ChainResult, evaluate, refusal_error
from ibkr_mcp.safety.context import GateContext, TokenCheck
from ibkr_mcp.safety.facts import collect_facts
from ibkr_mcp.safety.gates import Verdict
from ibkr_mcp.safety.tokens import TokenStore

ORDER = [
    "trading_mode",
    "orders_enabled",
    "live_override",
    "kill_switch",
    "emergency_stop",
    "rejection_breaker",
    "allowlists",
    "trading_hours",
    "quantity",
    "notional",
    "price_band",
    "short_sale",
    "concentration",
    "daily_loss",
    "duplicate_order",
    "order_rate",
    "daily_notional",
    "confirmation",
    "approval",
]
FLOW_GATES = {
    "emergency_stop",
    "rejection_breaker",
    "trading_hours",
    "short_sale",
    "concentration",
    "daily_loss",
    "duplicate_order",
    "order_rate",
    "daily_notional",
}
NO_TOKEN = TokenCheck(False, False, "no confirmation token given")


def outcomes(result: ChainResult) -> dict[str, str]:
    return {v.gate: v.outcome for v in result.verdicts}


def test_gate_order_is_fixed() -> None:
    assert [g.name for g in GATES] == ORDER
    assert all(g.description for g in GATES)


def test_valid_paper_order_is_allowed_when_enabled(make_ctx: Any) -> None:
    result = evaluate(make_ctx(ORDERS_ENABLED=True))
    assert result.allowed and not result.dry_run and result.refused is None
    assert [v.gate for v in result.verdicts] == ORDER
    assert outcomes(result)["live_override"] == "skip"
    assert outcomes(result)["approval"] == "skip"  # paper: REQUIRE_APPROVAL=live skips
    # Without collected flow facts (a hand-built context) the flow gates skip, never allow.
    assert {o for g, o in outcomes(result).items() if g in FLOW_GATES} == {"skip"}
    base = {g: o for g, o in outcomes(result).items() if g not in {*FLOW_GATES, "approval"}}
    assert {o for g, o in base.items() if g != "live_override"} == {"allow"}


def test_dry_run_continues_and_is_not_allowed(make_ctx: Any) -> None:
    result = evaluate(make_ctx(ORDERS_ENABLED=False))
    assert result.dry_run and not result.allowed and result.refused is None
    assert [v.gate for v in result.verdicts] == ORDER
    assert outcomes(result)["orders_enabled"] == "dry_run"
    assert outcomes(result)["confirmation"] == "allow"


def test_dry_run_then_later_refusal_is_refused(make_ctx: Any) -> None:
    result = evaluate(make_ctx(ORDERS_ENABLED=False, kill=True))
    assert result.dry_run and not result.allowed
    assert result.refused is not None and result.refused.gate == "kill_switch"
    # Place mode stops at the refusal: no later verdicts.
    assert [v.gate for v in result.verdicts] == ORDER[: ORDER.index("kill_switch") + 1]


def test_place_stops_at_first_refusal(make_ctx: Any) -> None:
    intent = build_intent(quantity=Decimal(5000), limit_price=Decimal(1850))
    result = evaluate(make_ctx(intent=intent, ORDERS_ENABLED=True))
    assert result.refused is not None and result.refused.gate == "quantity"
    assert result.verdicts[-1] is result.refused
    assert "notional" not in outcomes(result)
    assert not result.allowed


def test_preview_reports_every_verdict(make_ctx: Any) -> None:
    intent = build_intent(quantity=Decimal(5000), limit_price=Decimal(1850))
    ctx = make_ctx(intent=intent, mode="preview", token=NO_TOKEN, ORDERS_ENABLED=True)
    result = evaluate(ctx)
    assert [v.gate for v in result.verdicts] == ORDER
    assert result.refused is not None and result.refused.gate == "quantity"
    got = outcomes(result)
    assert got["notional"] == got["price_band"] == "refuse"
    assert got["confirmation"] == "skip"
    assert not result.allowed and not result.passed


def test_preview_of_good_order_passes_without_token(make_ctx: Any) -> None:
    result = evaluate(make_ctx(mode="preview", token=NO_TOKEN))
    assert result.passed and result.dry_run  # default ORDERS_ENABLED=false
    assert outcomes(result)["confirmation"] == "skip"


def test_default_settings_refuse_five_million_share_market_order(make_ctx: Any) -> None:
    intent = build_intent(quantity=Decimal(5_000_000), order_type="MKT", limit_price=None)
    ctx = make_ctx(intent=intent, mode="preview", quote=build_quote("189.95", "190.05", "190"))
    result = evaluate(ctx)
    assert result.refused is not None and not result.allowed
    got = outcomes(result)
    assert got["quantity"] == "refuse" and got["notional"] == "refuse"
    # Even with ORDERS_ENABLED=true and a token, placing it is refused.
    placed = evaluate(make_ctx(intent=intent, ORDERS_ENABLED=True))
    assert not placed.allowed and placed.refused is not None


def test_market_order_without_quote_is_refused(make_ctx: Any) -> None:
    intent = build_intent(order_type="MKT", limit_price=None, quantity=Decimal(1))
    result = evaluate(make_ctx(intent=intent, quote=None, ORDERS_ENABLED=True))
    assert result.refused is not None and result.refused.gate == "notional"
    assert "cannot be bounded" in result.refused.reason


def test_limit_fat_finger_is_refused(make_ctx: Any) -> None:
    intent = build_intent(quantity=Decimal(1), limit_price=Decimal(1850))
    ctx = make_ctx(intent=intent, quote=build_quote("184.95", "185.05", "185"), ORDERS_ENABLED=True)
    result = evaluate(ctx)
    assert result.refused is not None and result.refused.gate == "price_band"


def test_kill_switch_refuses_everything(make_ctx: Any) -> None:
    result = evaluate(make_ctx(kill=True, ORDERS_ENABLED=True))
    assert result.refused is not None and result.refused.gate == "kill_switch"


def test_missing_token_refused_when_placing(make_ctx: Any) -> None:
    result = evaluate(make_ctx(token=NO_TOKEN, ORDERS_ENABLED=True))
    assert result.refused is not None and result.refused.gate == "confirmation"


class _Boom:
    name = "boom"
    description = "always raises"

    def check(self, ctx: GateContext) -> Verdict:
        raise RuntimeError("bug")


def test_a_raising_gate_fails_closed(make_ctx: Any) -> None:
    result = evaluate(make_ctx(ORDERS_ENABLED=True), gates=(*GATES[:2], _Boom(), *GATES[2:]))
    assert not result.allowed
    assert result.refused is not None and result.refused.gate == "boom"
    assert "fail closed" in result.refused.reason


def test_refusal_error_names_gate_reason_remedy(make_ctx: Any) -> None:
    result = evaluate(
        make_ctx(kill=True, mode="preview", intent=build_intent(quantity=Decimal("9e9")))
    )
    err = refusal_error(result)
    assert isinstance(err, GateRefusedError)
    assert err.code == "GATE_REFUSED"
    assert "kill_switch" in err.message and "Also refused by: quantity" in err.message
    assert result.refused is not None and err.remedy == result.refused.remedy
    assert err.details["gate"] == "kill_switch"
    assert err.details["reason"].startswith("the kill switch is ACTIVE")
    assert [v["gate"] for v in err.details["verdicts"]] == ORDER
    assert result.to_dict()["refused"]["gate"] == "kill_switch"


def test_refusal_error_without_refusal_is_a_bug(make_ctx: Any) -> None:
    with pytest.raises(ValueError, match="without a refusal"):
        refusal_error(evaluate(make_ctx(ORDERS_ENABLED=True)))


def test_full_flow_preview_token_place_consume(make_settings: Any) -> None:
    settings = make_settings(ORDERS_ENABLED=True)
    tokens = TokenStore(settings.CONFIRMATION_TOKEN_TTL_SECONDS)
    intent = build_intent()
    common = {"managed_accounts": (PAPER,), "quote": build_quote(), "tokens": tokens}
    preview = evaluate(collect_facts(settings, intent, mode="preview", token=None, **common))
    assert preview.passed
    issued = tokens.issue(intent)
    place_ctx = collect_facts(settings, intent, mode="place", token=issued.token, **common)
    placed = evaluate(place_ctx)
    assert placed.allowed
    tokens.consume(issued.token, intent.fingerprint())
    again = evaluate(collect_facts(settings, intent, mode="place", token=issued.token, **common))
    assert again.refused is not None and again.refused.gate == "confirmation"
    assert "already used" in again.refused.reason
    # The token is bound to the order: a different quantity is refused.
    other = build_intent(quantity=Decimal(11))
    issued2 = tokens.issue(intent)
    changed = evaluate(collect_facts(settings, other, mode="place", token=issued2.token, **common))
    assert changed.refused is not None and "different order" in changed.refused.reason


def test_kill_switch_file_is_read_per_order(make_settings: Any, tmp_path: Any) -> None:
    settings = make_settings(ORDERS_ENABLED=True)
    tokens = TokenStore(60)
    intent = build_intent()
    issued = tokens.issue(intent)

    def place() -> ChainResult:
        ctx = collect_facts(
            settings,
            intent,
            mode="place",
            managed_accounts=(PAPER,),
            quote=build_quote(),
            tokens=tokens,
            token=issued.token,
        )
        return evaluate(ctx)

    assert place().allowed
    settings.kill_switch_path.parent.mkdir(parents=True, exist_ok=True)
    settings.kill_switch_path.write_text("stop\n")
    assert settings.kill_switch_path.is_relative_to(tmp_path)
    refused = place().refused
    assert refused is not None and refused.gate == "kill_switch"
    settings.kill_switch_path.unlink()
    assert place().allowed
