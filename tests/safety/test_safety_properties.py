"""Property-based: for any order the chain never raises and never lets a limit breach through."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from safety_helpers import NOW, PAPER, VALID_TOKEN, build_intent

from ibkr_mcp.config import Settings
from ibkr_mcp.safety.chain import GATES, evaluate
from ibkr_mcp.safety.context import GateContext, ReferenceQuote

GATE_NAMES = [g.name for g in GATES]


def make_settings(qty: int, notional: int, band: int, enabled: bool) -> Settings:
    # Every safety field explicit: the test must not depend on the environment.
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        TRADING_MODE="paper",
        ORDERS_ENABLED=enabled,
        KILL_SWITCH_FILE="/nonexistent/KILL",
        MAX_ORDER_QUANTITY=Decimal(qty),
        MAX_ORDER_NOTIONAL=Decimal(notional),
        PRICE_BAND_PCT=Decimal(band),
        ALLOWED_SYMBOLS=(),
        ALLOWED_SEC_TYPES=("STK", "CASH"),
        ALLOWED_CURRENCIES=("USD",),
    )


SETTINGS = {
    (q, n, b, e): make_settings(q, n, b, e)
    for q in (100, 1000)
    for n in (10_000, 50_000)
    for b in (1, 5)
    for e in (True, False)
}

prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(100_000), places=4)
weird = st.sampled_from(
    [Decimal(0), Decimal(-1), Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")]
)
maybe_price = st.one_of(st.none(), prices, weird)


@st.composite
def quotes(draw: Any) -> ReferenceQuote | None:
    if draw(st.integers(0, 9)) == 0:
        return None
    # Mostly everyday stock prices (so that some orders pass), sometimes anything.
    base = draw(st.one_of(st.decimals(min_value=1, max_value=500, places=2), prices))
    spread = draw(st.decimals(min_value=0, max_value=Decimal("0.02"), places=4))

    def side(value: Decimal) -> Decimal | None:
        return draw(st.one_of(st.just(value), maybe_price))

    return ReferenceQuote(
        bid=side(base * (1 - spread)),
        ask=side(base * (1 + spread)),
        last=side(base),
        delayed=draw(st.booleans()),
        timestamp=None,
    )


@st.composite
def contexts(draw: Any) -> GateContext:
    settings = SETTINGS[
        (
            draw(st.sampled_from([100, 1000])),
            draw(st.sampled_from([10_000, 50_000])),
            draw(st.sampled_from([1, 5])),
            draw(st.booleans()),
        )
    ]
    quote = draw(quotes())
    quantity = draw(
        st.one_of(
            st.decimals(min_value=1, max_value=200, places=0),
            st.decimals(min_value=1, max_value=2000, places=0),
            st.decimals(min_value=Decimal("-10"), max_value=Decimal(10**7), places=4),
            weird,
        )
    )
    order_type = draw(st.sampled_from(["MKT", "LMT", "LMT", "STP"]))
    anchor = quote.last if quote is not None and quote.last is not None else None
    if anchor is not None and anchor.is_finite() and anchor > 0 and draw(st.booleans()):
        # Aim the order's value near MAX_ORDER_NOTIONAL, where an off-by-a-bit limit would leak.
        target = settings.MAX_ORDER_NOTIONAL * draw(
            st.decimals(min_value=Decimal("0.5"), max_value=Decimal("1.5"), places=3)
        )
        quantity = max(Decimal(1), (target / anchor).to_integral_value())
    if anchor is not None and anchor.is_finite() and anchor > 0 and draw(st.booleans()):
        # Bias limit prices towards the market so that allowed orders are common.
        factor = draw(st.decimals(min_value=Decimal("0.8"), max_value=Decimal("1.2"), places=3))
        limit: Decimal | None = anchor * factor
    else:
        limit = draw(maybe_price)
    intent = build_intent(
        side=draw(st.sampled_from(["BUY", "SELL"])),
        symbol=draw(st.sampled_from(["AAPL", "MSFT", "EUR"])),
        sec_type=draw(st.sampled_from(["STK", "STK", "STK", "CASH", "OPT"])),
        quantity=quantity,
        order_type=order_type,
        limit_price=limit,
    )
    return GateContext(
        settings=settings,
        intent=intent,
        mode=draw(st.sampled_from(["place", "preview"])),
        managed_accounts=(PAPER,),
        quote=quote,
        now=NOW,
        kill_switch_active=False,
        override=None,
        token=VALID_TOKEN,
    )


def _pos(value: Decimal | None) -> Decimal | None:
    return value if value is not None and value.is_finite() and value > 0 else None


def oracle_market_price(ctx: GateContext) -> Decimal | None:
    """An independent re-statement of the spec: ask/bid by side, then last, then mid."""
    q = ctx.quote
    if q is None:
        return None
    first = _pos(q.ask) if ctx.intent.side == "BUY" else _pos(q.bid)
    bid, ask = _pos(q.bid), _pos(q.ask)
    mid = (bid + ask) / 2 if bid is not None and ask is not None and bid <= ask else None
    return first or _pos(q.last) or mid


def oracle_band_reference(ctx: GateContext) -> Decimal | None:
    q = ctx.quote
    if q is None:
        return None
    bid, ask = _pos(q.bid), _pos(q.ask)
    if bid is not None and ask is not None and bid <= ask:
        return (bid + ask) / 2
    return _pos(q.last)


@hsettings(
    max_examples=500,
    deadline=None,
    derandomize=True,  # same examples every run: CI must be deterministic
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # only the env-clean autouse
)
@given(ctx=contexts())
def test_chain_never_raises_and_never_allows_a_breach(ctx: GateContext) -> None:
    result = evaluate(ctx)  # must not raise
    names = [v.gate for v in result.verdicts]
    assert names == GATE_NAMES[: len(names)]
    assert all("internal error" not in v.reason for v in result.verdicts)
    if ctx.mode == "preview":
        assert names == GATE_NAMES
    passed = result.refused is None
    event("passed" if passed else f"refused by {result.refused.gate}")  # type: ignore[union-attr]
    if result.allowed:
        assert ctx.settings.ORDERS_ENABLED and not result.dry_run
    if not passed:
        return
    s, intent = ctx.settings, ctx.intent
    band = s.PRICE_BAND_PCT
    qty = intent.quantity
    assert qty.is_finite() and 0 < qty <= s.MAX_ORDER_QUANTITY
    assert intent.sec_type in s.ALLOWED_SEC_TYPES
    if intent.order_type == "LMT":
        limit = _pos(intent.limit_price)
        ref = oracle_band_reference(ctx)
        assert limit is not None and ref is not None
        assert qty * limit <= s.MAX_ORDER_NOTIONAL
        assert abs(limit - ref) <= ref * band / 100
    else:
        assert intent.order_type == "MKT"
        ref = oracle_market_price(ctx)
        assert ref is not None
        assert qty * ref * (1 + band / 100) <= s.MAX_ORDER_NOTIONAL
