"""The ib_async connection: background connect with backoff, error routing, request timeouts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from ib_async import IB
from ib_async.ib import StartupFetch
from ib_async.wrapper import RequestError
from loguru import logger
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_never,
    wait_exponential,
)

from ibkr_mcp.config import Settings
from ibkr_mcp.errors import GatewayTimeoutError, GatewayUnavailableError, IbkrMcpError
from ibkr_mcp.gateway import ib_errors
from ibkr_mcp.models import BrokerKind

T = TypeVar("T")

#: Start of the text of the simulator's start-up notice (error code 2199, reqId -1).
SIMULATOR_NOTICE_PREFIX: Final = "IBKR-MCP SIMULATOR:"
SIMULATOR_NOTICE_CODE: Final = 2199

#: What ib_async fetches while connecting: everything but per-sub-account updates.
STARTUP_FETCH: Final = (
    StartupFetch.POSITIONS
    | StartupFetch.ORDERS_OPEN
    | StartupFetch.ORDERS_COMPLETE
    | StartupFetch.ACCOUNT_UPDATES
    | StartupFetch.EXECUTIONS
)

#: Backoff between background connection attempts: 0.5 s doubling to a 30 s cap.
BACKOFF_MIN: Final = 0.5
BACKOFF_MAX: Final = 30.0

ErrorWatcher = Callable[[int, str], None]


class _LoguruHandler(logging.Handler):
    """Forwards ib_async's stdlib log records to loguru (stderr)."""

    def emit(self, record: logging.LogRecord) -> None:
        # ib_async logs every request error at ERROR; we translate and report those ourselves,
        # and its connect failures repeat on every backoff attempt (we log one line per outage).
        if record.name == "ib_async.client":
            level = "DEBUG"
        elif record.levelno >= logging.ERROR:
            level = "WARNING"
        else:
            level = record.levelname
        if level == "WARN":
            level = "WARNING"
        text = record.getMessage()
        logger.opt(exception=record.exc_info).log(level, "[{}] {}", record.name, text)


def configure_ib_logging(log_level: str) -> None:
    """Keep ib_async quiet (WARNING) unless ``LOG_LEVEL`` is DEBUG/TRACE; route it to loguru."""
    ib_logger = logging.getLogger("ib_async")
    ib_logger.setLevel(logging.DEBUG if log_level in ("DEBUG", "TRACE") else logging.WARNING)
    if not any(isinstance(h, _LoguruHandler) for h in ib_logger.handlers):
        ib_logger.addHandler(_LoguruHandler())
    ib_logger.propagate = False


class IbConnection:
    """One ib_async ``IB`` plus the policy around it (reconnects, timeouts, error routing).

    Args:
        settings: Connection settings (timeouts, client id).
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
        self.ib = IB()
        # Request errors must fail the request's future (with the code), not end it empty.
        self.ib.RaiseRequestErrors = True
        self.broker: BrokerKind | None = None
        self.last_error: str | None = None
        self.connectivity_lost = False
        self._notice_seen = False
        self._client_id_rejected = False
        self._closed = False
        self._was_up = False
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._connect_lock = asyncio.Lock()
        self._request_locks: dict[str, asyncio.Lock] = {}
        self._watchers: dict[int, ErrorWatcher] = {}
        self._on_reset: list[Callable[[], None]] = []
        self.ib.errorEvent += self._on_error
        self.ib.disconnectedEvent += self._on_disconnected
        configure_ib_logging(settings.LOG_LEVEL)

    # --- state ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the API session is up (and IB's servers are reachable from the gateway)."""
        return self.ib.isConnected() and not self.connectivity_lost

    def on_reset(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever session state is lost (disconnect, 1101): drop caches."""
        self._on_reset.append(callback)

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
        """Start the background connect loop (returns at once)."""
        self._closed = False
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="ibkr-connect")

    async def close(self) -> None:
        """Stop reconnecting and disconnect."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self.ib.isConnected():
            self.ib.disconnect()

    async def ensure_connected(self) -> None:
        """Connect now if down; raise ``GatewayUnavailableError`` (with a remedy) if impossible."""
        if self.connectivity_lost and self.ib.isConnected():
            raise GatewayUnavailableError(
                "IB Gateway is running but has lost its connection to IB's servers (IB 1100).",
                remedy="Wait for IB Gateway to reconnect (check its window and the network).",
                details={"host": self.host, "port": self.port, "ib_code": 1100},
            )
        if self.ib.isConnected():
            return
        if self._closed:
            raise GatewayUnavailableError(
                "The gateway connection was closed.", remedy="Restart the server."
            )
        await self._connect_once()

    async def _run(self) -> None:
        while not self._closed:
            if not self.ib.isConnected():
                retrying = AsyncRetrying(
                    wait=wait_exponential(multiplier=BACKOFF_MIN, min=BACKOFF_MIN, max=BACKOFF_MAX),
                    retry=retry_if_exception_type(IbkrMcpError),
                    stop=stop_never,
                    reraise=True,
                    before_sleep=self._log_retry,
                )
                async for attempt in retrying:
                    with attempt:
                        await self._connect_once()
            await self._lost.wait()

    def _log_retry(self, state: RetryCallState) -> None:
        outcome = state.outcome
        reason = outcome.exception() if outcome is not None else None
        level = "WARNING" if state.attempt_number == 1 else "DEBUG"
        logger.log(
            level,
            "IB not reachable ({}); retrying in {:.1f} s (attempt {})",
            reason,
            state.upcoming_sleep,
            state.attempt_number,
        )

    async def _connect_once(self) -> None:
        async with self._connect_lock:
            if self.ib.isConnected():
                return
            self._lost.clear()
            self._notice_seen = False
            self._client_id_rejected = False
            self.connectivity_lost = False
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
            self._was_up = True
            logger.info(
                "Connected to {} at {} (client id {}, server version {}, accounts {})",
                self.broker,
                where,
                self.client_id,
                self.ib.client.serverVersion(),
                ",".join(self.ib.managedAccounts()) or "-",
            )

    async def _handshake(self) -> None:
        """``connectAsync``, but fail at once if the peer drops the socket mid-handshake.

        IB answers a clashing client id with error 326 and a closed socket; ib_async would
        only notice at its timeout.
        """
        dropped: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def on_api_error(message: str) -> None:
            if not dropped.done():
                dropped.set_result(message)

        client: Any = self.ib.client
        client.apiError += on_api_error
        connect = asyncio.ensure_future(
            self.ib.connectAsync(
                self.host,
                self.port,
                clientId=self.client_id,
                timeout=self.settings.IBKR_CONNECT_TIMEOUT,
                fetchFields=STARTUP_FETCH,
            )
        )
        try:
            await asyncio.wait({connect, dropped}, return_when=asyncio.FIRST_COMPLETED)
            if not connect.done():
                raise ConnectionError(dropped.result())
            connect.result()
        finally:
            client.apiError -= on_api_error
            dropped.cancel()
            if not connect.done():
                connect.cancel()
                await asyncio.gather(connect, return_exceptions=True)

    def _failed(self, message: str, remedy: str) -> GatewayUnavailableError:
        self.last_error = message
        return GatewayUnavailableError(
            f"{message}.", remedy=remedy, details={"host": self.host, "port": self.port}
        )

    def _client_id_error(self) -> GatewayUnavailableError:
        error = ib_errors.translate(
            326,
            f"client id {self.client_id} is already in use",
            extra={"host": self.host, "port": self.port, "client_id": self.client_id},
        )
        assert isinstance(error, GatewayUnavailableError)
        self.last_error = error.message
        return error

    # --- events ---------------------------------------------------------------------------

    def _on_error(self, req_id: int, code: int, message: str, contract: Any) -> None:
        if code == SIMULATOR_NOTICE_CODE or message.startswith(SIMULATOR_NOTICE_PREFIX):
            self._notice_seen = True
            self.broker = "simulator"
        if code == 326:
            self._client_id_rejected = True
        if code in ib_errors.CONNECTIVITY_LOST_CODES:
            self.connectivity_lost = True
            logger.warning("IB Gateway lost connectivity to IB (1100): {}", message)
        elif code in ib_errors.CONNECTIVITY_RESTORED_CODES:
            self.connectivity_lost = False
            logger.info("IB connectivity restored ({}): {}", code, message)
            if code in ib_errors.DATA_LOST_CODES:
                self._reset_caches()
        if not ib_errors.is_advisory(code) and code not in ib_errors.CONNECTIVITY_RESTORED_CODES:
            self.last_error = f"IB {code}: {message}"
        watcher = self._watchers.get(req_id)
        if watcher is not None:
            try:
                watcher(code, message)
            except Exception:  # noqa: BLE001 - a watcher bug must not break ib_async's event dispatch
                logger.exception("error watcher for request {} failed", req_id)

    def _on_disconnected(self) -> None:
        self._lost.set()
        self._reset_caches()
        was_up, self._was_up = self._was_up, False
        if was_up and not self._closed:
            self.last_error = f"Disconnected from {self.host}:{self.port}"
            logger.warning("Disconnected from IB at {}:{}; reconnecting", self.host, self.port)

    def _reset_caches(self) -> None:
        for callback in self._on_reset:
            try:
                callback()
            except Exception:  # noqa: BLE001 - one cache's bug must not stop the others from resetting
                logger.exception("cache reset callback failed")

    # --- requests -------------------------------------------------------------------------

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
            GatewayUnavailableError: If the connection is down or drops meanwhile.
            IbkrMcpError: IB's error, translated through the error table.
        """
        await self.ensure_connected()
        limit = timeout if timeout is not None else self.settings.IBKR_REQUEST_TIMEOUT
        try:
            return await asyncio.wait_for(start(), limit)
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
