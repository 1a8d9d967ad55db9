"""The IB error table: every listed code maps to the right error; advisory codes never fail."""

from __future__ import annotations

import pytest

from ibkr_mcp.errors import (
    ContractNotFoundError,
    GatewayError,
    GatewayUnavailableError,
    InvalidInputError,
    MarketDataError,
    OrderNotFoundError,
    OrderRejectedError,
    PacingViolationError,
)
from ibkr_mcp.gateway import ib_errors
from ibkr_mcp.gateway.ib_errors import (
    ADVISORY_CODES,
    CANCEL_CONFIRM_CODES,
    DELAYED_FALLBACK_CODES,
    IB_ERROR_TABLE,
    is_advisory,
    translate,
    translate_order_error,
)

EXPECTED = {
    200: ContractNotFoundError,
    162: MarketDataError,
    354: MarketDataError,
    10089: MarketDataError,
    10090: MarketDataError,
    10091: MarketDataError,
    10167: MarketDataError,
    10168: MarketDataError,
    10197: MarketDataError,
    1100: GatewayUnavailableError,
    326: GatewayUnavailableError,
    321: InvalidInputError,
    201: OrderRejectedError,
    110: OrderRejectedError,
    103: OrderRejectedError,
    504: GatewayUnavailableError,
    502: GatewayUnavailableError,
    10147: OrderNotFoundError,
}


@pytest.mark.parametrize(("code", "cls"), sorted(EXPECTED.items()))
def test_listed_code_maps_with_remedy(code: int, cls: type) -> None:
    err = translate(code, "IB says no", req_id=7, context="doing X", extra={"symbol": "AAPL"})
    assert type(err) is cls
    assert err.remedy
    assert err.details["ib_code"] == code
    assert err.details["ib_message"] == "IB says no"
    assert err.details["req_id"] == 7
    assert err.details["symbol"] == "AAPL"
    assert err.message.startswith("doing X: ")
    assert f"IB {code}" in err.message


def test_table_covers_every_expected_code() -> None:
    assert set(EXPECTED) - {162} <= set(IB_ERROR_TABLE)


@pytest.mark.parametrize("code", [2104, 2106, 2158, 2119, 2107, 2108, 2199, 10167, 2150])
def test_advisory_codes_are_not_failures(code: int) -> None:
    assert is_advisory(code)


@pytest.mark.parametrize("code", [200, 201, 110, 354, 1100, 326, 321, 162, 504, 10089, 202])
def test_failures_are_not_advisory(code: int) -> None:
    assert not is_advisory(code)


def test_named_groups_are_frozensets() -> None:
    for name in (
        "ADVISORY_CODES",
        "CONNECTIVITY_LOST_CODES",
        "CONNECTIVITY_RESTORED_CODES",
        "DELAYED_FALLBACK_CODES",
        "CONNECTION_CODES",
        "ORDER_REJECT_CODES",
        "CANCEL_CONFIRM_CODES",
        "MARKET_DATA_CODES",
    ):
        assert isinstance(getattr(ib_errors, name), frozenset), name
    assert {2104, 2106, 2158, 2199} <= ADVISORY_CODES
    assert {354, 10089, 10090, 10167} <= DELAYED_FALLBACK_CODES
    assert 202 in CANCEL_CONFIRM_CODES


def test_unknown_code_is_generic_gateway_error() -> None:
    err = translate(9999, "mystery")
    assert type(err) is GatewayError
    assert err.code == "GATEWAY_ERROR"
    assert "req_id" not in err.details


@pytest.mark.parametrize(
    ("text", "cls", "code"),
    [
        ("Historical data request pacing violation", PacingViolationError, "PACING_VIOLATION"),
        ("HMDS query returned no data: AAPL@SMART Trades", MarketDataError, None),
        ("No market data permissions for NYSE STK", MarketDataError, None),
        ("something else", MarketDataError, None),
    ],
)
def test_162_variants(text: str, cls: type, code: str | None) -> None:
    err = translate(162, text)
    assert type(err) is cls
    if code:
        assert err.code == code
    assert err.remedy


def test_322_simultaneous_historical_is_pacing() -> None:
    text = (
        "Error processing request:-'wd' : cause - Only 50 simultaneous API historical data "
        "requests allowed."
    )
    err = translate(322, text)
    assert type(err) is PacingViolationError
    assert "50 open at once" in (err.remedy or "")
    assert type(translate(322, "Error processing request.")) is not PacingViolationError


def test_110_remedy_says_round_to_min_tick() -> None:
    err = translate(110, "The price does not conform to the minimum price variation")
    assert "min_tick" in (err.remedy or "")


def test_326_remedy_names_client_id_setting() -> None:
    assert "IBKR_CLIENT_ID" in (translate(326, "client id in use").remedy or "")


def test_order_errors_become_rejections_with_reason() -> None:
    err = translate_order_error(399, "Order would violate something", order_id=5)
    assert isinstance(err, OrderRejectedError)
    assert "Order would violate something" in err.message
    assert err.details["order_id"] == 5
    # The table's class is kept for not-found and connection codes.
    assert isinstance(translate_order_error(10147, "not found", order_id=5), OrderNotFoundError)
    assert isinstance(translate_order_error(504, "Not connected"), GatewayUnavailableError)
    assert isinstance(translate_order_error(201, "no money"), OrderRejectedError)
