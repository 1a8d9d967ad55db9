"""One broker order book per order call: open orders, completed orders, executions asked once.

Placing an order asks the broker the same questions twice (the idempotency lookup by orderRef
and the flow gates' orders of the day), and every question costs a round trip and a share of
ib_async's 45 requests/s pacing. Inside ``order_book_scope()`` each of those reads is made once
and shared by every caller in the same task tree; sending, modifying or cancelling an order
clears the memo, so nothing read before a change is reused after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

_MEMO: ContextVar[dict[str, asyncio.Future[Any]] | None] = ContextVar(
    "order_book_scope", default=None
)


@contextmanager
def order_book_scope() -> Iterator[None]:
    """Within this block (and tasks it starts), order-book reads are made once and shared."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


async def shared_read(key: str, read: Callable[[], Awaitable[T]]) -> T:
    """``read()``, or the result of the same read already made in this scope.

    Args:
        key: What is read (method and arguments).
        read: The broker read itself.
    """
    memo = _MEMO.get()
    if memo is None:
        return await read()
    future = memo.get(key)
    if future is None:
        future = asyncio.ensure_future(read())
        memo[key] = future
    result: T = await asyncio.shield(future)
    return result


def order_book_changed() -> None:
    """An order was sent, modified or cancelled: forget every read of this scope."""
    memo = _MEMO.get()
    if memo is not None:
        memo.clear()
