"""The day book: order calls read the broker's day incrementally and still never send twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from order_helpers import MKT10, call, preview_and_place, sent_orders

from ibkr_mcp.gateway.day_book import DayBook, ib_filter_time
from ibkr_mcp.models import Fill, OrderInfo
from ibkr_mcp.runtime import open_runtime

AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _settings(root: Path, port: int, name: str, client_id: int, **overrides: Any) -> Any:
    from ibkr_mcp.config import load_settings

    return load_settings(
        _env_file=None,
        DATA_DIR=root / name,
        IBKR_PORT=port,
        IBKR_CLIENT_ID=client_id,
        IBKR_CONNECT_TIMEOUT=2.0,
        IBKR_REQUEST_TIMEOUT=5.0,
        ORDERS_ENABLED=True,
        DUPLICATE_ORDER_WINDOW_SECONDS=0,
        **overrides,
    )


FAR = {**MKT10, "order_type": "LMT", "limit_price": "200.00", "quantity": 1}  # rests unfilled


@asynccontextmanager
async def _two_clients(
    root: Path, sim: Any, warmup_key: str, **b_settings: Any
) -> AsyncIterator[tuple[Any, Any]]:
    """Runtimes a (client 11) and b (client 12, ``b_settings``), each with its own audit.

    b has made one order call already: its day book holds the day from then on.
    """
    a = _settings(root, sim.port, "a", 11)
    b = _settings(root, sim.port, "b", 12, **b_settings)
    async with (
        open_runtime(a, wait_connected=5) as first,
        open_runtime(b, wait_connected=5) as second,
    ):
        await preview_and_place(second, {**MKT10, "symbol": "MSFT"}, warmup_key)
        yield first, second


def _order(perm_id: int, status: str, ref: str = "ref-0001") -> OrderInfo:
    return OrderInfo(
        order_id=perm_id,
        perm_id=perm_id,
        account="DU1",
        symbol="AAPL",
        side="BUY",
        quantity=Decimal(1),
        order_type="MKT",
        tif="DAY",
        status=status,
        remaining=Decimal(0),
        order_ref=ref,
    )


def _fill(exec_id: str, at: datetime, commission: Decimal | None = None) -> Fill:
    return Fill(
        exec_id=exec_id,
        order_id=1,
        account="DU1",
        symbol="AAPL",
        side="BUY",
        quantity=Decimal(1),
        price=Decimal(100),
        time=at,
        commission=commission,
    )


def test_day_book_whole_read_then_events_then_staleness() -> None:
    now = [0.0]
    book = DayBook(5.0, clock=lambda: now[0])
    assert not DayBook(0.0).stale()  # 0: never reread in the background
    assert book.completed() is None and book.fills() is None and book.fills_since() is None
    book.note_order(_order(1, "Filled"))  # nothing is known before the first whole read
    assert book.completed() is None
    book.set_completed([_order(1, "Filled")], book.generation)
    book.note_order(_order(2, "Submitted"))  # still working: not a completed order
    book.note_order(_order(3, "Cancelled"))
    assert sorted(o.perm_id or 0 for o in book.completed() or []) == [1, 3]
    assert not book.stale()
    now[0] = 5.0
    assert book.stale()
    # A whole read sent before this client saw order 3 finish does not forget it.
    book.set_completed([_order(1, "Filled")], book.generation)
    assert sorted(o.perm_id or 0 for o in book.completed() or []) == [1, 3]
    assert not book.stale()


def test_another_clients_order_gone_from_the_open_list_stays_counted() -> None:
    book = DayBook(0.0)
    book.set_completed([], book.generation)
    working = _order(7, "Submitted", ref="other-0007")
    book.note_open([working], book.generation)
    assert book.completed() == []
    book.note_open([], book.generation)  # finished between two reads (no status event)
    assert [r.info() for r in book.completed() or []] == [working]


def test_day_book_discards_reads_from_a_lost_session() -> None:
    book = DayBook(5.0)
    generation = book.generation
    book.reset()
    book.set_completed([_order(1, "Filled")], generation)
    book.add_fills([_fill("e1", AT)], generation, whole=True)
    assert book.completed() is None and book.fills() is None


def test_day_book_fills_are_incremental_on_the_brokers_clock() -> None:
    book = DayBook(5.0)
    # An incremental answer before any whole read cannot stand for the day.
    book.add_fills([_fill("e0", AT)], book.generation, whole=False)
    assert book.fills() is None
    book.add_fills([], book.generation, whole=True)
    assert book.fills() == [] and book.fills_since() is None  # nothing to start from yet
    book.add_fills([_fill("e1", AT)], book.generation, whole=True)
    assert book.fills_since() == AT - timedelta(seconds=1)
    book.add_fills([_fill("e2", AT + timedelta(minutes=1))], book.generation, whole=False)
    assert [f.exec_id for f in book.fills() or []] == ["e1", "e2"]
    assert book.fills_since() == AT + timedelta(minutes=1, seconds=-1)
    # A commission once known is never replaced by a repeat read without it.
    book.note_fill(_fill("e1", AT, Decimal("1.00")))
    book.add_fills([_fill("e1", AT)], book.generation, whole=False)
    assert (book.fills() or [])[0].commission == Decimal("1.00")
    assert book.settled_at("e1") == AT and book.settled_at("e2") is None
    assert book.settled_at("e9") is None
    assert book.fills("DU1") == book.fills() and book.fills("DU2") == []
    assert [f.exec_id for f in book.fills(order_ref="nobody") or []] == []
    assert ib_filter_time(AT) == "20260302-15:00:00"


async def test_another_clients_fill_after_the_book_was_read_is_not_sent_again(
    tmp_path: Path, sim: Any
) -> None:
    async with _two_clients(tmp_path, sim, "b-warmup-001") as (first, second):
        # b read the day whole at its first order call; it is not reread (no background rereads).
        assert second.gateway.orders.book.completed() is not None
        one = await preview_and_place(first, MKT10, "late-fill-001")
        assert one.status == "Filled"
        # b's cached completed orders predate it: the incremental executions read finds it.
        two = await preview_and_place(second, MKT10, "late-fill-001")
        assert two.replayed is True and two.perm_id == one.perm_id
        assert two.status == "Filled" and two.filled == 10
    assert [o.fields.order_ref for o in sent_orders(sim)].count("late-fill-001") == 1


async def test_another_clients_working_order_is_found_among_open_orders(
    tmp_path: Path, sim: Any
) -> None:
    async with _two_clients(tmp_path, sim, "b-warmup-002") as (first, second):
        one = await preview_and_place(first, FAR, "working-0001")
        assert one.status == "Submitted"
        two = await preview_and_place(second, FAR, "working-0001")
        assert two.replayed is True and two.perm_id == one.perm_id
    assert [o.fields.order_ref for o in sent_orders(sim)].count("working-0001") == 1


async def test_whole_reads_find_an_order_cancelled_unfilled_in_between(
    tmp_path: Path, sim: Any
) -> None:
    """ORDER_BOOK_WHOLE_READS: even an order never seen open, cancelled unfilled, is found."""
    clients = _two_clients(tmp_path, sim, "b-warmup-003", ORDER_BOOK_WHOLE_READS=True)
    async with clients as (first, second):
        one = await preview_and_place(first, FAR, "cancelled-001")
        await call(first, "cancel_order", {"order_id": one.order_id})
        two = await preview_and_place(second, FAR, "cancelled-001")
        assert two.replayed is True and two.perm_id == one.perm_id
        assert two.status in ("Cancelled", "ApiCancelled")
    assert [o.fields.order_ref for o in sent_orders(sim)].count("cancelled-001") == 1


async def test_fill_listeners_hear_each_execution_once(enabled: Any) -> None:
    heard: list[Fill] = []
    enabled.gateway.add_fill_listener(heard.append)
    placed = await preview_and_place(enabled, MKT10, "heard-once-01")
    assert placed.status == "Filled"
    for _ in range(3):  # IB repeats every fill and its commission on each executions request
        assert [f.order_ref for f in await enabled.gateway.executions()] == ["heard-once-01"]
    with_commission = [f for f in heard if f.commission is not None]
    assert len({f.exec_id for f in heard}) == 1
    assert len(heard) == 2 and len(with_commission) == 1


async def test_another_clients_order_seen_open_then_cancelled_is_not_sent_again(
    tmp_path: Path, sim: Any
) -> None:
    # Default settings: no whole rereads at all.
    async with _two_clients(tmp_path, sim, "b-warmup-004") as (first, second):
        one = await preview_and_place(first, FAR, "seen-open-01")
        await call(second, "preview_order", FAR)  # b's order call sees it among open orders
        await call(first, "cancel_order", {"order_id": one.order_id})
        two = await preview_and_place(second, FAR, "seen-open-01")
        assert two.replayed is True and two.perm_id == one.perm_id
        assert two.status in ("Cancelled", "ApiCancelled")
    assert [o.fields.order_ref for o in sent_orders(sim)].count("seen-open-01") == 1


def test_fills_heard_as_events_still_move_the_next_read_forward() -> None:
    # This client's own fills arrive as events, settled; a later read that answers only those
    # (skipped as settled) must still start the next read after them, or every read would
    # re-ask everything since the last fill a read itself returned (O(day) per order call).
    book = DayBook(0.0)
    book.add_fills([_fill("e1", AT, Decimal("1.00"))], book.generation, whole=True)
    later = AT + timedelta(minutes=5)
    book.note_fill(_fill("e2", later, Decimal("1.00")))
    assert book.fills_since() == AT - timedelta(seconds=1)
    settled = book.settled_at("e2")
    assert settled == later
    book.add_fills([], book.generation, whole=False, settled=[settled])
    assert book.fills_since() == later - timedelta(seconds=1)
    # An older settled time never moves it back.
    book.add_fills([], book.generation, whole=False, settled=[AT])
    assert book.fills_since() == later - timedelta(seconds=1)


def test_fills_by_order_ref_come_from_the_index_and_follow_the_book() -> None:
    # The order path asks the book for its key's fills on every call: by index, not by scan.
    book = DayBook(0.0)
    key_a = [_fill(f"a{n}", AT + timedelta(seconds=n)).model_copy(update={"order_ref": "k-a"})
             for n in (2, 1)]  # fmt: skip
    other = _fill("b1", AT).model_copy(update={"order_ref": "k-b", "account": "DU2"})
    book.add_fills([*key_a, other], book.generation, whole=True)
    assert [f.exec_id for f in book.fills(order_ref="k-a") or []] == ["a1", "a2"]  # by time
    assert book.fills(order_ref="k-a", account="DU2") == []
    assert [f.exec_id for f in book.fills(order_ref="k-b") or []] == ["b1"]
    assert book.fills(order_ref="none-such") == []
    late = _fill("a3", AT + timedelta(seconds=9)).model_copy(update={"order_ref": "k-a"})
    book.note_fill(late)  # an event of this client joins the index too
    assert [f.exec_id for f in book.fills(order_ref="k-a") or []] == ["a1", "a2", "a3"]
    book.reset()  # a lost session forgets the day, index included
    assert book.fills(order_ref="k-a") is None
    book.add_fills([other], book.generation, whole=True)
    assert book.fills(order_ref="k-a") == []
