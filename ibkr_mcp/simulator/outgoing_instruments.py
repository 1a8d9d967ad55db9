"""Encoders for option-chain and option-computation messages (field lists, msg id first)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from ibkr_mcp.simulator.msgids import Msg
from ibkr_mcp.simulator.wire import Field

Fields = list[Field]


def _double(value: float) -> str:
    """A double as IB prints it, to ten significant digits (stable text for determinism)."""
    return f"{value:.10g}"


def tick_option_computation(req_id: int, tick_type: int, values: Sequence[float]) -> Fields:
    """TICK_OPTION_COMPUTATION (server >= 156: no version, tickAttrib after the tick type).

    ``values``: implied vol, delta, optPrice, pvDividend, gamma, vega, theta, undPrice.
    """
    return [Msg.TICK_OPTION_COMPUTATION, req_id, tick_type, 0, *(_double(v) for v in values)]


def sec_def_opt_params(
    req_id: int,
    exchange: str,
    under_con_id: int,
    trading_class: str,
    multiplier: str,
    expirations: Sequence[str],
    strikes: Sequence[Decimal],
) -> Fields:
    """SECURITY_DEFINITION_OPTION_PARAMETER: one exchange/trading class of a chain."""
    return [
        Msg.SECURITY_DEFINITION_OPTION_PARAMETER,
        req_id,
        exchange,
        under_con_id,
        trading_class,
        multiplier,
        len(expirations),
        *expirations,
        len(strikes),
        *strikes,
    ]


def sec_def_opt_params_end(req_id: int) -> Fields:
    """SECURITY_DEFINITION_OPTION_PARAMETER_END."""
    return [Msg.SECURITY_DEFINITION_OPTION_PARAMETER_END, req_id]
