"""The gateway's pulse: when it last spoke, a probe after silence, and the ``hung`` state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Final

from loguru import logger

from ibkr_mcp.config import Settings
from ibkr_mcp.errors import GatewayHungError

#: Probe again this often while hung (any answer ends the hang).
HUNG_REPROBE_SECONDS: Final = 1.0
#: A hang this many liveness periods long drops the socket and reconnects (a half-open TCP
#: connection after a network cut or a host reboot never recovers by itself).
HUNG_RECONNECT_PERIODS: Final = 6


class Liveness:
    """Tracks every byte from the gateway and probes it after silence.

    After ``IBKR_LIVENESS_SECONDS`` without a byte it asks for the server time; a probe
    unanswered within ``IBKR_LIVENESS_PROBE_TIMEOUT`` means hung. Any later byte ends the
    hang (self-detected recovery).

    Args:
        settings: Liveness settings.
        where: ``host:port`` for messages.
        on_change: Called with the new connection problem text (``None`` when it clears).
    """

    def __init__(
        self, settings: Settings, where: str, on_change: Callable[[str | None], None]
    ) -> None:
        self.settings = settings
        self.where = where
        self.hung = False
        self.hung_since: float | None = None
        self.last_rx = time.monotonic()
        self._on_change = on_change
        self._rx = asyncio.Event()
        #: Settled (``True``) when the gateway is declared hung; shared by every waiting call
        #: (one future per hang, not a task per call). Waiters only add and remove callbacks.
        self._hung_future: asyncio.Future[bool] | None = None

    def silence_seconds(self) -> float:
        """Seconds since the gateway last sent anything."""
        return time.monotonic() - self.last_rx

    def on_data(self, _data: bytes = b"") -> None:
        """ib_async's socket delivered bytes: the gateway is alive."""
        self.last_rx = time.monotonic()
        self._rx.set()
        if self.hung:
            self.set_hung(False)

    def reset(self) -> None:
        """A new session starts alive."""
        self.last_rx = time.monotonic()
        self.set_hung(False)

    def hung_future(self) -> asyncio.Future[bool]:
        """A future settled when the gateway is declared hung (already settled while hung).

        Shared: callers add and remove done callbacks but must never cancel it.
        """
        loop = asyncio.get_running_loop()
        future = self._hung_future
        if future is None or future.cancelled() or future.get_loop() is not loop:
            future = self._hung_future = loop.create_future()
            if self.hung:
                future.set_result(True)
        return future

    def set_hung(self, hung: bool) -> None:
        """Enter or leave the hung state (logged once each way)."""
        if hung == self.hung:
            return
        self.hung = hung
        if hung:
            self.hung_since = time.monotonic()
            if self._hung_future is not None and not self._hung_future.done():
                self._hung_future.set_result(True)
            problem = (
                f"IB Gateway at {self.where} stopped answering (liveness probe unanswered "
                f"after {self.settings.IBKR_LIVENESS_PROBE_TIMEOUT:g} s)"
            )
            logger.error("{}; calls fail fast with GATEWAY_HUNG until it answers", problem)
            self._on_change(problem)
            return
        since, self.hung_since = self.hung_since, None
        self._hung_future = None  # the next waiter gets a fresh, unsettled one
        if since is not None:
            logger.warning("IB Gateway answers again after {:.1f} s hung", time.monotonic() - since)
            self._on_change(None)

    def error(self, what: str | None = None) -> GatewayHungError:
        """The fail-fast error while the gateway does not answer its liveness probe."""
        since = self.hung_since
        seconds = round(time.monotonic() - since, 1) if since is not None else 0.0
        prefix = f"{what}: " if what else ""
        return GatewayHungError(
            f"{prefix}IB Gateway at {self.where} is not answering (no reply to a liveness "
            f"probe; silent for {self.silence_seconds():.0f} s).",
            remedy="Check that IB Gateway / TWS is responsive (frozen window, dialog waiting, "
            "machine asleep, network cut) and restart it if needed; the server notices "
            "recovery by itself and reconnects if the socket was lost.",
            details={"where": self.where, "state": "hung", "hung_seconds": seconds},
        )

    async def probe(self, client: Any) -> bool:
        """Ask for the server time; ``True`` if anything arrives within the probe deadline."""
        self._rx.clear()
        try:
            client.reqCurrentTime()
        except (OSError, ConnectionError):
            return False
        try:
            await asyncio.wait_for(self._rx.wait(), self.settings.IBKR_LIVENESS_PROBE_TIMEOUT)
        except TimeoutError:
            return False
        return True

    async def watch(
        self,
        ib: Any,
        up: asyncio.Event,
        closed: Callable[[], bool],
    ) -> None:
        """The watch loop: wait for a session, probe after silence, flag and re-probe a hang."""
        period = self.settings.IBKR_LIVENESS_SECONDS
        while not closed():
            if not ib.isConnected():
                up.clear()
                await up.wait()
                continue
            silent = self.silence_seconds()
            if not self.hung and silent < period:
                await asyncio.sleep(period - silent)
                continue
            if await self.probe(ib.client) or not ib.isConnected():
                continue
            self.set_hung(True)
            since = self.hung_since or time.monotonic()
            if time.monotonic() - since >= HUNG_RECONNECT_PERIODS * period:
                logger.error(
                    "IB Gateway hung for {:.0f} s: dropping the socket to reconnect",
                    time.monotonic() - since,
                )
                ib.disconnect()
                continue
            await asyncio.sleep(HUNG_REPROBE_SECONDS)
