"""The ib_async connection and its supervisor: reconnect, liveness, IB's notices, timeouts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from ib_async.wrapper import RequestError
from loguru import logger

from ibkr_mcp.config import Settings
from ibkr_mcp.errors import (
    GatewayHungError,
    GatewayTimeoutError,
    GatewayUnavailableError,
    IbkrMcpError,
)
from ibkr_mcp.gateway import ib_errors, notices
from ibkr_mcp.gateway.echo import BrokerIB
from ibkr_mcp.gateway.handshake import handshake
from ibkr_mcp.gateway.ib_logging import configure_ib_logging
from ibkr_mcp.gateway.liveness import Liveness
from ibkr_mcp.gateway.notices import ConnectionState, Notice
from ibkr_mcp.models import BrokerKind

T = TypeVar("T")

#: Start of the text of the simulator's start-up notice (error code 2199, reqId -1).
SIMULATOR_NOTICE_PREFIX: Final = "IBKR-MCP SIMULATOR:"
SIMULATOR_NOTICE_CODE: Final = 2199

#: Backoff between background connection attempts: 0.1 s doubling to a low cap while the
#: gateway is probably restarting (``IBKR_RECONNECT_FAST_WINDOW_SECONDS`` after a loss, so it is
#: ready within ~0.5 s of accepting connections), then to ``BACKOFF_SLOW``.
BACKOFF_MIN: Final = 0.1
BACKOFF_FAST: Final = 0.5
BACKOFF_SLOW: Final = 5.0

ErrorWatcher = Callable[[int, str], None]


class IbConnection:
    """One ib_async ``IB`` plus its supervisor (reconnects, liveness, notices, timeouts).

    The supervisor runs two background tasks: one keeps (re)connecting, one watches for
    silence and probes the gateway. ``state`` is what health reports.

    Args:
        settings: Connection settings (timeouts, client id, liveness).
        host: Overrides ``settings.IBKR_HOST``.
        port: Overrides ``settings.IBKR_PORT``.
        client_id: Overrides ``settings.IBKR_CLIENT_ID``.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        host: str | None = None,
        port: int | None = None,
        client_id: int | None = None,
    ) -> None:
        self.settings = settings
        self.host = host or settings.IBKR_HOST
        self.port = port if port is not None else settings.IBKR_PORT
        self.client_id = client_id if client_id is not None else settings.IBKR_CLIENT_ID
        # Known orders keep IB's whole openOrder echo (ib_async's own wrapper drops most of it).
        self.ib = BrokerIB()
        # Request errors must fail the request's future (with the code), not end it empty.
        self.ib.RaiseRequestErrors = True
        self.broker: BrokerKind | None = None
        #: The last *connection* problem (never one request's error, such as a bad symbol).
        self.last_error: str | None = None
        self.last_notice: Notice | None = None
        self.notices = notices.NoticeState()
        self.liveness = Liveness(settings, f"{self.host}:{self.port}", self._set_problem)
        self.reconnects = 0
        self._notice_seen = False
        self._client_id_rejected = False
        self._closed = False
        self._was_up = False
        self._ever_up = False
        self._task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._up = asyncio.Event()
        self._down_since = time.monotonic()
        self._connect_lock = asyncio.Lock()
        self._request_locks: dict[str, asyncio.Lock] = {}
        self._watchers: dict[int, ErrorWatcher] = {}
        self._on_reset: list[Callable[[], None]] = []
        self._on_resubscribe: list[Callable[[], None]] = []
        self._on_connected: list[Callable[[], Awaitable[None]]] = []
        self._callbacks: set[asyncio.Task[None]] = set()
        self.ib.errorEvent += self._on_error
        self.ib.disconnectedEvent += self._on_disconnected
        client: Any = self.ib.client
        client.conn.hasData += self.liveness.on_data  # every byte from the gateway: alive
        configure_ib_logging(settings.LOG_LEVEL)

    # --- state ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether requests can be served: socket up, gateway answering, IB reachable."""
        return self.session_up and not self.upstream_lost and not self.hung

    @property
    def session_up(self) -> bool:
        """Whether a connect (handshake and start-up fetch) completed and the socket is up."""
        return self._was_up and self.ib.isConnected()

    @property
    def upstream_lost(self) -> bool:
        """IB Gateway reported that its link to IB's servers is down (1100 / 2110)."""
        return self.notices.upstream_lost

    @property
    def farms_down(self) -> dict[tuple[str, str], str]:
        """Data farms IB reported broken, ``(kind, name)`` → IB's message."""
        return self.notices.farms_down

    @property
    def state(self) -> ConnectionState:
        """``connected``, ``hung``, ``reconnecting``, ``upstream-lost`` or ``farm-down``."""
        if not self.session_up:
            return "reconnecting"
        if self.hung:
            return "hung"
        if self.upstream_lost:
            return "upstream-lost"
        if self.farms_down:
            return "farm-down"
        return "connected"

    @property
    def data_stale(self) -> bool:
        """Whether quotes may be stale now (a data farm or IB's servers unreachable)."""
        return self.upstream_lost or any(k == "market-data" for k, _ in self.farms_down)

    @property
    def hung(self) -> bool:
        """The gateway's socket is open but it did not answer a liveness probe."""
        return self.liveness.hung

    @property
    def hung_since(self) -> float | None:
        """Monotonic time the hang was detected."""
        return self.liveness.hung_since

    def silence_seconds(self) -> float:
        """Seconds since the gateway last sent anything."""
        return self.liveness.silence_seconds()

    def _set_problem(self, problem: str | None) -> None:
        self.last_error = problem

    def on_reset(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever session state is lost (disconnect, 1101): drop caches."""
        self._on_reset.append(callback)

    def on_resubscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after 1101 (subscriptions lost, session kept): re-request them.

        Cached market data is dropped here too (``on_reset`` is for a lost session).
        """
        self._on_resubscribe.append(callback)

    def on_connected(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` (in the background) after every successful (re)connect."""
        self._on_connected.append(callback)

    def watch(self, req_id: int, watcher: ErrorWatcher) -> None:
        """Route IB errors for ``req_id`` to ``watcher(code, message)`` until ``unwatch``."""
        self._watchers[req_id] = watcher

    def unwatch(self, req_id: int) -> None:
        """Stop routing errors for ``req_id``."""
        self._watchers.pop(req_id, None)

    def request_lock(self, key: str) -> asyncio.Lock:
        """A lock for ib_async requests keyed by name (e.g. ``openOrders``): one at a time."""
        lock = self._request_locks.get(key)
        if lock is None:
            lock = self._request_locks[key] = asyncio.Lock()
        return lock

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background connect loop and the liveness watch (returns at once)."""
        self._closed = False
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="ibkr-connect")
        if self._watch_task is None or self._watch_task.done():
            watch = self.liveness.watch(self.ib, self._up, lambda: self._closed)
            self._watch_task = asyncio.create_task(watch, name="ibkr-liveness")

    async def close(self) -> None:
        """Stop reconnecting and disconnect."""
        self._closed = True
        tasks = [t for t in (self._task, self._watch_task, *self._callbacks) if t is not None]
        self._task = self._watch_task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.ib.isConnected():
            self.ib.disconnect()

    async def ensure_connected(self) -> None:
        """Connect now if down; raise ``GatewayUnavailableError`` (with a remedy) if impossible.

        Raises:
            GatewayHungError: The gateway stopped answering (fails fast, no waiting).
            GatewayUnavailableError: No connection, or IB's servers unreachable (1100).
        """
        if self.session_up:
            if self.hung:
                raise self.hung_error()
            if self.upstream_lost:
                raise GatewayUnavailableError(
                    "IB Gateway is running but has lost its connection to IB's servers (IB 1100).",
                    remedy=notices.NOTICE_REMEDIES[1100],
                    details={
                        "host": self.host,
                        "port": self.port,
                        "ib_code": 1100,
                        "state": "upstream-lost",
                    },
                )
            return
        if self._closed:
            raise GatewayUnavailableError(
                "The gateway connection was closed.", remedy="Restart the server."
            )
        await self._connect_once()

    def hung_error(self, what: str | None = None) -> GatewayHungError:
        """The fail-fast error while the gateway does not answer its liveness probe."""
        error = self.liveness.error(what)
        error.details.update({"host": self.host, "port": self.port})
        return error

    async def _run(self) -> None:
        backoff = BACKOFF_MIN
        last_reason: str | None = None
        while not self._closed:
            if not self.ib.isConnected():
                try:
                    await self._connect_once()
                except IbkrMcpError as exc:
                    reason = exc.message
                    if reason != last_reason:
                        logger.warning("IB not reachable ({}); retrying in the background", reason)
                        last_reason = reason
                    else:
                        logger.debug(
                            "IB still not reachable ({}); retry in {:.2f} s", reason, backoff
                        )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._backoff_cap())
                    continue
                backoff, last_reason = BACKOFF_MIN, None
            await self._lost.wait()

    def _backoff_cap(self) -> float:
        down_for = time.monotonic() - self._down_since
        fast = down_for <= self.settings.IBKR_RECONNECT_FAST_WINDOW_SECONDS
        return BACKOFF_FAST if fast else BACKOFF_SLOW

    async def _connect_once(self) -> None:
        async with self._connect_lock:
            if self.session_up:
                return
            self._lost.clear()
            self._notice_seen = False
            self._client_id_rejected = False
            self._clear_session_state()
            where = f"{self.host}:{self.port}"
            try:
                await self._handshake()
            except ConnectionRefusedError:
                raise self._failed(
                    f"Connection refused at {where}",
                    "start IB Gateway or TWS with the API enabled on that port, or run with --sim",
                ) from None
            except TimeoutError:
                if self._client_id_rejected:
                    raise self._client_id_error() from None
                raise self._failed(
                    f"Timed out connecting to {where}",
                    "check the firewall and that the API is enabled in IB Gateway / TWS "
                    "(Configure → Settings → API: Enable ActiveX and Socket Clients) on that port",
                ) from None
            except (OSError, ConnectionError) as exc:
                if self._client_id_rejected:
                    raise self._client_id_error() from None
                raise self._failed(
                    f"Could not connect to {where}: {exc}",
                    "start IB Gateway or TWS with the API enabled on that port, or run with --sim",
                ) from None
            self.broker = "simulator" if self._notice_seen else "gateway"
            self.last_error = None
            self.liveness.reset()
            if self._ever_up:
                self.reconnects += 1
            self._ever_up = self._was_up = True
            self._up.set()
            logger.info(
                "Connected to {} at {} (client id {}, server version {}, accounts {})",
                self.broker,
                where,
                self.client_id,
                self.ib.client.serverVersion(),
                ",".join(self.ib.managedAccounts()) or "-",
            )
            for callback in self._on_connected:
                task = asyncio.create_task(self._run_callback(callback), name="ibkr-on-connected")
                self._callbacks.add(task)
                task.add_done_callback(self._callbacks.discard)

    async def _run_callback(self, callback: Callable[[], Awaitable[None]]) -> None:
        try:
            await callback()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a callback bug must not break the connection
            logger.exception("on-connected callback failed")

    def _clear_session_state(self) -> None:
        self.notices.clear()
        self.liveness.reset()

    async def _handshake(self) -> None:
        await handshake(
            self.ib, self.host, self.port, self.client_id, self.settings.IBKR_CONNECT_TIMEOUT
        )

    def _failed(self, message: str, remedy: str) -> GatewayUnavailableError:
        self.last_error = f"{message}: {remedy}"
        return GatewayUnavailableError(
            f"{message}.",
            remedy=remedy,
            details={"host": self.host, "port": self.port, "state": "reconnecting"},
        )

    def _client_id_error(self) -> GatewayUnavailableError:
        error = ib_errors.translate(
            326,
            f"client id {self.client_id} is already in use at {self.host}:{self.port}",
            extra={"host": self.host, "port": self.port, "client_id": self.client_id},
        )
        assert isinstance(error, GatewayUnavailableError)
        error.remedy = (
            f"Another API client is connected to {self.host}:{self.port} as client id "
            f"{self.client_id}: stop it, or set IBKR_CLIENT_ID to an unused number (CLI commands "
            f"connect as IBKR_CLIENT_ID + CLI_CLIENT_ID_OFFSET)."
        )
        self.last_error = f"{error.message}: {error.remedy}"
        return error

    # --- events ---------------------------------------------------------------------------

    def _on_error(self, req_id: int, code: int, message: str, contract: Any) -> None:
        if code == SIMULATOR_NOTICE_CODE or message.startswith(SIMULATOR_NOTICE_PREFIX):
            self._notice_seen = True
            self.broker = "simulator"
        if code == 326:
            self._client_id_rejected = True
        if code in notices.NOTICE_CODES:
            self.last_notice = Notice(code, message, datetime.now(UTC))
        self._apply_notice(code, message)
        # Only session-level problems are the connection's last error: a request's own error
        # (a bad symbol, IB 200 with its request id) says nothing about the gateway (issue 9).
        if (
            req_id < 0
            and not ib_errors.is_advisory(code)
            and code not in notices.UPSTREAM_RESTORED
            and code not in notices.FARM_OK
        ):
            self.last_error = f"IB {code}: {message}"
        watcher = self._watchers.get(req_id)
        if watcher is not None:
            try:
                watcher(code, message)
            except Exception:  # noqa: BLE001 - a watcher bug must not break ib_async's event dispatch
                logger.exception("error watcher for request {} failed", req_id)

    def _apply_notice(self, code: int, message: str) -> None:
        if self.notices.apply(code, message):
            self._call_all(self._on_resubscribe, "resubscribe")

    def _on_disconnected(self) -> None:
        self._lost.set()
        self._up.clear()
        self._down_since = time.monotonic()
        self._clear_session_state()
        self._reset_caches()
        was_up, self._was_up = self._was_up, False
        if was_up and not self._closed:
            self.last_error = f"Disconnected from {self.host}:{self.port}"
            logger.warning("Disconnected from IB at {}:{}; reconnecting", self.host, self.port)

    def _reset_caches(self) -> None:
        self._call_all(self._on_reset, "cache reset")

    def _call_all(self, callbacks: list[Callable[[], None]], what: str) -> None:
        for callback in callbacks:
            try:
                callback()
            except Exception:  # noqa: BLE001 - one callback's bug must not stop the others
                logger.exception("{} callback failed", what)

    # --- requests -------------------------------------------------------------------------

    async def guard(self, awaitable: Awaitable[T], limit: float, what: str) -> T:
        """Await ``awaitable`` for at most ``limit`` s, failing at once if the gateway hangs.

        One bare future is awaited, settled by the answer, the timer or the liveness probe's
        shared hung future (no task per call for the probe, no ``asyncio.wait``): every broker
        request passes here, and each task and wait set cost the event loop time (issue 15).

        Raises:
            TimeoutError: ``limit`` passed (the awaitable is cancelled).
            GatewayHungError: The liveness probe went unanswered meanwhile.
        """
        task = asyncio.ensure_future(awaitable)
        hung = self.liveness.hung_future()
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()

        def wake(_: object = None) -> None:
            if not woken.done():
                woken.set_result(None)

        task.add_done_callback(wake)
        hung.add_done_callback(wake)
        timer = loop.call_later(limit, wake)
        answered = False
        try:
            await woken
            answered = task.done()
        finally:
            timer.cancel()
            task.remove_done_callback(wake)
            hung.remove_done_callback(wake)
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if answered:
            return task.result()
        if hung.done() and not hung.cancelled():
            raise self.hung_error(what)
        raise TimeoutError

    async def call(
        self,
        start: Callable[[], Awaitable[T]],
        *,
        what: str,
        timeout: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> T:
        """Run one ib_async request with a finite timeout, translating its failures.

        Args:
            start: Zero-argument callable that sends the request and returns its awaitable.
            what: What is being done, for error messages (``"contract details for AAPL"``).
            timeout: Seconds to wait; defaults to ``IBKR_REQUEST_TIMEOUT``.
            extra: Details to attach to any error.

        Raises:
            GatewayTimeoutError: If IB does not answer in time.
            GatewayHungError: If the gateway stops answering its liveness probe meanwhile.
            GatewayUnavailableError: If the connection is down or drops meanwhile.
            IbkrMcpError: IB's error, translated through the error table.
        """
        await self.ensure_connected()
        limit = timeout if timeout is not None else self.settings.IBKR_REQUEST_TIMEOUT
        try:
            return await self.guard(start(), limit, what)
        except TimeoutError:
            raise self.timeout_error(what, limit, extra) from None
        except RequestError as exc:
            raise ib_errors.translate(
                exc.code, exc.message, req_id=exc.reqId, context=what, extra=extra
            ) from None
        except ConnectionError as exc:
            raise self.lost_error(what, exc) from None

    def timeout_error(
        self, what: str, limit: float, extra: dict[str, Any] | None = None
    ) -> GatewayTimeoutError:
        """The error for a request IB did not answer within ``limit`` seconds."""
        return GatewayTimeoutError(
            f"{what}: IB did not answer within {limit:g} s.",
            remedy="Retry; if it keeps happening check IB Gateway / TWS and raise "
            "IBKR_REQUEST_TIMEOUT.",
            details={"timeout_seconds": limit, **(extra or {})},
        )

    def lost_error(self, what: str, exc: BaseException) -> GatewayUnavailableError:
        """The error for a request that failed because the connection dropped."""
        return GatewayUnavailableError(
            f"{what}: the connection to IB was lost ({exc}).",
            remedy="Retry in a few seconds; the server reconnects automatically.",
            details={"host": self.host, "port": self.port},
        )
