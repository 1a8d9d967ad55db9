"""Clocks for the simulator: system time, a fixed instant, or a manually advanced one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FixedClock", "ManualClock", "SystemClock"]


def _aware_utc(at: datetime, what: str) -> datetime:
    """Return ``at`` in UTC, refusing naive datetimes (their zone would be a guess)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {at.isoformat()}")
    return at.astimezone(UTC)


@runtime_checkable
class Clock(Protocol):
    """Anything that tells the simulator what time it is."""

    def now(self) -> datetime:
        """Return the current instant as a timezone-aware UTC datetime."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """Return the current wall-clock time in UTC."""
        return datetime.now(UTC)


class FixedClock:
    """A clock frozen at one instant (handy for deterministic tests).

    Args:
        at: The instant to report; must be timezone-aware.
    """

    __slots__ = ("_at",)

    def __init__(self, at: datetime) -> None:
        self._at = _aware_utc(at, "FixedClock time")

    def now(self) -> datetime:
        """Return the fixed instant."""
        return self._at


class ManualClock:
    """A clock that only moves when told to.

    Args:
        start: The initial instant; must be timezone-aware.
    """

    __slots__ = ("_at",)

    def __init__(self, start: datetime) -> None:
        self._at = _aware_utc(start, "ManualClock start")

    def now(self) -> datetime:
        """Return the current manual instant."""
        return self._at

    def advance(self, seconds: float) -> None:
        """Move the clock forward.

        Args:
            seconds: How far to move; must not be negative (time does not run backwards).
        """
        if seconds < 0:
            raise ValueError(f"cannot advance a clock by a negative amount ({seconds} s)")
        self._at = self._at + timedelta(seconds=seconds)

    def set(self, at: datetime) -> None:
        """Jump to an instant (forwards or backwards).

        Args:
            at: The new instant; must be timezone-aware.
        """
        self._at = _aware_utc(at, "ManualClock time")
