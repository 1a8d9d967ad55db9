"""Valid example arguments per tool: what /docs pre-fills for "Try it out" (data only)."""

from __future__ import annotations

from typing import Any, Final

#: One valid request per tool with inputs (tools without required inputs need none). A test
#: validates each against the tool's input model, and schemathesis sends them.
EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "get_quote": {"symbol": "AAPL"},
    "get_quotes": {"symbols": ["AAPL", "MSFT"]},
    "get_bars": {"symbol": "AAPL", "duration": "5 D", "bar_size": "1 day"},
    "search_contracts": {"pattern": "APP"},
    "get_contract_details": {"symbol": "AAPL"},
    "get_order_status": {"order_id": 1},
    "get_executions": {"symbol": "AAPL"},
    "preview_order": {
        "symbol": "AAPL",
        "side": "BUY",
        "quantity": "10",
        "order_type": "LMT",
        "limit_price": "150.00",
        "tif": "DAY",
    },
    "place_order": {
        "symbol": "AAPL",
        "side": "BUY",
        "quantity": "10",
        "order_type": "LMT",
        "limit_price": "150.00",
        "tif": "DAY",
        "confirmation_token": "paste-the-token-from-preview_order",
        "idempotency_key": "my-order-0001",
    },
    "cancel_order": {"order_id": 1},
    "modify_order": {"order_id": 1, "limit_price": "151.00"},
    "close_position": {"symbol": "AAPL", "order_type": "MKT"},
    "cancel_all_orders": {"symbol": "AAPL"},
    "wait_for_order": {"order_id": 1, "until": "filled", "timeout_seconds": 10},
    "get_option_chain": {"symbol": "AAPL", "strikes_around_spot": 5},
    "get_option_quotes": {
        "contracts": [{"symbol": "AAPL", "expiry": "20261218", "strike": "200", "right": "C"}]
    },
    "emergency_stop": {"reason": "Unexpected fills: stop everything while I look."},
    "approve_order": {"approval_id": "apr_0123abcd"},
    "deny_order": {"approval_id": "apr_0123abcd", "reason": "Not this size today."},
}
