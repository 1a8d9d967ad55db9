"""Each gate alone, table-driven: what it refuses and what it allows."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from safety_helpers import LIVE, NOW, PAPER, build_intent, build_quote, valid_override

from ibkr_mcp.safety.context import TokenCheck
from ibkr_mcp.safety.gates import (
    AllowlistGate,
    ConfirmationGate,
    KillSwitchGate,
    LiveOverrideGate,
    NotionalGate,
    OrdersEnabledGate,
    PriceBandGate,
    QuantityGate,
    TradingModeGate,
)

D = Decimal


@pytest.mark.parametrize(
    ("mode", "account", "managed", "outcome", "fragment"),
    [
        ("paper", PAPER, (PAPER,), "allow", "paper account DU1234567"),
        ("paper", "DF1234567", ("DF1234567",), "allow", "paper account"),
        ("paper", LIVE, (LIVE,), "refuse", "is a LIVE account but TRADING_MODE=paper"),
        ("live", PAPER, (PAPER,), "refuse", "is a PAPER account but TRADING_MODE=live"),
        ("live", LIVE, (LIVE,), "allow", "live account U7654321"),
        ("paper", PAPER, ("DU9999999",), "refuse", "not managed by the connected gateway"),
        ("paper", PAPER, (), "refuse", "managed: none"),
        ("paper", "", (PAPER,), "refuse", "names no account"),
    ],
)
def test_trading_mode_gate(
    make_ctx: Any, mode: str, account: str, managed: tuple[str, ...], outcome: str, fragment: str
) -> None:
    ctx = make_ctx(intent=build_intent(account=account), managed=managed, TRADING_MODE=mode)
    verdict = TradingModeGate().check(ctx)
    assert verdict.gate == "trading_mode"
    assert verdict.outcome == outcome
    assert fragment in verdict.reason
    assert (verdict.remedy is not None) == (outcome == "refuse")


@pytest.mark.parametrize(
    ("enabled", "mode", "outcome", "fragment"),
    [
        (True, "place", "allow", "ORDERS_ENABLED=true"),
        (False, "place", "dry_run", "NOTHING was sent to the broker"),
        (False, "preview", "dry_run", "NOTHING would be sent"),
    ],
)
def test_orders_enabled_gate(
    make_ctx: Any, enabled: bool, mode: str, outcome: str, fragment: str
) -> None:
    verdict = OrdersEnabledGate().check(make_ctx(mode=mode, ORDERS_ENABLED=enabled))
    assert verdict.outcome == outcome
    assert fragment in verdict.reason
    if outcome == "dry_run":
        assert "ORDERS_ENABLED=true" in verdict.reason
        assert verdict.remedy and "restart" in verdict.remedy


def test_kill_switch_gate(make_ctx: Any) -> None:
    gate = KillSwitchGate()
    refused = gate.check(make_ctx(kill=True))
    assert refused.outcome == "refuse"
    assert "kill switch is ACTIVE" in refused.reason
    assert gate.check(make_ctx(kill=False)).outcome == "allow"


@pytest.mark.parametrize(
    ("intent", "settings", "outcome", "fragment"),
    [
        ({}, {}, "allow", "any symbol"),
        ({"sec_type": "OPT"}, {}, "refuse", "security type OPT is not allowed"),
        ({"currency": "EUR"}, {}, "refuse", "currency EUR is not allowed"),
        ({"symbol": "TSLA"}, {"ALLOWED_SYMBOLS": "AAPL,MSFT"}, "refuse", "symbol TSLA"),
        ({"symbol": "msft"}, {"ALLOWED_SYMBOLS": "AAPL,MSFT"}, "allow", "symbol MSFT"),
        (
            {"sec_type": "CASH", "symbol": "EUR"},
            {"ALLOWED_SEC_TYPES": "STK,CASH"},
            "allow",
            "CASH in USD",
        ),
        ({}, {"ALLOWED_SEC_TYPES": ""}, "refuse", "nothing allowed"),
        ({}, {"ALLOWED_CURRENCIES": ""}, "refuse", "nothing allowed"),
    ],
)
def test_allowlist_gate(
    make_ctx: Any, intent: dict[str, Any], settings: dict[str, Any], outcome: str, fragment: str
) -> None:
    verdict = AllowlistGate().check(make_ctx(intent=build_intent(**intent), **settings))
    assert verdict.outcome == outcome
    assert fragment in verdict.reason


@pytest.mark.parametrize(
    ("qty", "outcome", "fragment"),
    [
        ("1", "allow", "quantity 1 ≤"),
        ("1000", "allow", "≤ MAX_ORDER_QUANTITY=1000"),
        ("1000.0001", "refuse", "exceeds MAX_ORDER_QUANTITY=1000"),
        ("5000000", "refuse", "exceeds"),
        ("0", "refuse", "not a positive number"),
        ("-5", "refuse", "not a positive number"),
        ("NaN", "refuse", "not a positive number"),
        ("Infinity", "refuse", "not a positive number"),
    ],
)
def test_quantity_gate(make_ctx: Any, qty: str, outcome: str, fragment: str) -> None:
    verdict = QuantityGate().check(make_ctx(intent=build_intent(quantity=D(qty))))
    assert verdict.outcome == outcome
    assert fragment in verdict.reason


_NO_QUOTE = None


@pytest.mark.parametrize(
    ("intent", "quote", "outcome", "fragment"),
    [
        # LMT: qty × limit, quote not needed.
        ({"quantity": D(100), "limit_price": D(190)}, build_quote(), "allow", "19,000.00 USD"),
        ({"quantity": D(100), "limit_price": D(190)}, _NO_QUOTE, "allow", "100 × limit 190"),
        ({"quantity": D(300), "limit_price": D(190)}, build_quote(), "refuse", "57,000.00 USD"),
        # MKT BUY: qty × ask × 1.05 = 250 × 190.10 × 1.05 = 49901.25 ≤ 50000.
        (
            {"order_type": "MKT", "limit_price": None, "quantity": D(250)},
            build_quote(),
            "allow",
            "ask 190.10",
        ),
        (
            {"order_type": "MKT", "limit_price": None, "quantity": D(251)},
            build_quote(),
            "refuse",
            "exceeds MAX_ORDER_NOTIONAL",
        ),
        # MKT SELL uses the bid.
        (
            {"order_type": "MKT", "limit_price": None, "side": "SELL"},
            build_quote(),
            "allow",
            "bid 189.90",
        ),
        # Fallbacks: last, then mid; delayed noted.
        ({"order_type": "MKT", "limit_price": None}, build_quote(ask=None), "allow", "last 190.00"),
        (
            {"order_type": "MKT", "limit_price": None},
            # IB's -1 means "no data": a BUY with no ask and no last cannot be bounded.
            build_quote(ask="-1", last=None),
            "refuse",
            "no usable quote",
        ),
        ({"order_type": "MKT", "limit_price": None}, build_quote(delayed=True), "allow", "DELAYED"),
        # Unboundable.
        ({"order_type": "MKT", "limit_price": None}, _NO_QUOTE, "refuse", "cannot be bounded"),
        (
            {"order_type": "MKT", "limit_price": None},
            build_quote(None, None, None),
            "refuse",
            "no usable quote",
        ),
        ({"order_type": "LMT", "limit_price": None}, build_quote(), "refuse", "no positive limit"),
        ({"order_type": "STP", "limit_price": None}, build_quote(), "refuse", "no positive stop"),
        # FX notional is in the quote currency, and says so.
        (
            {"sec_type": "CASH", "symbol": "EUR", "quantity": D(1000), "limit_price": D("1.08")},
            build_quote("1.0799", "1.0801", "1.08"),
            "allow",
            "quote currency USD",
        ),
    ],
)
def test_notional_gate(
    make_ctx: Any, intent: dict[str, Any], quote: Any, outcome: str, fragment: str
) -> None:
    verdict = NotionalGate().check(make_ctx(intent=build_intent(**intent), quote=quote))
    assert verdict.outcome == outcome, verdict.reason
    assert fragment in verdict.reason


@pytest.mark.parametrize(
    ("intent", "quote", "outcome", "fragment"),
    [
        ({"limit_price": D("190.00")}, build_quote(), "allow", "within the 5% band"),
        ({"limit_price": D("199.50")}, build_quote(), "allow", "5.00%"),
        ({"limit_price": D("199.51")}, build_quote(), "refuse", "outside the 5% price band"),
        ({"limit_price": D("180.50")}, build_quote(), "allow", "within"),
        ({"limit_price": D("180.49")}, build_quote(), "refuse", "outside"),
        # The classic fat finger: 1850 instead of 185.0.
        ({"limit_price": D(1850)}, build_quote("184.9", "185.1", "185"), "refuse", "fat finger"),
        ({"limit_price": D("18.50")}, build_quote("184.9", "185.1", "185"), "refuse", "outside"),
        # No bid/ask: falls back to last; delayed noted.
        ({"limit_price": D(190)}, build_quote(None, None, "190"), "allow", "last 190"),
        ({"limit_price": D(250)}, build_quote(delayed=True), "refuse", "DELAYED quote"),
        # Crossed book: mid unusable, last used.
        ({"limit_price": D(190)}, build_quote("191", "189", "190"), "allow", "last 190"),
        # No quote: band cannot be checked.
        ({"limit_price": D(190)}, None, "refuse", "cannot be checked"),
        ({"limit_price": D(190)}, build_quote(None, None, None), "refuse", "cannot be checked"),
        ({"limit_price": D(0)}, build_quote(), "refuse", "no positive limit price"),
        # MKT: bounded through the notional gate, needs a quote.
        ({"order_type": "MKT", "limit_price": None}, build_quote(), "allow", "bounded by ask"),
        ({"order_type": "MKT", "limit_price": None}, None, "refuse", "cannot be bounded"),
        ({"order_type": "STP LMT"}, build_quote(), "refuse", "cannot be price-checked"),
    ],
)
def test_price_band_gate(
    make_ctx: Any, intent: dict[str, Any], quote: Any, outcome: str, fragment: str
) -> None:
    verdict = PriceBandGate().check(make_ctx(intent=build_intent(**intent), quote=quote))
    assert verdict.outcome == outcome, verdict.reason
    assert fragment in verdict.reason


def test_price_band_follows_setting(make_ctx: Any) -> None:
    intent = build_intent(limit_price=D(209))
    assert PriceBandGate().check(make_ctx(intent=intent)).outcome == "refuse"
    wide = make_ctx(intent=intent, PRICE_BAND_PCT=D(10))
    assert PriceBandGate().check(wide).outcome == "allow"


@pytest.mark.parametrize(
    ("mode", "token", "outcome", "fragment"),
    [
        ("preview", TokenCheck(False, False, "no confirmation token given"), "skip", "issued"),
        ("place", TokenCheck(False, False, "no confirmation token given"), "refuse", "no conf"),
        ("place", TokenCheck(True, False, "token expired at x"), "refuse", "token expired at x"),
        (
            "place",
            TokenCheck(True, False, "token was issued for a different order"),
            "refuse",
            "different order",
        ),
        ("place", TokenCheck(True, True, None), "allow", "valid for this exact order"),
    ],
)
def test_confirmation_gate(
    make_ctx: Any, mode: str, token: TokenCheck, outcome: str, fragment: str
) -> None:
    verdict = ConfirmationGate().check(make_ctx(mode=mode, token=token))
    assert verdict.outcome == outcome
    assert fragment in verdict.reason
    if outcome == "refuse":
        assert verdict.remedy and "preview_order" in verdict.remedy


OV_PATH = Path("/srv/override.txt")


@pytest.mark.parametrize(
    ("override", "intent", "outcome", "fragment"),
    [
        (valid_override(OV_PATH), {}, "allow", "valid until 2026-01-16"),
        (None, {}, "refuse", "does not exist"),
        (valid_override(OV_PATH, exists=False), {}, "refuse", "does not exist"),
        (valid_override(OV_PATH, owner_ok=False), {}, "refuse", "not owned by the user"),
        (valid_override(OV_PATH, mode_ok=False), {}, "refuse", "writable by group or others"),
        (
            valid_override(OV_PATH, account=None, expires=None, error="line 1 is not key=value"),
            {},
            "refuse",
            "malformed: line 1",
        ),
        (valid_override(OV_PATH, account="U1111111"), {}, "refuse", "is for account U1111111"),
        (valid_override(OV_PATH, expires=NOW), {}, "refuse", "expired at"),
        (valid_override(OV_PATH, expires=NOW - timedelta(days=1)), {}, "refuse", "expired"),
        (valid_override(OV_PATH, symbols=("MSFT",)), {}, "refuse", "not in the override file"),
        (valid_override(OV_PATH, symbols=("MSFT", "AAPL")), {}, "allow", "valid until"),
        # 10 × 190 = 1900.
        (valid_override(OV_PATH, max_notional=D(1900)), {}, "allow", "valid until"),
        (valid_override(OV_PATH, max_notional=D(1899)), {}, "refuse", "max_notional=1899"),
        (
            valid_override(OV_PATH, max_notional=D(1_000_000)),
            {"order_type": "MKT", "limit_price": None},
            "allow",
            "valid until",
        ),
    ],
)
def test_live_override_gate(
    make_ctx: Any, override: Any, intent: dict[str, Any], outcome: str, fragment: str
) -> None:
    ctx = make_ctx(
        intent=build_intent(account=LIVE, **intent), override=override, TRADING_MODE="live"
    )
    verdict = LiveOverrideGate().check(ctx)
    assert verdict.outcome == outcome, verdict.reason
    assert fragment in verdict.reason
    if outcome == "refuse":
        assert verdict.remedy


def test_live_override_remedy_shows_example_file(make_ctx: Any) -> None:
    ctx = make_ctx(intent=build_intent(account=LIVE), TRADING_MODE="live")
    verdict = LiveOverrideGate().check(ctx)
    assert verdict.outcome == "refuse"
    assert verdict.remedy is not None
    assert f"account={LIVE}\nexpires=2026-01-15T23:00:00+00:00" in verdict.remedy


def test_live_override_unbounded_order_with_cap_is_refused(make_ctx: Any) -> None:
    ctx = make_ctx(
        intent=build_intent(account=LIVE, order_type="MKT", limit_price=None),
        override=valid_override(OV_PATH, max_notional=D(1_000_000)),
        quote=None,
        TRADING_MODE="live",
    )
    verdict = LiveOverrideGate().check(ctx)
    assert verdict.outcome == "refuse"
    assert "cannot be bounded" in verdict.reason


@pytest.mark.parametrize(
    ("mode", "account", "outcome"),
    [("paper", PAPER, "skip"), ("paper", LIVE, "refuse"), ("live", PAPER, "refuse")],
)
def test_live_override_applies_to_live_mode_or_live_account(
    make_ctx: Any, mode: str, account: str, outcome: str
) -> None:
    ctx = make_ctx(intent=build_intent(account=account), TRADING_MODE=mode)
    assert LiveOverrideGate().check(ctx).outcome == outcome


@pytest.mark.parametrize(
    ("sec_type", "multiplier", "outcome"),
    [("OPT", 100, "allow"), ("FUT", 50, "allow"), ("FUT", 500, "refuse")],
)
def test_notional_counts_the_multiplier(
    make_ctx: Any, sec_type: str, multiplier: int, outcome: str
) -> None:
    from ibkr_mcp.safety.gates.notional import NotionalGate

    intent = build_intent(sec_type=sec_type, quantity=Decimal(1), multiplier=Decimal(multiplier))
    verdict = NotionalGate().check(make_ctx(intent=intent))
    assert verdict.outcome == outcome
    assert f"multiplier {multiplier}" in verdict.reason


@pytest.mark.parametrize(("allowed", "outcome"), [(False, "refuse"), (True, "allow")])
def test_mkt_on_delayed_quote(make_ctx: Any, allowed: bool, outcome: str) -> None:
    from ibkr_mcp.safety.gates.price_band import PriceBandGate

    ctx = make_ctx(
        intent=build_intent(order_type="MKT", limit_price=None),
        quote=build_quote(delayed=True),
        ALLOW_MKT_ON_DELAYED_QUOTES=allowed,
    )
    verdict = PriceBandGate().check(ctx)
    assert verdict.outcome == outcome
    assert ("delayed" in verdict.reason.lower()) or ("DELAYED" in verdict.reason)
    lmt = make_ctx(intent=build_intent(), quote=build_quote(delayed=True))
    assert PriceBandGate().check(lmt).outcome == "allow"


# --- daily_notional: a modification is judged by what it adds -------------------------------


def _modification(make_ctx: Any, standing: Any, sent: str, **change: Any) -> Any:
    import dataclasses

    from ibkr_mcp.safety.context import FlowFacts

    mkt = build_intent(order_type="MKT", limit_price=None, quantity=Decimal(9), modifies=42)
    ctx = make_ctx(
        intent=dataclasses.replace(mkt, **change),
        quote=build_quote(ask="100.00", bid="99.90", last="100.00"),
        PRICE_BAND_PCT=5,
        MAX_DAILY_NOTIONAL=1000,
    )
    flow = FlowFacts(collected=True, notional_today=Decimal(sent))
    return dataclasses.replace(ctx, flow=flow, standing=standing(mkt))


def test_daily_notional_values_the_standing_order_like_the_change(make_ctx: Any) -> None:
    from ibkr_mcp.safety.context import Standing
    from ibkr_mcp.safety.gates.daily_notional import DailyNotionalGate

    gate = DailyNotionalGate()
    unknown = lambda mkt: Standing(intent=mkt, recorded=None)  # noqa: E731 - an earlier day's
    # A market order changed only in its TIF adds nothing, band or no band (945 - 945).
    same = _modification(make_ctx, unknown, "960", tif="GTC")
    assert gate.check(same).outcome == "allow"
    # Reduced: nothing added either.
    smaller = _modification(make_ctx, unknown, "960", quantity=Decimal("8.6"))
    assert gate.check(smaller).outcome == "allow"
    # Raised by one share: 105 (with the band) more, past the limit.
    bigger = _modification(make_ctx, unknown, "960", quantity=Decimal(10))
    verdict = gate.check(bigger)
    assert verdict.outcome == "refuse" and "105.00 more than it stands" in verdict.reason
    # Held in today's sum at 900 (the ask, no band): the standing order counts at most that,
    # so the change is charged the band on top of what the day holds (945 - 900 = 45).
    held = _modification(make_ctx, lambda mkt: Standing(intent=mkt, recorded=Decimal(900)), "0")
    assert gate.check(held).reason.startswith("45.00 sent today")


def test_a_modification_never_counts_less_in_the_gate_than_its_intent_records() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    from ibkr_mcp.safety.context import Standing
    from ibkr_mcp.safety.pricing import added_value, order_notional

    quote = build_quote(ask="100.00", bid="99.90", last="100.00")
    qty = st.integers(min_value=1, max_value=50).map(Decimal)

    @given(before=qty, after=qty, recorded=st.none() | qty.map(lambda q: q * 97))
    def check(before: Decimal, after: Decimal, recorded: Decimal | None) -> None:
        old = build_intent(order_type="MKT", limit_price=None, quantity=before, modifies=1)
        new = build_intent(order_type="MKT", limit_price=None, quantity=after, modifies=1)
        standing = Standing(intent=old, recorded=recorded)
        values = []
        for band in (Decimal(0), Decimal(5)):
            value = order_notional(new, quote, band)
            assert not isinstance(value, str)
            values.append(added_value(value.value, standing, quote, band))
        row, gate = values  # what the intent row records (no band) vs what the gate counts
        assert gate >= row

    check()
