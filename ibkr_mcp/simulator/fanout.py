"""Position and portfolio rows of changed holdings, fanned out once per event-loop turn."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ibkr_mcp.simulator.handlers.accounts import account_change

if TYPE_CHECKING:
    from ibkr_mcp.simulator.host import SimHost
    from ibkr_mcp.simulator.session import Session


class AccountFanOut:
    """Sends each changed (account, conId) to its subscribers at the end of the loop turn.

    IB's position and portfolio messages carry the whole holding (quantity, average cost,
    value), not the fill, so the last row of a holding supersedes the ones before it. Fills
    that land in the same event-loop turn (many clients trading the same symbol at once) are
    therefore sent as one row per holding and subscriber, encoded once; one fill at a time
    (a single client) still gets its row right after its execution messages.
    """

    def __init__(
        self,
        host: SimHost,
        sessions: Callable[[], Iterable[Session]],
        flush: Callable[[], None],
    ) -> None:
        self._host = host
        self._sessions = sessions
        self._flush = flush
        #: Changed holdings in the order they changed (a dict keeps insertion order).
        self._pending: dict[tuple[str, int], None] = {}
        self._scheduled = False

    def changed(self, account: str, con_id: int) -> None:
        """Note a changed holding; its rows go out when the current loop turn ends."""
        self._pending[(account, con_id)] = None
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # driven synchronously (no server running): send at once
            self.send_pending()
            return
        self._scheduled = True
        loop.call_soon(self._send_and_flush)

    def send_pending(self) -> None:
        """Queue every pending holding's rows on its subscribers' outboxes now."""
        self._scheduled = False
        pending, self._pending = self._pending, {}
        for account, con_id in pending:
            change = account_change(self._host, account, con_id)
            for session in self._sessions():
                session.on_account_changed(account, con_id, change)

    def _send_and_flush(self) -> None:
        if self._scheduled:
            self.send_pending()
            self._flush()
