"""One broker order book per order call: open orders, completed orders, executions asked once.

Placing an order asks the broker the same questions twice (the idempotency lookup by orderRef
and the flow gates' orders of the day), and every question costs a round trip and a share of
ib_async's 45 requests/s pacing. Inside ``order_book_scope()`` each of those reads is made once
and shared by every caller in the same task tree; sending, modifying or cancelling an order
clears the memo, so nothing read before a change is reused after it. Inside a scope the day's
completed orders and executions may come from the gateway's incremental day book
(``gateway/day_book.py``) unless ``exact_reads()`` asks for the broker's whole answer.
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
_EXACT: ContextVar[bool] = ContextVar("order_book_exact", default=False)


@contextmanager
def order_book_scope() -> Iterator[None]:
    """Within this block (and tasks it starts), order-book reads are made once and shared.

    A scope opened inside another one shares the outer scope's reads.
    """
    if _MEMO.get() is not None:
        yield
        return
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def in_order_scope() -> bool:
    """Whether an ``order_book_scope`` is open (reads are shared)."""
    return _MEMO.get() is not None


def day_book_allowed() -> bool:
    """Whether the day's completed orders and executions may come from the day book."""
    return _MEMO.get() is not None and not _EXACT.get()


@contextmanager
def exact_reads() -> Iterator[None]:
    """Within this block the day's orders and executions are asked of the broker whole.

    For answers that report an order's state (an idempotent replay), not just its existence.
    """
    token = _EXACT.set(True)
    try:
        yield
    finally:
        _EXACT.reset(token)


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
