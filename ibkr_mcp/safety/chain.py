"""The one ordered safety chain every order-changing call passes before reaching the broker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loguru import logger

from ibkr_mcp.errors import GateRefusedError
from ibkr_mcp.safety.context import GateContext
from ibkr_mcp.safety.gates import (
    AllowlistGate,
    ApprovalGate,
    ConcentrationGate,
    ConfirmationGate,
    DailyLossGate,
    DailyNotionalGate,
    DuplicateOrderGate,
    EmergencyStopGate,
    Gate,
    KillSwitchGate,
    LiveOverrideGate,
    NotionalGate,
    OrderRateGate,
    OrdersEnabledGate,
    PriceBandGate,
    QuantityGate,
    RejectionBreakerGate,
    ShortSaleGate,
    TradingHoursGate,
    TradingModeGate,
    Verdict,
)

#: The gates, in the order they run. Halts first (kill switch, emergency stop, rejection
#: breaker), then what the order is (allowlists, session, size, value, price), what it does to
#: the account (short sale, concentration, daily loss), the flow (duplicates, rate, daily
#: value), the agent's confirmation token (so a refusal names the limit, not the missing token
#: of a refused preview), and last the human approval (which holds, never refuses).
GATES: tuple[Gate, ...] = (
    TradingModeGate(),
    OrdersEnabledGate(),
    LiveOverrideGate(),
    KillSwitchGate(),
    EmergencyStopGate(),
    RejectionBreakerGate(),
    AllowlistGate(),
    TradingHoursGate(),
    QuantityGate(),
    NotionalGate(),
    PriceBandGate(),
    ShortSaleGate(),
    ConcentrationGate(),
    DailyLossGate(),
    DuplicateOrderGate(),
    OrderRateGate(),
    DailyNotionalGate(),
    ConfirmationGate(),
    ApprovalGate(),
)


@dataclass(frozen=True, slots=True)
class ChainResult:
    """The outcome of the chain.

    Attributes:
        verdicts: Every verdict reported, in gate order (place mode stops at the first refusal).
        refused: The first refusal, else ``None``.
        dry_run: Whether ORDERS_ENABLED=false made this a dry run (nothing may be sent).
        allowed: Whether the order may be sent: no refusal, not a dry run, not held.
        held: The ``hold`` verdict of a gate that queues the order for a human, else ``None``.
        counted_through: The newest audit row the flow counters were read through (see
            ``FlowFacts.counted_through``), else ``None``.
    """

    verdicts: tuple[Verdict, ...]
    refused: Verdict | None
    dry_run: bool
    allowed: bool
    held: Verdict | None = None
    counted_through: int | None = None

    @property
    def passed(self) -> bool:
        """No gate refused (a dry run passes; in preview mode: a token may be issued)."""
        return self.refused is None

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-safe dict (for tool output and the audit trail)."""
        return {
            "allowed": self.allowed,
            "dry_run": self.dry_run,
            "refused": None if self.refused is None else self.refused.to_dict(),
            "held": None if self.held is None else self.held.to_dict(),
            "verdicts": [v.to_dict() for v in self.verdicts],
        }


def _check(gate: Gate, ctx: GateContext) -> Verdict:
    try:
        return gate.check(ctx)
    except Exception:  # noqa: BLE001 - a broken gate must fail closed, never let an order through
        logger.exception("safety gate {} raised; refusing the order", gate.name)
        return Verdict(
            gate.name,
            "refuse",
            f"internal error in safety gate {gate.name}; refusing the order (fail closed)",
            "This is a bug: report it with the server log.",
        )


def evaluate(ctx: GateContext, gates: tuple[Gate, ...] = GATES) -> ChainResult:
    """Run the gates on ``ctx``; never raises.

    In ``place`` mode the first refusal stops the chain; an ``orders_enabled`` dry run does not
    (the remaining gates still report). In ``preview`` mode every gate runs and reports, and the
    confirmation gate skips (the preview issues the token).

    Args:
        ctx: The facts, from ``facts.collect_facts``.
        gates: The gates to run (tests only; production uses ``GATES``).

    Returns:
        The verdicts and the overall decision.
    """
    verdicts: list[Verdict] = []
    refused: Verdict | None = None
    for gate in gates:
        verdict = _check(gate, ctx)
        verdicts.append(verdict)
        if verdict.outcome == "refuse" and refused is None:
            refused = verdict
            if ctx.mode == "place":
                break
    dry_run = any(v.outcome == "dry_run" for v in verdicts)
    held = next((v for v in verdicts if v.outcome == "hold"), None)
    return ChainResult(
        verdicts=tuple(verdicts),
        refused=refused,
        dry_run=dry_run,
        allowed=refused is None and not dry_run and held is None,
        held=None if refused is not None or dry_run else held,
        counted_through=ctx.flow.counted_through,
    )


def refusal_error(result: ChainResult) -> GateRefusedError:
    """The ``GateRefusedError`` describing ``result``'s refusal (raise it).

    Raises:
        ValueError: If nothing refused (a caller bug).
    """
    refused = result.refused
    if refused is None:
        raise ValueError("refusal_error() called on a chain result without a refusal")
    others = [v.gate for v in result.verdicts if v.outcome == "refuse" and v is not refused]
    message = f"Order refused by safety gate '{refused.gate}': {refused.reason}."
    if others:
        message += f" Also refused by: {', '.join(others)}."
    if result.dry_run:
        message += " (ORDERS_ENABLED=false: nothing would have been sent anyway.)"
    return GateRefusedError(
        message,
        remedy=refused.remedy,
        details={
            "gate": refused.gate,
            "reason": refused.reason,
            "verdicts": [v.to_dict() for v in result.verdicts],
        },
    )
