"""Error hierarchy with stable codes, each mapped once per surface.

::

    IbkrMcpError (INTERNAL_ERROR)
    ├── InvalidInputError (INVALID_INPUT)
    ├── NotFoundError (NOT_FOUND)
    │   ├── ContractNotFoundError (CONTRACT_NOT_FOUND)
    │   └── OrderNotFoundError (ORDER_NOT_FOUND)
    ├── AmbiguousContractError (AMBIGUOUS_CONTRACT)
    ├── GatewayError (GATEWAY_ERROR)
    │   ├── GatewayUnavailableError (GATEWAY_UNAVAILABLE)
    │   ├── GatewayTimeoutError (GATEWAY_TIMEOUT)
    │   ├── MarketDataError (MARKET_DATA_UNAVAILABLE)
    │   ├── PacingViolationError (PACING_VIOLATION)
    │   ├── OrderRejectedError (ORDER_REJECTED)
    │   ├── GatewayHungError (GATEWAY_HUNG)
    │   ├── PacingLimitError (PACING_LIMIT)
    │   └── OverloadedError (OVERLOADED)
    ├── SafetyError (SAFETY_ERROR)
    │   ├── GateRefusedError (GATE_REFUSED)
    │   ├── ConfirmationError (CONFIRMATION_REQUIRED)
    │   └── IdempotencyConflictError (IDEMPOTENCY_CONFLICT)
    ├── AuditUnavailableError (AUDIT_UNAVAILABLE)
    ├── AccountNotManagedError (ACCOUNT_NOT_MANAGED)
    └── AuthError (UNAUTHORIZED)

Every error carries a ``code`` (stable string), a ``message`` for humans and agents, a ``remedy``
(what to do next) and ``details`` (structured, JSON-safe). Surfaces map codes, never classes:
``HTTP_STATUS``, ``CLI_EXIT_CODE`` below, and the MCP adapter turns any error into a tool error
whose text starts with the code.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar, Final

from ibkr_mcp.models import json_number


class IbkrMcpError(Exception):
    """Base of every error this project raises on purpose."""

    code: ClassVar[str] = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str,
        *,
        remedy: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Create the error.

        Args:
            message: What went wrong, in words an agent cannot misread.
            remedy: What the caller can do about it.
            details: Structured, JSON-safe context (field names, gate names, IB codes, ...).
        """
        super().__init__(message)
        self.message = message
        self.remedy = remedy
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        """The error as a JSON-safe dict (the body every surface returns)."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.remedy:
            out["remedy"] = self.remedy
        if self.details:
            out["details"] = json_safe(self.details)
        return out

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        if self.remedy:
            text += f" Remedy: {self.remedy}"
        return text


#: Integers every JSON encoder here (orjson) can write; others are written as text.
_JSON_INT_RANGE: Final = range(-(2**63), 2**64)


def json_safe(value: Any) -> Any:
    """``value`` with anything a JSON encoder could choke on turned into text.

    Details can carry caller input (an order id of 2**64, a non-str key, an object): the error
    must still serialise on every surface, so whatever is not plain JSON becomes its ``str``.
    A ``Decimal`` is a JSON number like in every output (``models.json_number``), not text.
    """
    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, Decimal):
        return json_safe(json_number(value))  # an integral value beyond 64 bits is still text
    if isinstance(value, int):
        return value if value in _JSON_INT_RANGE else str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return str(value)


class InvalidInputError(IbkrMcpError):
    """The caller's input failed validation; ``details['errors']`` names each field."""

    code = "INVALID_INPUT"


class NotFoundError(IbkrMcpError):
    """Something the caller named does not exist."""

    code = "NOT_FOUND"


class ContractNotFoundError(NotFoundError):
    """No contract matches the given symbol / parameters (IB error 200)."""

    code = "CONTRACT_NOT_FOUND"


class OrderNotFoundError(NotFoundError):
    """No order with that id is known to this client."""

    code = "ORDER_NOT_FOUND"


class AmbiguousContractError(IbkrMcpError):
    """Several contracts match; ``details['candidates']`` lists them."""

    code = "AMBIGUOUS_CONTRACT"


class GatewayError(IbkrMcpError):
    """The broker answered with an error that has no more specific class."""

    code = "GATEWAY_ERROR"


class GatewayUnavailableError(GatewayError):
    """No connection to IB Gateway / TWS (or it was lost)."""

    code = "GATEWAY_UNAVAILABLE"


class GatewayTimeoutError(GatewayError):
    """The broker did not answer in time."""

    code = "GATEWAY_TIMEOUT"


class MarketDataError(GatewayError):
    """Market data is not available (no subscription, no permissions)."""

    code = "MARKET_DATA_UNAVAILABLE"


class PacingViolationError(GatewayError):
    """IB's request pacing rules were violated."""

    code = "PACING_VIOLATION"


class OrderRejectedError(GatewayError):
    """The broker rejected an order (e.g. 201 insufficient buying power, 110 price)."""

    code = "ORDER_REJECTED"


class GatewayHungError(GatewayUnavailableError):
    """The gateway's socket is open but it stopped answering (liveness probe unanswered)."""

    code = "GATEWAY_HUNG"


class PacingLimitError(GatewayError):
    """Our own pacing of IB's limits would make the caller wait longer than the timeout.

    ``details['retry_after_seconds']`` says when the request would be accepted.
    """

    code = "PACING_LIMIT"


class OverloadedError(GatewayError):
    """The market-data queue cannot serve the request in time; refused at once.

    ``details['retry_after_seconds']`` says when to retry.
    """

    code = "OVERLOADED"


class SafetyError(IbkrMcpError):
    """A safety rule stopped the call."""

    code = "SAFETY_ERROR"


class GateRefusedError(SafetyError):
    """A gate in the safety chain refused; ``details`` names the gate and the reason."""

    code = "GATE_REFUSED"


class ConfirmationError(SafetyError):
    """The confirmation token is missing, expired, used, or does not match the order."""

    code = "CONFIRMATION_REQUIRED"


class IdempotencyConflictError(SafetyError):
    """The idempotency key was already used for a different order."""

    code = "IDEMPOTENCY_CONFLICT"


class AuditUnavailableError(IbkrMcpError):
    """The audit trail cannot be written, so nothing order-changing is done."""

    code = "AUDIT_UNAVAILABLE"


class AccountNotManagedError(IbkrMcpError):
    """The account named is not managed by the connected gateway."""

    code = "ACCOUNT_NOT_MANAGED"


class AuthError(IbkrMcpError):
    """Missing or wrong API token."""

    code = "UNAUTHORIZED"


#: Every code, for documentation and tests.
ALL_ERRORS: Final[tuple[type[IbkrMcpError], ...]] = (
    IbkrMcpError,
    InvalidInputError,
    NotFoundError,
    ContractNotFoundError,
    OrderNotFoundError,
    AmbiguousContractError,
    GatewayError,
    GatewayUnavailableError,
    GatewayTimeoutError,
    MarketDataError,
    PacingViolationError,
    OrderRejectedError,
    SafetyError,
    GateRefusedError,
    ConfirmationError,
    IdempotencyConflictError,
    AuditUnavailableError,
    AccountNotManagedError,
    AuthError,
    GatewayHungError,
    PacingLimitError,
    OverloadedError,
)

#: The one mapping from code to HTTP status.
HTTP_STATUS: Final[dict[str, int]] = {
    "INTERNAL_ERROR": 500,
    "INVALID_INPUT": 422,
    "NOT_FOUND": 404,
    "CONTRACT_NOT_FOUND": 404,
    "ORDER_NOT_FOUND": 404,
    "AMBIGUOUS_CONTRACT": 409,
    "GATEWAY_ERROR": 502,
    "GATEWAY_UNAVAILABLE": 503,
    "GATEWAY_TIMEOUT": 504,
    "MARKET_DATA_UNAVAILABLE": 502,
    "PACING_VIOLATION": 429,
    "ORDER_REJECTED": 422,
    "SAFETY_ERROR": 403,
    "GATE_REFUSED": 403,
    "CONFIRMATION_REQUIRED": 403,
    "IDEMPOTENCY_CONFLICT": 409,
    "AUDIT_UNAVAILABLE": 503,
    "ACCOUNT_NOT_MANAGED": 403,
    "UNAUTHORIZED": 401,
    "GATEWAY_HUNG": 503,
    "PACING_LIMIT": 429,
    "OVERLOADED": 503,
}

#: The one mapping from code to CLI exit code (0 is success, 2 is Typer's usage error).
CLI_EXIT_CODE: Final[dict[str, int]] = {
    "INTERNAL_ERROR": 1,
    "INVALID_INPUT": 2,
    "NOT_FOUND": 4,
    "CONTRACT_NOT_FOUND": 4,
    "ORDER_NOT_FOUND": 4,
    "AMBIGUOUS_CONTRACT": 5,
    "GATEWAY_ERROR": 6,
    "GATEWAY_UNAVAILABLE": 7,
    "GATEWAY_TIMEOUT": 7,
    "MARKET_DATA_UNAVAILABLE": 6,
    "PACING_VIOLATION": 6,
    "ORDER_REJECTED": 8,
    "SAFETY_ERROR": 3,
    "GATE_REFUSED": 3,
    "CONFIRMATION_REQUIRED": 3,
    "IDEMPOTENCY_CONFLICT": 3,
    "AUDIT_UNAVAILABLE": 9,
    "ACCOUNT_NOT_MANAGED": 3,
    "UNAUTHORIZED": 10,
    "GATEWAY_HUNG": 7,
    "PACING_LIMIT": 6,
    "OVERLOADED": 6,
}


def http_status(error: IbkrMcpError) -> int:
    """The HTTP status for ``error``."""
    return HTTP_STATUS.get(error.code, 500)


def cli_exit_code(error: IbkrMcpError) -> int:
    """The CLI exit code for ``error``."""
    return CLI_EXIT_CODE.get(error.code, 1)


#: Codes only the HTTP transport produces, before any tool runs (body limit, Host check, routing).
HTTP_TRANSPORT_STATUS: Final[dict[str, int]] = {
    "PAYLOAD_TOO_LARGE": 413,
    "FORBIDDEN_HOST": 403,
    "FORBIDDEN_ORIGIN": 403,
    "METHOD_NOT_ALLOWED": 405,
    "HTTP_ERROR": 400,
}
