"""Links between orders: transmit chains, attached (bracket) children and OCA groups."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ibkr_mcp.simulator.incoming_order import OrderFields
    from ibkr_mcp.simulator.order_model import SimOrder

#: ocaType values (IB): 1 cancel the rest with block, 2 reduce with block, 3 reduce, no block.
CANCEL_REST = 1
#: Attached children share one OCA group that reduces on fills, as IB links a bracket's legs.
BRACKET_OCA_TYPE = 3


class Links:
    """The untransmitted orders per client, and parent/child and OCA relations."""

    def __init__(self) -> None:
        self._pending: dict[int, list[SimOrder]] = {}

    @staticmethod
    def attach(child: SimOrder, parent: SimOrder) -> OrderFields:
        """The child's fields with the bracket's OCA group (its own group, if any, wins)."""
        f = child.fields
        if f.oca_group:
            return f
        return replace(f, oca_group=str(parent.perm_id), oca_type=f.oca_type or BRACKET_OCA_TYPE)

    def hold(self, order: SimOrder) -> None:
        """Keep a ``transmit=False`` order until its chain transmits."""
        self._pending.setdefault(order.client_id, []).append(order)

    def release(self, order: SimOrder) -> list[SimOrder]:
        """The held orders of ``order``'s chain (its parent and siblings), in placement order."""
        held = self._pending.get(order.client_id, [])
        root = order.fields.parent_id or order.order_id
        chain = [p for p in held if p.order_id == root or p.fields.parent_id == root]
        self._pending[order.client_id] = [p for p in held if p not in chain]
        return sorted(chain, key=lambda o: o.perm_id)

    def pending(self, client_id: int, order_id: int) -> SimOrder | None:
        """A held, untransmitted order."""
        return next((p for p in self._pending.get(client_id, []) if p.order_id == order_id), None)

    def drop(self, order: SimOrder) -> None:
        """Forget a held order (cancelled before it was transmitted)."""
        held = self._pending.get(order.client_id, [])
        if order in held:
            held.remove(order)

    @staticmethod
    def children(parent: SimOrder, live: Iterable[SimOrder]) -> list[SimOrder]:
        """Live orders attached to ``parent``."""
        kids = [
            o
            for o in live
            if o.client_id == parent.client_id and o.fields.parent_id == parent.order_id
        ]
        return sorted(kids, key=lambda o: o.perm_id)

    @staticmethod
    def oca_effects(
        order: SimOrder, qty: Decimal, live: Iterable[SimOrder]
    ) -> list[tuple[SimOrder, Decimal | None]]:
        """What a fill of ``qty`` does to the rest of its OCA group.

        ``None`` cancels the sibling (ocaType 1); otherwise its new total quantity, reduced by
        the filled amount (ocaType 2 and 3). Held children whose parent has not filled are
        left alone: their group is not active yet.
        """
        group = order.fields.oca_group
        if not group:
            return []
        siblings = sorted(
            (
                o
                for o in live
                if o is not order
                and o.is_live
                and not o.held
                and o.account == order.account
                and o.fields.oca_group == group
            ),
            key=lambda o: o.perm_id,
        )
        kind = order.fields.oca_type or CANCEL_REST
        if kind == CANCEL_REST:
            return [(s, None) for s in siblings]
        return [(s, s.fields.total_quantity - qty) for s in siblings]
