"""The kill function: cancel every open order at the broker, then persist a halt (RTS 6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loguru import logger

from ibkr_mcp.errors import IbkrMcpError
from ibkr_mcp.safety.facts import kill_switch_active
from ibkr_mcp.safety.halt import HaltState, clear_halt, engage_halt, read_halt

if TYPE_CHECKING:
    from datetime import datetime

    from ibkr_mcp.audit import AuditLog
    from ibkr_mcp.config import Settings
    from ibkr_mcp.services import Services


@dataclass(frozen=True, slots=True)
class StopResult:
    """What an emergency stop did."""

    halt: HaltState
    cancelled: int
    still_open: int
    cancel_error: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "halted": self.halt.halted,
            "halt": self.halt.to_dict(),
            "orders_working_before": self.cancelled,
            "orders_still_open": self.still_open,
            "cancel_error": self.cancel_error,
        }


def current_halt(settings: Settings) -> HaltState:
    """The halt in force: the halt file, else the kill-switch file (which halts the same way)."""
    halt = read_halt(settings.halt_state_path)
    if halt.halted:
        return halt
    path = settings.kill_switch_path
    if kill_switch_active(path):
        return HaltState(
            halted=True,
            source="kill_switch",
            reason=f"kill switch file {path} exists",
            by="file",
            cleared_at=halt.cleared_at,
            cleared_by=halt.cleared_by,
        )
    return halt


async def emergency_stop(services: Services, *, reason: str, by: str) -> StopResult:
    """Halt first (so no new order slips in), then IB's global cancel, then audit.

    The halt is persisted even when the broker cannot be reached: new orders stop at once, and
    the result says the cancel failed so a human cancels at the broker.
    """
    settings, now = services.settings, services.now()
    halt = engage_halt(
        settings.halt_state_path, source="emergency_stop", reason=reason, by=by, now=now
    )
    logger.critical("EMERGENCY STOP by {}: {}", by, reason)
    before: list[Any] = []
    after: list[Any] = []
    error: str | None = None
    try:
        before, after = await services.gateway.global_cancel()
    except IbkrMcpError as exc:
        error = f"{exc.code}: {exc.message}"
        logger.critical("emergency stop: global cancel failed: {}", error)
    result = StopResult(halt, len(before), len(after), error)
    try:
        await services.audit.record_event(
            correlation_id="emergency-stop",
            kind="system",
            tool="emergency_stop",
            surface="internal",
            arguments={"reason": reason, "by": by},
            outcome="halted",
            detail=result.to_dict(),
        )
    except IbkrMcpError as exc:
        # The halt is in force whatever the audit says; never undo it for a logging failure.
        logger.critical("emergency stop could not be audited: {}", exc)
    return result


async def clear_emergency_stop(
    audit: AuditLog, settings: Settings, *, by: str, now: datetime
) -> HaltState:
    """Clear a halt (humans only: CLI ``--clear`` and the token-protected DELETE route).

    The kill-switch file is not touched: whoever created it removes it.

    Returns:
        The halt that was in force.
    """
    before = clear_halt(settings.halt_state_path, by=by, now=now)
    logger.warning("halt cleared by {} (was: {})", by, before.reason)
    try:
        await audit.record_event(
            correlation_id="emergency-stop",
            kind="system",
            tool="emergency_stop_clear",
            surface="internal",
            arguments={"by": by},
            outcome="cleared",
            detail=before.to_dict(),
        )
    except IbkrMcpError as exc:
        logger.error("halt clear could not be audited: {}", exc)
    return before
