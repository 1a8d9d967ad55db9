"""Confirmation tokens: binding to the order fingerprint, expiry, single use, thread safety."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from safety_helpers import build_intent

from ibkr_mcp.errors import ConfirmationError
from ibkr_mcp.safety import tokens as tokens_module
from ibkr_mcp.safety.context import OrderIntent
from ibkr_mcp.safety.tokens import TokenStore, token_id


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 15, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_issue_returns_secret_id_and_expiry() -> None:
    clock = FakeClock()
    store = TokenStore(120, clock=clock)
    issued = store.issue(build_intent())
    assert len(issued.token) >= 32
    assert issued.token_id == token_id(issued.token)
    assert issued.token_id.startswith("tok_") and issued.token not in issued.token_id
    assert issued.expires_at == clock.now + timedelta(seconds=120)
    assert store.issue(build_intent()).token != issued.token


def test_check_has_no_side_effects_and_consume_is_single_use() -> None:
    store = TokenStore(120, clock=FakeClock())
    intent = build_intent()
    issued = store.issue(intent)
    for _ in range(3):
        assert store.check(issued.token, intent.fingerprint()).valid
    store.consume(issued.token, intent.fingerprint())
    check = store.check(issued.token, intent.fingerprint())
    assert check.present and not check.valid and check.reason == tokens_module.USED
    with pytest.raises(ConfirmationError) as info:
        store.consume(issued.token, intent.fingerprint())
    assert info.value.code == "CONFIRMATION_REQUIRED"
    assert info.value.details == {"reason": tokens_module.USED, "token_id": issued.token_id}
    assert info.value.remedy and "preview_order" in info.value.remedy


def test_expiry_with_injected_clock() -> None:
    clock = FakeClock()
    store = TokenStore(120, clock=clock)
    intent = build_intent()
    issued = store.issue(intent)
    clock.advance(119.999)
    assert store.check(issued.token, intent.fingerprint()).valid
    clock.advance(0.001)
    check = store.check(issued.token, intent.fingerprint())
    assert not check.valid and check.reason is not None and "expired" in check.reason
    with pytest.raises(ConfirmationError, match="expired"):
        store.consume(issued.token, intent.fingerprint())
    # Expired tokens are pruned: afterwards the token is simply unknown.
    assert len(store) == 0
    assert store.check(issued.token, intent.fingerprint()).reason == tokens_module.UNKNOWN


def test_only_expired_tokens_are_pruned_oldest_first() -> None:
    clock = FakeClock()
    store = TokenStore(120, clock=clock)
    intent = build_intent()
    issued = []
    for _ in range(3):
        issued.append(store.issue(intent))
        clock.advance(50)  # issued at 0, 50, 100
    clock.advance(-25)  # now 125: the first expired, the others live
    store.consume(issued[2].token, intent.fingerprint())
    assert len(store) == 2
    assert store.check(issued[0].token, intent.fingerprint()).reason == tokens_module.UNKNOWN
    assert store.check(issued[1].token, intent.fingerprint()).valid


def test_wrong_fingerprint_refused_and_token_survives() -> None:
    store = TokenStore(120, clock=FakeClock())
    intent = build_intent()
    issued = store.issue(intent)
    other = build_intent(limit_price=Decimal("190.01")).fingerprint()
    assert store.check(issued.token, other).reason == "token was issued for a different order"
    with pytest.raises(ConfirmationError, match="token was issued for a different order"):
        store.consume(issued.token, other)
    # A mismatched attempt does not burn the token for its own order.
    store.consume(issued.token, intent.fingerprint())


@pytest.mark.parametrize("token", [None, "", "not-a-token"])
def test_missing_and_unknown_tokens(token: str | None) -> None:
    store = TokenStore(120)
    check = store.check(token, build_intent().fingerprint())
    assert not check.valid
    assert check.present == bool(token)
    with pytest.raises(ConfirmationError):
        store.consume(token or "", build_intent().fingerprint())


def test_restart_invalidates_tokens() -> None:
    intent = build_intent()
    issued = TokenStore(120).issue(intent)
    assert not TokenStore(120).check(issued.token, intent.fingerprint()).valid


def test_store_is_bounded() -> None:
    store = TokenStore(120, clock=FakeClock(), max_tokens=3)
    intent = build_intent()
    first = store.issue(intent)
    for _ in range(3):
        store.issue(intent)
    assert len(store) == 3
    assert store.check(first.token, intent.fingerprint()).reason == tokens_module.UNKNOWN


def test_concurrent_consume_succeeds_exactly_once() -> None:
    store = TokenStore(120)
    intent = build_intent()
    issued = store.issue(intent)
    wins: list[bool] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        try:
            store.consume(issued.token, intent.fingerprint())
            wins.append(True)
        except ConfirmationError:
            wins.append(False)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenStore(0)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"limit_price": Decimal("185.0")}, {"limit_price": Decimal("185")}),
        ({"limit_price": Decimal("1.85E+2")}, {"limit_price": Decimal("185.000")}),
        ({"quantity": Decimal("10.0")}, {"quantity": Decimal(10)}),
        ({"exchange": "SMART"}, {"exchange": "ISLAND"}),  # routing is not part of the order id
    ],
)
def test_fingerprint_is_canonical(a: dict[str, object], b: dict[str, object]) -> None:
    assert build_intent(**a).fingerprint() == build_intent(**b).fingerprint()


@pytest.mark.parametrize(
    "change",
    [
        {"account": "DU7777777"},
        {"con_id": 1},
        {"symbol": "MSFT"},
        {"side": "SELL"},
        {"quantity": Decimal(11)},
        {"order_type": "MKT"},
        {"limit_price": Decimal("190.01")},
        {"limit_price": None},
        {"tif": "GTC"},
    ],
)
def test_fingerprint_changes_with_every_identifying_field(change: dict[str, object]) -> None:
    fingerprint = build_intent(**change).fingerprint()
    assert fingerprint != build_intent().fingerprint()
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0


def test_intent_from_request_and_quote_conversion() -> None:
    from datetime import UTC, datetime

    from ibkr_mcp.models import Contract, OrderRequest, Quote
    from ibkr_mcp.safety.context import ReferenceQuote

    contract = Contract(
        con_id=265598,
        symbol="AAPL",
        sec_type="STK",
        exchange="SMART",
        primary_exchange="NASDAQ",
        currency="USD",
        local_symbol="AAPL",
        trading_class="NMS",
    )
    request = OrderRequest(
        account="DU1234567",
        contract=contract,
        side="BUY",
        quantity=Decimal(10),
        order_type="LMT",
        limit_price=Decimal("190.00"),
    )
    assert OrderIntent.from_request(request) == build_intent()
    ts = datetime(2026, 1, 15, tzinfo=UTC)
    kwargs = {"symbol": "AAPL", "con_id": 1, "currency": "USD", "timestamp": ts}
    live = Quote(
        bid=Decimal(1),
        ask=Decimal(2),
        last=None,
        market_data_type="live",
        source="simulator",
        **kwargs,
    )
    delayed = live.model_copy(update={"market_data_type": "delayed"})
    assert ReferenceQuote.from_quote(live) == ReferenceQuote(
        Decimal(1), Decimal(2), None, False, ts
    )
    assert ReferenceQuote.from_quote(delayed).delayed is True
