"""The gate protocol and its verdict: every gate is a pure function of a ``GateContext``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from ibkr_mcp.safety.context import GateContext

Outcome = Literal["allow", "refuse", "dry_run", "skip", "hold"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """One gate's decision.

    Attributes:
        gate: The gate's name.
        outcome: ``allow``, ``refuse``, ``dry_run`` (nothing will be sent), ``skip``
            (the gate does not apply) or ``hold`` (queued for a human's approval, not sent).
        reason: Why, in words an agent cannot misread.
        remedy: What to do about a refusal (or dry run), else ``None``.
    """

    gate: str
    outcome: Outcome
    reason: str
    remedy: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The verdict as a JSON-safe dict."""
        return {
            "gate": self.gate,
            "outcome": self.outcome,
            "reason": self.reason,
            "remedy": self.remedy,
        }


class Gate(Protocol):
    """A safety gate: decides on a ``GateContext`` without any I/O of its own."""

    name: str
    description: str

    def check(self, ctx: GateContext) -> Verdict:
        """Decide on the order described by ``ctx``."""
        ...


def allow(gate: str, reason: str) -> Verdict:
    """An ``allow`` verdict."""
    return Verdict(gate, "allow", reason)


def refuse(gate: str, reason: str, remedy: str | None) -> Verdict:
    """A ``refuse`` verdict."""
    return Verdict(gate, "refuse", reason, remedy)


def skip(gate: str, reason: str) -> Verdict:
    """A ``skip`` verdict (the gate does not apply)."""
    return Verdict(gate, "skip", reason)


def hold(gate: str, reason: str, remedy: str | None) -> Verdict:
    """A ``hold`` verdict: the order waits for a human's approval (nothing is sent)."""
    return Verdict(gate, "hold", reason, remedy)
