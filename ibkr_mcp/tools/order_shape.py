"""An order's shape: its legs, broker requests, summary, audit columns and bounded value."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from ibkr_mcp.errors import InvalidInputError
from ibkr_mcp.models import Contract, OrderRequest, Quote
from ibkr_mcp.safety.context import OrderIntent, ReferenceQuote, Standing
from ibkr_mcp.safety.pricing import Notional, added_value, order_notional
from ibkr_mcp.tools.order_models import OrderSummary

#: Order-ref suffixes of bracket children (reconciliation finds every leg by them).
LEG_SUFFIX = {"take_profit": ".tp", "stop_loss": ".sl"}


@dataclass(frozen=True)
class Prepared:
    """A resolved order ready for the gates: intent (with legs), contract and quote."""

    contract: Contract
    intent: OrderIntent
    quote: Quote | None
    #: What a successful send is called in messages (``sent``, ``modified``).
    verb: str = "sent"
    #: A modification: the order as it stands before the change (its intent row and the
    #: ``daily_notional`` gate count only what the change adds to it).
    standing: Standing | None = None


def check_tick(contract: Contract, field: str, price: Decimal | None) -> None:
    """Refuse a price off the contract's tick grid, naming the field and two valid prices."""
    if price is None or contract.min_tick <= 0:
        return
    steps = price / contract.min_tick
    if steps == steps.to_integral_value():
        return
    lower = steps.to_integral_value(rounding="ROUND_FLOOR") * contract.min_tick
    raise InvalidInputError(
        f"{field} {price} is not on the tick grid of {contract.symbol} "
        f"(min tick {contract.min_tick}).",
        remedy=f"Use a multiple of {contract.min_tick}, e.g. {lower} or "
        f"{lower + contract.min_tick}.",
        details={"errors": [{"field": field, "message": "off the tick grid"}]},
    )


def check_good_till(good_till: datetime | None, now: datetime) -> None:
    """Refuse a GTD time that has already passed (IB rejects it, error 201, after the send).

    Judged here, before the gates: a rejected order counts toward the rejection breaker, and
    an agent's date mistake must not halt trading.
    """
    if good_till is None or good_till > now:
        return
    raise InvalidInputError(
        f"good_till {good_till.isoformat()} is not in the future (now {now.isoformat()}).",
        remedy="Give a good_till later than now, or use tif DAY or GTC.",
        details={"errors": [{"field": "good_till", "message": "must be in the future"}]},
    )


def bracket_legs(parent: OrderIntent, tp: Decimal | None, sl: Decimal | None,
                 sl_limit: Decimal | None) -> tuple[OrderIntent, ...]:  # fmt: skip
    """The exit children of a bracket: a LMT take-profit and a STP / STP_LMT stop-loss."""
    exit_side: Literal["BUY", "SELL"] = "SELL" if parent.side == "BUY" else "BUY"
    base = dataclasses.replace(
        parent, side=exit_side, limit_price=None, stop_price=None, trailing_amount=None,
        trailing_percent=None, limit_offset=None, legs=(),
    )  # fmt: skip
    legs = []
    if tp is not None:
        legs.append(dataclasses.replace(base, order_type="LMT", limit_price=tp, role="take_profit"))
    if sl is not None:
        kind = "STP" if sl_limit is None else "STP_LMT"
        legs.append(
            dataclasses.replace(
                base, order_type=kind, stop_price=sl, limit_price=sl_limit, role="stop_loss"
            )
        )
    return tuple(legs)


def all_legs(intent: OrderIntent) -> list[OrderIntent]:
    """The parent (or single order) followed by its children."""
    return [intent, *intent.legs]


def estimated_notional(intent: OrderIntent, quote: Quote | None) -> Decimal | None:
    """The order's bounded notional (the gates' own pricing), or ``None`` if unknown."""
    reference = None if quote is None else ReferenceQuote.from_quote(quote)
    notional = order_notional(intent, reference, band_pct=Decimal(0))
    return notional.value if isinstance(notional, Notional) else None


def added_notional(prepared: Prepared) -> Decimal | None:
    """What sending ``prepared`` adds to the day's sent value (``daily_notional`` sums it).

    A new order adds its bounded value. A modification adds what it raises the order's value
    by (never less than nothing): the order was counted by its own intent when it was placed,
    and raising its quantity or limit must count too, or the daily limit could be walked past
    one modification at a time.
    """
    quote = prepared.quote
    reference = None if quote is None else ReferenceQuote.from_quote(quote)
    notional = order_notional(prepared.intent, reference, band_pct=Decimal(0))
    if not isinstance(notional, Notional):
        return None
    return added_value(notional.value, prepared.standing, reference, Decimal(0))


def summary(intent: OrderIntent, quote: Quote | None) -> OrderSummary:
    """The order as understood, with its bounded notional (the gates' own pricing)."""
    legs = {leg.role: leg for leg in intent.legs}
    tp, sl = legs.get("take_profit"), legs.get("stop_loss")
    return OrderSummary(
        account=intent.account,
        symbol=intent.symbol,
        con_id=intent.con_id,
        sec_type=intent.sec_type,
        currency=intent.currency,
        side=intent.side,
        quantity=intent.quantity,
        order_type=intent.order_type,
        limit_price=intent.limit_price,
        stop_price=intent.stop_price,
        trailing_amount=intent.trailing_amount,
        trailing_percent=intent.trailing_percent,
        limit_offset=intent.limit_offset,
        tif=intent.tif,
        good_till=intent.good_till,
        outside_rth=intent.outside_rth,
        multiplier=None if intent.multiplier == 1 else intent.multiplier,
        estimated_notional=estimated_notional(intent, quote),
        take_profit_price=tp.limit_price if tp else None,
        stop_loss_price=sl.stop_price if sl else None,
        stop_loss_limit_price=sl.limit_price if sl else None,
        modifies=intent.modifies,
    )


def requests(prepared: Prepared, key: str | None) -> list[OrderRequest]:
    """The broker requests of every leg; children's refs derive from the key."""
    out = []
    intent = prepared.intent
    for leg in all_legs(intent):
        suffix = LEG_SUFFIX.get(leg.role, "")
        out.append(
            OrderRequest(
                account=leg.account,
                contract=prepared.contract,
                side=leg.side,
                quantity=leg.quantity,
                order_type=leg.order_type,
                limit_price=leg.limit_price,
                stop_price=leg.stop_price,
                trailing_amount=leg.trailing_amount,
                trailing_percent=leg.trailing_percent,
                limit_offset=leg.limit_offset,
                tif=leg.tif,
                good_till=leg.good_till,
                outside_rth=leg.outside_rth,
                order_ref=None if key is None else key + suffix,
                oca_group=None if key is None or not intent.legs else f"oca.{key}",
            )
        )
    return out


def order_fields(intent: OrderIntent) -> dict[str, Any]:
    """The order columns of an audit row."""
    return {
        "account": intent.account,
        "symbol": intent.symbol,
        "con_id": intent.con_id,
        "side": intent.side,
        "quantity": intent.quantity,
        "order_type": intent.order_type,
        "limit_price": intent.limit_price,
        "tif": intent.tif,
    }


def shape_detail(intent: OrderIntent) -> dict[str, Any]:
    """The parts of the order the audit columns do not hold (stops, trails, legs, target)."""
    fields = intent.fingerprint_fields()
    columns = order_fields(intent)
    return {k: v for k, v in fields.items() if k not in columns or k == "legs"}
