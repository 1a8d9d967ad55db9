"""The running process: simulator (optional), gateway, audit trail and tokens, wired once."""

from __future__ import annotations

import asyncio
import functools
import gc
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from loguru import logger

from ibkr_mcp.config import Settings
from ibkr_mcp.models import Fill, OrderInfo
from ibkr_mcp.services import Services

if TYPE_CHECKING:
    from ibkr_mcp.gateway.ib_gateway import IBGateway
    from ibkr_mcp.simulator import Simulator


def freeze_heap() -> None:
    """Collect once, then keep everything alive after start-up out of later collections.

    A server process holds a large, long-lived heap (FastAPI, pydantic models, ib_async, the
    simulator's catalogue); every full collection traversed all of it, a stop of the one event
    loop of 100+ ms every few seconds under load. Call once the runtime is open (``gc.freeze``).
    """
    gc.collect()
    gc.freeze()


@functools.cache
def _libc() -> Any | None:
    """glibc, when this process runs on it (``malloc_trim`` is glibc's), else ``None``."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # here: not on the start-up path

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


def trim_heap() -> bool:
    """Hand the heap memory this process freed back to the OS; ``False`` where unsupported.

    glibc keeps freed memory in its heaps for reuse, so a long session's RSS keeps the peak of
    every transient burst (decoded broker answers, audit batches) and the holes between live
    objects: in the issue 15 soak, half of the RSS growth over 1,000 orders was such memory,
    returned by ``malloc_trim(0)``. ctypes releases the GIL during the call.
    """
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


async def _trim_heap_every(seconds: float) -> None:
    """``trim_heap`` in a thread every ``seconds`` (stops where it is unsupported)."""
    while True:
        await asyncio.sleep(seconds)
        if not await asyncio.to_thread(trim_heap):
            return


def _wire_audit_listeners(services: Services) -> None:
    """Record every status change, fill and commission from the broker as it arrives."""
    from ibkr_mcp.reconcile import append_fill, append_status

    async def on_status(info: OrderInfo) -> None:
        await append_status(
            services, info, {"filled": str(info.filled), "remaining": str(info.remaining)}
        )

    async def on_fill(fill: Fill) -> None:
        # ib_async reports an execution first and its commission in a later event.
        await append_fill(services, fill, "execution" if fill.commission is None else "commission")

    services.gateway.add_order_status_listener(on_status)
    services.gateway.add_fill_listener(on_fill)


def _wire_reconcile(services: Services, gateway: IBGateway) -> None:
    """After every (re)connect, record what the broker did meanwhile (fills, statuses)."""
    from ibkr_mcp.reconcile import reconcile

    async def run() -> None:
        await reconcile(services)

    gateway.on_connected(run)


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    sim: bool = False,
    wait_connected: float | None = None,
    client_id: int | None = None,
) -> AsyncIterator[Services]:
    """Start everything the tools need and stop it on exit.

    Args:
        settings: Effective settings.
        sim: Start the embedded IB Gateway simulator in-process and connect to it.
        wait_connected: Seconds to wait for the first connection (default: 5 s with ``sim``,
            0 otherwise: the server answers at once and tools report GATEWAY_UNAVAILABLE).
        client_id: API client id (default ``IBKR_CLIENT_ID``; the CLI passes its offset id).
    """
    from ibkr_mcp.audit import AuditLog
    from ibkr_mcp.audit.keys import load_or_create_key

    audit = AuditLog(
        settings.audit_db_path,
        busy_timeout=settings.AUDIT_BUSY_TIMEOUT_SECONDS,
        # Keyed chain: the key lives outside the database (AUDIT_KEY_FILE, 0600, never logged).
        key=load_or_create_key(settings.audit_key_path),
    )
    # The database opens in its own thread while this one imports the broker stack and starts
    # the simulator (start-up latency: both are needed before the first call).
    opening = asyncio.ensure_future(audit.open())
    simulator: Simulator | None = None
    gateway: IBGateway | None = None
    trimmer: asyncio.Future[None] | None = None
    try:
        from ibkr_mcp.gateway.ib_gateway import IBGateway
        from ibkr_mcp.safety.tokens import TokenStore

        host, port = settings.IBKR_HOST, settings.IBKR_PORT
        if sim:
            simulator = build_simulator(settings)
            host = "127.0.0.1"
            port = await simulator.start(host, settings.SIM_PORT)
            if settings.SIM_FAULTS:
                from ibkr_mcp.simulator.control import apply_faults

                apply_faults(simulator.drills, settings.SIM_FAULTS)
            logger.info("embedded IB Gateway simulator on {}:{}", host, port)
        gateway = IBGateway(settings, host=host, port=port, client_id=client_id)
        await opening
        services = Services(
            settings=settings,
            gateway=gateway,
            audit=audit,
            tokens=TokenStore(settings.CONFIRMATION_TOKEN_TTL_SECONDS),
            simulator=simulator,
        )
        _wire_audit_listeners(services)
        _wire_reconcile(services, gateway)
        await gateway.start()
        if settings.HEAP_TRIM_SECONDS > 0:
            trimmer = asyncio.ensure_future(_trim_heap_every(settings.HEAP_TRIM_SECONDS))
        wait = wait_connected if wait_connected is not None else (5.0 if sim else 0.0)
        if wait > 0:
            await _wait_connected(services, wait)
        if settings.REQUIRE_APPROVAL == "never":
            yield services
        else:
            from ibkr_mcp.tools.approval_runner import approval_runner

            async with approval_runner(services):
                yield services
    finally:
        from ibkr_mcp.tools.registry import drain_audit

        if trimmer is not None:
            trimmer.cancel()
        await asyncio.gather(opening, return_exceptions=True)
        await drain_audit()
        if gateway is not None:
            await gateway.close()
        await audit.close()
        if simulator is not None:
            await simulator.stop()


def build_simulator(settings: Settings) -> Simulator:
    """The embedded simulator as the settings describe it (not started)."""
    from ibkr_mcp.simulator import Simulator

    return Simulator(
        seed=settings.SIM_SEED,
        accounts=settings.SIM_ACCOUNTS,
        starting_cash=settings.SIM_STARTING_CASH,
        trading_hours=settings.SIM_TRADING_HOURS,
        master_client_id=settings.SIM_MASTER_CLIENT_ID
        if settings.SIM_MASTER_CLIENT_ID >= 0
        else None,
        reject_mkt_remainder=settings.SIM_REJECT_MKT_REMAINDER,
        # simulator drills: IB's limits, reset, state; a control channel only when asked
        pacing=settings.SIM_PACING == "ib",
        market_data_lines=settings.SIM_MARKET_DATA_LINES,
        account_update_seconds=settings.SIM_ACCOUNT_UPDATE_SECONDS,
        no_live_data=settings.SIM_NO_MARKET_DATA,
        market_data_gaps=settings.sim_market_data_gaps(),
        delayed_data=settings.SIM_DELAYED_DATA,
        historical_seconds=settings.SIM_HISTORICAL_SECONDS,
        reset_refuse_seconds=settings.SIM_RESET_SECONDS,
        state_file=settings.resolve(settings.SIM_STATE_FILE) if settings.SIM_STATE_FILE else None,
        control=settings.SIM_CONTROL_DIR or False,
    )


async def _wait_connected(services: Services, seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not services.gateway.connected:
        if asyncio.get_running_loop().time() >= deadline:
            logger.warning("not connected after {:.1f} s; tools will say so", seconds)
            return
        await asyncio.sleep(0.005)  # start-up latency: the first call waits for this
