"""The one table translating IB API error codes into this project's errors, with remedies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ibkr_mcp.errors import (
    ContractNotFoundError,
    GatewayError,
    GatewayUnavailableError,
    IbkrMcpError,
    InvalidInputError,
    MarketDataError,
    OrderNotFoundError,
    OrderRejectedError,
    PacingViolationError,
)

#: Notices that never mean a request failed (farm status, simulator notice, delayed-data banner).
ADVISORY_CODES: Final[frozenset[int]] = frozenset({2104, 2106, 2107, 2108, 2119, 2158, 2199, 10167})
#: The gateway lost its link to IB's servers; the socket stays up but nothing works.
CONNECTIVITY_LOST_CODES: Final[frozenset[int]] = frozenset({1100})
#: The link is back; 1101 means market data subscriptions were lost and must be redone.
CONNECTIVITY_RESTORED_CODES: Final[frozenset[int]] = frozenset({1101, 1102})
#: Subscriptions were dropped on the IB side: cached market data is stale.
DATA_LOST_CODES: Final[frozenset[int]] = frozenset({1101})
#: Live data is not available but delayed data is: a "live_or_delayed" request retries as 3.
DELAYED_FALLBACK_CODES: Final[frozenset[int]] = frozenset({354, 10089, 10090, 10091, 10167})
#: Codes that concern the socket / session, not one request.
CONNECTION_CODES: Final[frozenset[int]] = frozenset({326, 502, 504, 1100})
#: Codes with which IB refuses or kills an order.
ORDER_REJECT_CODES: Final[frozenset[int]] = frozenset({103, 110, 161, 201, 203, 321, 10147})
#: Codes that mean the cancel worked (202 "Order Canceled") — never an error for cancel_order.
CANCEL_CONFIRM_CODES: Final[frozenset[int]] = frozenset({202})
#: Market data permission / subscription problems.
MARKET_DATA_CODES: Final[frozenset[int]] = frozenset(
    {354, 10089, 10090, 10091, 10167, 10168, 10186, 10197}
)

#: IB marks all of 2100–2169 as warnings; the explicit set above is what we know by name.
_WARNING_RANGE: Final[range] = range(2100, 2170)


@dataclass(frozen=True)
class IbErrorSpec:
    """How one IB code becomes one of our errors."""

    error: type[IbkrMcpError]
    title: str
    remedy: str


_SUBSCRIBE = (
    "Subscribe to the market data in IBKR Client Portal (Settings → Market Data "
    "Subscriptions), or set MARKET_DATA_TYPE=live_or_delayed / delayed to use delayed data."
)

#: code → how to translate it. Codes missing here become a plain ``GatewayError``.
IB_ERROR_TABLE: Final[dict[int, IbErrorSpec]] = {
    103: IbErrorSpec(
        OrderRejectedError,
        "duplicate order id",
        "Retry the order; another client may be using the same client id (set IBKR_CLIENT_ID).",
    ),
    110: IbErrorSpec(
        OrderRejectedError,
        "price does not conform to the minimum price variation (tick size)",
        "Round the limit price to a multiple of the contract's min_tick "
        "(see get_contract_details) and retry.",
    ),
    161: IbErrorSpec(
        OrderRejectedError,
        "order is not in a cancellable state",
        "Check the order status; filled or already cancelled orders cannot be cancelled.",
    ),
    162: IbErrorSpec(
        MarketDataError,
        "historical data request failed",
        "Check the duration, bar size and what_to_show, or your market data permissions.",
    ),
    200: IbErrorSpec(
        ContractNotFoundError,
        "no security definition found",
        "Check the symbol, sec_type, currency and exchange, or use search_contracts.",
    ),
    201: IbErrorSpec(
        OrderRejectedError,
        "order rejected",
        "Read IB's reason: reduce the quantity, check buying power, permissions and price.",
    ),
    203: IbErrorSpec(
        OrderRejectedError,
        "security not available or allowed for this account",
        "Check the account's trading permissions for this security.",
    ),
    321: IbErrorSpec(
        InvalidInputError,
        "request validation failed",
        "Fix the request parameters IB named in the message and retry.",
    ),
    326: IbErrorSpec(
        GatewayUnavailableError,
        "client id already in use",
        "Another API client uses this client id: set IBKR_CLIENT_ID to an unused number.",
    ),
    354: IbErrorSpec(MarketDataError, "market data not subscribed", _SUBSCRIBE),
    366: IbErrorSpec(
        MarketDataError,
        "no historical data query found",
        "Retry the request; the data query had already ended.",
    ),
    502: IbErrorSpec(
        GatewayUnavailableError,
        "could not connect to TWS / IB Gateway",
        "Start IB Gateway or TWS with the API enabled on the configured port, or run with --sim.",
    ),
    504: IbErrorSpec(
        GatewayUnavailableError,
        "not connected",
        "Start IB Gateway or TWS with the API enabled, or run with --sim; the server reconnects.",
    ),
    1100: IbErrorSpec(
        GatewayUnavailableError,
        "connectivity between IB Gateway and IB's servers is lost",
        "Wait for IB Gateway to reconnect to IB (check its window and your internet link).",
    ),
    10089: IbErrorSpec(
        MarketDataError,
        "part of the requested market data needs additional subscriptions; delayed is available",
        _SUBSCRIBE,
    ),
    10090: IbErrorSpec(
        MarketDataError,
        "part of the requested market data is not subscribed; delayed is available",
        _SUBSCRIBE,
    ),
    10091: IbErrorSpec(
        MarketDataError,
        "part of the requested market data needs additional subscriptions; delayed is available",
        _SUBSCRIBE,
    ),
    10147: IbErrorSpec(
        OrderNotFoundError,
        "order to cancel was not found",
        "Check the order id with get_open_orders / get_order_status.",
    ),
    10167: IbErrorSpec(
        MarketDataError,
        "only delayed market data is available",
        _SUBSCRIBE,
    ),
    10168: IbErrorSpec(
        MarketDataError,
        "delayed market data is not enabled",
        "Enable delayed data in TWS / IB Gateway (or subscribe), or set MARKET_DATA_TYPE=live.",
    ),
    10186: IbErrorSpec(
        MarketDataError,
        "market data requested is not subscribed and delayed data is not enabled",
        _SUBSCRIBE,
    ),
    10197: IbErrorSpec(
        MarketDataError,
        "no market data during a competing live session",
        "Log out of the other session (TWS, Client Portal or mobile) that holds live data, "
        "or use delayed data.",
    ),
}


def is_advisory(code: int) -> bool:
    """Whether ``code`` is a notice that never means a request failed."""
    return code in ADVISORY_CODES or code in _WARNING_RANGE


def _historical_variant(message: str) -> tuple[type[IbkrMcpError], str, str] | None:
    """Error 162 covers several situations; IB tells them apart only in the text."""
    text = message.lower()
    if "pacing" in text:
        return (
            PacingViolationError,
            "historical data pacing violation",
            "Wait about 10 minutes, then make fewer / smaller historical data requests "
            "(IB allows ~60 requests per 10 minutes).",
        )
    if "no data" in text or "returned no data" in text:
        # IB's answer to a span without bars (before the instrument's history, on a closed
        # market day, small bars older than its limit) — never an empty list.
        return (
            MarketDataError,
            "historical data query returned no data",
            "IB has no bars in that span: pass an end within the instrument's history (bars of "
            "30 secs or less go back about six months), a longer duration, or use_rth=false.",
        )
    if "permission" in text or "subscription" in text:
        return (MarketDataError, "no historical data permission", _SUBSCRIBE)
    return None


def translate(
    code: int,
    message: str,
    *,
    req_id: int | None = None,
    context: str | None = None,
    extra: dict[str, Any] | None = None,
) -> IbkrMcpError:
    """Turn an IB error into our error with a remedy.

    Args:
        code: IB's error code.
        message: IB's error text (kept verbatim in the message and details).
        req_id: The request or order id IB reported, if any.
        context: What we were doing (``"resolving AAPL"``), prefixed to the message.
        extra: More details to attach (symbol, order id, ...).

    Returns:
        The error to raise; codes not in the table become a ``GatewayError``.
    """
    spec = IB_ERROR_TABLE.get(code)
    if code == 162:
        variant = _historical_variant(message)
        if variant is not None:
            cls, title, remedy = variant
            spec = IbErrorSpec(cls, title, remedy)
    if code == 322 and "simultaneous" in message.lower():
        # IB's "Only 50 simultaneous API historical data requests allowed" (a 322, not a 162).
        spec = IbErrorSpec(
            PacingViolationError,
            "too many simultaneous historical data requests",
            "Wait for open historical data requests to finish (IB allows 50 open at once), "
            "then retry.",
        )
    if spec is None:
        cls, title, remedy = GatewayError, "IB error", "See IB's message; retry or check TWS."
    else:
        cls, title, remedy = spec.error, spec.title, spec.remedy
    details: dict[str, Any] = {"ib_code": code, "ib_message": message}
    if req_id is not None and req_id >= 0:
        details["req_id"] = req_id
    if extra:
        details.update(extra)
    prefix = f"{context}: " if context else ""
    return cls(f"{prefix}{title} (IB {code}: {message})", remedy=remedy, details=details)


def translate_order_error(
    code: int, message: str, *, order_id: int | None = None, context: str = "order"
) -> IbkrMcpError:
    """Translate an error IB attached to an order: anything order-related is a rejection.

    Args:
        code: IB's error code.
        message: IB's reason, kept verbatim.
        order_id: The order's id.
        context: What was being done (``"place order 12"``).

    Returns:
        ``OrderRejectedError`` (keeping the table's remedy when it has one), or the table's
        error for connection / not-found codes.
    """
    extra = {"order_id": order_id} if order_id is not None else None
    base = translate(code, message, req_id=order_id, context=context, extra=extra)
    if code in CONNECTION_CODES or isinstance(base, OrderNotFoundError | OrderRejectedError):
        return base
    return OrderRejectedError(base.message, remedy=base.remedy, details=base.details)
