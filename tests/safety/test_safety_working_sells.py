"""What working sells may still sell: OCA groups once, unfilled parents' exits not at all."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from safety_helpers import PAPER, build_intent

from ibkr_mcp.gateway.records import OrderRecord
from ibkr_mcp.safety.flow_facts import working_sells

SELL = build_intent(side="SELL", quantity=Decimal(5))


def record(order_id: int, **overrides: Any) -> OrderRecord:
    fields: dict[str, Any] = dict.fromkeys(OrderRecord._fields)
    fields.update(
        order_id=order_id, client_id=1, account=PAPER, symbol="AAPL", con_id=265598,
        side="SELL", quantity=Decimal(10), order_type="LMT", tif="DAY", outside_rth=False,
        status="Submitted", filled=Decimal(0), remaining=Decimal(10),
    )  # fmt: skip
    fields.update(overrides)
    return OrderRecord(**fields)


def test_plain_sells_add_up_by_what_remains() -> None:
    orders = [record(1), record(2, remaining=Decimal(4), filled=Decimal(6))]
    assert working_sells(orders, SELL) == 14


def test_done_buys_other_contracts_and_accounts_do_not_count() -> None:
    orders = [
        record(1, status="Filled", remaining=Decimal(0)),
        record(2, status="Cancelled"),
        record(3, side="BUY"),
        record(4, con_id=1),
        record(5, account="DU999"),
    ]
    assert working_sells(orders, SELL) == 0


def test_a_bracket_counts_its_exits_once_and_only_after_its_parent_filled() -> None:
    parent = record(10, side="BUY", status="Filled", remaining=Decimal(0))
    exits = [record(11, parent_id=10, oca_group="oca.k"), record(12, parent_id=10,
             oca_group="oca.k", order_type="STP")]  # fmt: skip
    assert working_sells([parent, *exits], SELL) == 10
    waiting = parent._replace(status="Submitted", remaining=Decimal(10))
    assert working_sells([waiting, *exits], SELL) == 0
    # A parent partly filled: its exits may sell what it bought so far.
    partly = waiting._replace(filled=Decimal(6), remaining=Decimal(4))
    assert working_sells([partly, *exits], SELL) == 6


def test_moving_a_bracket_exit_leaves_its_group_out() -> None:
    parent = record(10, side="BUY", status="Filled", remaining=Decimal(0))
    exits = [record(11, parent_id=10, oca_group="oca.k"), record(12, parent_id=10,
             oca_group="oca.k", order_type="STP")]  # fmt: skip
    other = record(13, remaining=Decimal(2))
    moving_stop = build_intent(side="SELL", quantity=Decimal(10), modifies=12)
    assert working_sells([parent, *exits, other], moving_stop) == 2


def test_a_modification_counts_what_its_order_already_sold() -> None:
    partly = record(5, filled=Decimal(4), remaining=Decimal(6))
    change = build_intent(side="SELL", quantity=Decimal(10), modifies=5)
    assert working_sells([partly], change) == -4  # 10 in all, 4 of them already sold


def test_sells_on_their_way_count_until_the_broker_shows_them() -> None:
    shown = record(1, order_ref="key-shown")
    pending = [("key-shown", Decimal(10)), ("key-in-flight", Decimal(7))]
    assert working_sells([shown], SELL, pending) == 17


def test_a_modification_leaves_its_own_order_out() -> None:
    orders = [record(1), record(2)]
    assert working_sells(orders, build_intent(side="SELL", modifies=2)) == 10
