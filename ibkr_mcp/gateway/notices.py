"""IB's session notices (connectivity, data farms, competing session) and what each one means."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from loguru import logger

#: The connection states health reports (``halted`` is set above the gateway, by the controls).
ConnectionState = Literal[
    "connected", "hung", "reconnecting", "upstream-lost", "farm-down", "halted"
]
CONNECTION_STATES: Final[tuple[str, ...]] = (
    "connected",
    "hung",
    "reconnecting",
    "upstream-lost",
    "farm-down",
    "halted",
)

#: The gateway lost its link to IB's servers (1100) or says it is broken and will recover (2110).
UPSTREAM_LOST: Final[frozenset[int]] = frozenset({1100, 2110})
#: The link is back: 1101 with market data subscriptions lost (re-request them), 1102 kept.
UPSTREAM_RESTORED: Final[frozenset[int]] = frozenset({1101, 1102})
#: Restored, but every market data subscription was dropped on IB's side.
SUBSCRIPTIONS_LOST: Final[frozenset[int]] = frozenset({1101})
#: Data farm broken → restored, by farm kind (market data, historical, security definitions).
FARM_BROKEN: Final[dict[int, str]] = {2103: "market-data", 2105: "historical", 2157: "sec-def"}
FARM_OK: Final[dict[int, str]] = {
    2104: "market-data",
    2106: "historical",
    2158: "sec-def",
    2107: "historical",  # "inactive but available on demand" is not broken
    2108: "market-data",
}
#: Codes kept as "the last IB notice" (session-level news an operator wants to see).
NOTICE_CODES: Final[frozenset[int]] = frozenset(
    {326, 1100, 1101, 1102, 2110, 10197, *FARM_BROKEN, *FARM_OK}
)

#: What an operator does about each notice (shown in health next to the notice).
NOTICE_REMEDIES: Final[dict[int, str]] = {
    326: "Another API client uses this client id: set IBKR_CLIENT_ID to an unused number "
    "(the CLI adds CLI_CLIENT_ID_OFFSET to it).",
    1100: "IB Gateway lost its link to IB's servers: wait (it reconnects by itself) and check "
    "its window and the network; orders are refused meanwhile.",
    1101: "Link restored, market data subscriptions were lost: they are re-requested "
    "automatically.",
    1102: "Link restored with data kept: nothing to do.",
    2110: "IB Gateway says its link to IB's servers is broken and will be restored "
    "automatically: wait.",
    2103: "A market data farm is down: quotes are flagged stale until IB restores it (2104).",
    2105: "The historical data farm is down: bars may fail until IB restores it (2106).",
    2157: "The security definition farm is down: contract lookups may fail until 2158.",
    10197: "Another session (TWS, Client Portal or mobile) holds the live market data: log out "
    "of it, or use delayed data (MARKET_DATA_TYPE=live_or_delayed / delayed).",
}


@dataclass(frozen=True)
class Notice:
    """One session-level message from IB, with the time it arrived."""

    code: int
    message: str
    at: datetime

    @property
    def remedy(self) -> str | None:
        """What to do about it, if anything."""
        return NOTICE_REMEDIES.get(self.code)


def farm_key(code: int, message: str) -> tuple[str, str] | None:
    """``(kind, farm name)`` for a farm notice (IB puts the name after the last colon)."""
    kind = FARM_BROKEN.get(code) or FARM_OK.get(code)
    if kind is None:
        return None
    name = message.rsplit(":", 1)[-1].strip() if ":" in message else ""
    return kind, name


@dataclass
class NoticeState:
    """What IB's notices say about the session: IB's servers and the data farms."""

    upstream_lost: bool = False
    farms_down: dict[tuple[str, str], str] = field(default_factory=dict)

    def clear(self) -> None:
        """A new session starts clean."""
        self.upstream_lost = False
        self.farms_down.clear()

    def apply(self, code: int, message: str) -> bool:
        """Update the state from one notice; ``True`` when subscriptions must be re-requested."""
        resubscribe = False
        if code in UPSTREAM_LOST:
            self.upstream_lost = True
            logger.warning("IB Gateway lost connectivity to IB ({}): {}", code, message)
        elif code in UPSTREAM_RESTORED:
            self.upstream_lost = False
            logger.info("IB connectivity restored ({}): {}", code, message)
            resubscribe = code in SUBSCRIPTIONS_LOST
        farm = farm_key(code, message)
        if farm is None:
            return resubscribe
        if code in FARM_BROKEN:
            self.farms_down[farm] = message
            logger.warning("IB data farm down ({}): {}", code, message)
            return resubscribe
        kind, name = farm
        for key in [k for k in self.farms_down if k[0] == kind and (not name or k[1] == name)]:
            del self.farms_down[key]
            logger.info("IB data farm restored ({}): {}", code, message)
        return resubscribe
