"""Property-based: no order input crashes the server or slips past a limit (500 examples)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from order_helpers import REGISTRY

from ibkr_mcp.config import load_settings
from ibkr_mcp.errors import IbkrMcpError

KNOWN_CODES = {
    "INVALID_INPUT",
    "GATE_REFUSED",
    "CONTRACT_NOT_FOUND",
    "ORDER_REJECTED",
    "CONFIRMATION_REQUIRED",
    "IDEMPOTENCY_CONFLICT",
    "AMBIGUOUS_CONTRACT",
}


class LoopThread:
    """An event loop in a thread owning the simulator and the runtime (hypothesis is sync)."""

    def __init__(self, data_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.data_dir = data_dir
        self.services: Any = None
        self._stack: Any = None

    def run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def start(self) -> None:
        from contextlib import AsyncExitStack

        from ibkr_mcp.runtime import open_runtime
        from ibkr_mcp.simulator import Simulator

        self._stack = AsyncExitStack()
        self.sim = Simulator(seed=7)
        port = await self.sim.start("127.0.0.1", 0)
        self._stack.push_async_callback(self.sim.stop)
        cfg = load_settings(
            _env_file=None, DATA_DIR=self.data_dir, IBKR_PORT=port, ORDERS_ENABLED=True,
            CONFIRMATION_TOKEN_TTL_SECONDS=600,
        )  # fmt: skip
        self.services = await self._stack.enter_async_context(open_runtime(cfg, wait_connected=5))

    async def stop(self) -> None:
        await self._stack.aclose()

    def close(self) -> None:
        self.run(self.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopThread]:
    world = LoopThread(tmp_path_factory.mktemp("props"))
    world.run(world.start())
    yield world
    world.close()


quantities = st.one_of(
    st.integers(min_value=-5, max_value=10_000_000),
    st.decimals(min_value=-10, max_value=10**7, places=3, allow_nan=False, allow_infinity=False),
    st.sampled_from(["1e9", "NaN", "abc", "", "0", "1000", "1001"]),
)
prices = st.one_of(
    st.none(),
    st.decimals(min_value=-1, max_value=5000, places=3, allow_nan=False, allow_infinity=False),
    st.sampled_from(["1850", "0.01", "-1", "inf"]),
)
orders = st.fixed_dictionaries(
    {
        "symbol": st.sampled_from(["AAPL", "SPY", "MSFT", "ZZZZQ", "", "A" * 40, "EUR.USD"]),
        "side": st.sampled_from(["BUY", "SELL", "HOLD"]),
        "quantity": quantities,
        "order_type": st.sampled_from(["MKT", "LMT", "STP"]),
        "limit_price": prices,
        "tif": st.sampled_from(["DAY", "GTC", "IOC", "FOK"]),
    },
    optional={"sec_type": st.sampled_from(["STK", "CASH", "OPT"]), "bogus": st.integers()},
)


@pytest.mark.slow
@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(order=orders, n=st.integers(min_value=0, max_value=10**9))
def test_no_input_crashes_or_slips_past_a_limit(
    world: LoopThread, order: dict[str, Any], n: int
) -> None:
    order = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in order.items()}
    if order.get("limit_price") is None:
        order.pop("limit_price")
    cfg = world.services.settings

    async def attempt() -> Any:
        preview = await REGISTRY.call(
            "preview_order", order, services=world.services, surface="internal"
        )
        token = preview.output.confirmation_token or "no-token-was-issued"
        args = {**order, "confirmation_token": token, "idempotency_key": f"prop-{n:010d}"}
        return await REGISTRY.call("place_order", args, services=world.services, surface="internal")

    try:
        result = world.run(attempt()).output
    except IbkrMcpError as exc:
        assert exc.code in KNOWN_CODES, str(exc)
        return
    if result.sent:
        qty = Decimal(str(order["quantity"]))
        assert qty <= cfg.MAX_ORDER_QUANTITY
        assert result.order is not None
        notional = result.order.estimated_notional
        assert notional is not None and notional <= cfg.MAX_ORDER_NOTIONAL
