"""The persisted halt state (emergency stop, rejection breaker): a file every order re-reads."""

from __future__ import annotations

import getpass
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson

HaltSource = Literal["emergency_stop", "rejection_breaker", "kill_switch"]


@dataclass(frozen=True, slots=True)
class HaltState:
    """What the halt file says.

    Attributes:
        halted: Whether trading is halted.
        source: What engaged it: ``emergency_stop``, ``rejection_breaker`` or ``kill_switch``.
        reason: Why, in the words of whoever engaged it.
        since: When it was engaged (timezone-aware), if halted.
        by: Who engaged it (surface and user or token id).
        cleared_at: When a human last cleared a halt (the breaker counts rejections after it).
        cleared_by: Who cleared it.
        error: Why the file could not be read (a halt then counts as engaged: fail closed).
    """

    halted: bool
    source: HaltSource | None = None
    reason: str | None = None
    since: datetime | None = None
    by: str | None = None
    cleared_at: datetime | None = None
    cleared_by: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (health, policy resource, audit rows)."""
        return {
            "halted": self.halted,
            "source": self.source,
            "reason": self.reason,
            "since": None if self.since is None else self.since.isoformat(),
            "by": self.by,
            "cleared_at": None if self.cleared_at is None else self.cleared_at.isoformat(),
            "cleared_by": self.cleared_by,
            "error": self.error,
        }


NOT_HALTED = HaltState(halted=False)


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"time {value!r} has no UTC offset")
    return moment


def read_halt(path: Path) -> HaltState:
    """Read the halt file fresh (no caching: another process may have engaged it).

    A missing file means "not halted"; an unreadable or malformed one means halted (fail closed).
    """
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return NOT_HALTED
    except OSError as exc:
        return HaltState(True, "emergency_stop", f"halt file unreadable: {exc}", error=str(exc))
    try:
        raw = orjson.loads(data)
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        source = raw.get("source")
        if source not in (None, "emergency_stop", "rejection_breaker", "kill_switch"):
            raise ValueError(f"unknown source {source!r}")
        return HaltState(
            halted=bool(raw.get("halted", False)),
            source=source,
            reason=raw.get("reason"),
            since=_time(raw.get("since")),
            by=raw.get("by"),
            cleared_at=_time(raw.get("cleared_at")),
            cleared_by=raw.get("cleared_by"),
        )
    except (ValueError, TypeError) as exc:
        return HaltState(
            True, "emergency_stop", f"halt file {path} is malformed: {exc}", error=str(exc)
        )


def _write(path: Path, state: HaltState) -> None:
    """Write atomically (temp file + rename): a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = orjson.dumps(state.to_dict(), option=orjson.OPT_INDENT_2)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".halt-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def engage_halt(
    path: Path, *, source: HaltSource, reason: str, by: str, now: datetime
) -> HaltState:
    """Persist a halt (keeps the first engagement's time if already halted).

    Returns:
        The state now in force.
    """
    current = read_halt(path)
    if current.halted and current.error is None:
        return current
    state = HaltState(
        halted=True,
        source=source,
        reason=reason,
        since=now,
        by=by,
        cleared_at=current.cleared_at,
        cleared_by=current.cleared_by,
    )
    _write(path, state)
    return state


def clear_halt(path: Path, *, by: str, now: datetime) -> HaltState:
    """Clear the halt (humans only: the CLI and the token-protected HTTP route call this).

    Returns:
        The state before clearing.
    """
    before = read_halt(path)
    _write(path, HaltState(halted=False, cleared_at=now, cleared_by=by))
    return before


def os_user() -> str:
    """The operating-system user running this process (for "who" in halts and approvals)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


#: How the rejection breaker is reset (its gate's remedy).
BREAKER_REMEDY = (
    "Find out why the broker rejected the orders (`ibkr-mcp audit tail`), then a human resets "
    "the breaker: `ibkr-mcp emergency-stop --clear` or DELETE /api/emergency-stop."
)


def kill_switch_refusal(path: Path) -> tuple[str, str]:
    """(reason, remedy) of an order refused while the kill switch file at ``path`` exists."""
    return (
        f"the kill switch is ACTIVE (file {path} exists): every new order is refused",
        f"A human engaged the kill switch on purpose; only a human should remove {path} "
        "once it is safe to trade again.",
    )


def halt_refusal(halt: HaltState) -> tuple[str, str, str] | None:
    """(gate, reason, remedy) of an order refused by ``halt``, or ``None`` if not halted."""
    if not halt.halted:
        return None
    if halt.source == "rejection_breaker":
        reason = f"the rejection breaker has TRIPPED ({halt.reason}); trading is halted"
        return "rejection_breaker", reason, BREAKER_REMEDY
    since = "" if halt.since is None else f" since {halt.since.isoformat()}"
    return (
        "emergency_stop",
        f"trading is HALTED by an emergency stop{since} (by {halt.by or 'unknown'}: "
        f"{halt.reason or 'no reason given'}): every new order is refused",
        "Only a human can clear it: `ibkr-mcp emergency-stop --clear` or "
        "DELETE /api/emergency-stop with the API token, once it is safe to trade.",
    )


def stopped_since_gates(halt_path: Path, kill_switch_path: Path) -> tuple[str, str, str] | None:
    """(gate, reason, remedy) if trading is halted right now, else ``None``.

    Read again just before an order that passed its gates is sent: an emergency stop, a
    tripped breaker or the kill switch engaged while the order was judged and recorded stops
    it there (the gates read the same files at the start of the call, and say the same).
    """
    if kill_switch_path.exists():
        return ("kill_switch", *kill_switch_refusal(kill_switch_path))
    return halt_refusal(read_halt(halt_path))
