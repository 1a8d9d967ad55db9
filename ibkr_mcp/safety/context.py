"""Frozen facts the safety gates decide on: the order intent, quote, override file, token check."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import orjson

from ibkr_mcp.safety.halt import NOT_HALTED, HaltState

if TYPE_CHECKING:
    from ibkr_mcp.config import Settings
    from ibkr_mcp.models import OrderRequest, Quote

ChainMode = Literal["preview", "place"]


def canonical_decimal(value: Decimal | None) -> str | None:
    """A Decimal as a canonical string: ``185.0``, ``185`` and ``1.85E+2`` all give ``"185"``."""
    if value is None:
        return None
    if not value.is_finite():
        return str(value)
    normalized = value.normalize()
    if normalized.is_zero():
        # -0 and 0E+3 are the same quantity as 0.
        return "0"
    return format(normalized, "f")


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """The validated, resolved order the order tools want to send (built by the caller).

    Attributes:
        account: The IB account id (``DU…`` paper, ``U…`` live).
        symbol: The contract symbol (upper case).
        con_id: The resolved IB contract id.
        sec_type: ``STK``, ``CASH``, ...
        currency: The contract's currency (for FX: the quote currency).
        exchange: The routing exchange.
        side: ``BUY`` or ``SELL``.
        quantity: Shares / units, positive.
        order_type: ``MKT`` or ``LMT`` (anything else cannot be bounded and is refused).
        limit_price: The limit price of a ``LMT`` order, else ``None``.
        tif: Time in force.
        min_tick: The contract's minimum price increment.
        stop_price: The trigger (aux) price of STP, STP_LMT, MIT, LIT (initial stop of TRAIL).
        trailing_amount: TRAIL / TRAIL_LIMIT distance in price units.
        trailing_percent: TRAIL / TRAIL_LIMIT distance in percent.
        limit_offset: TRAIL_LIMIT: the limit's distance from the stop.
        good_till: GTD expiry (ISO-8601), else ``None``.
        outside_rth: Whether the order may trigger / fill outside regular trading hours.
        multiplier: The contract multiplier (100 for most options); notional = qty × price × it.
        role: ``order``, or a bracket leg: ``parent``, ``take_profit``, ``stop_loss``.
        legs: A bracket parent's children (every gate sees every leg; the token binds all).
        modifies: The order id a modification changes (bound into the token), else ``None``.
    """

    account: str
    symbol: str
    con_id: int
    sec_type: str
    currency: str
    exchange: str
    side: Literal["BUY", "SELL"]
    quantity: Decimal
    order_type: str
    limit_price: Decimal | None
    tif: str
    min_tick: Decimal
    stop_price: Decimal | None = None
    trailing_amount: Decimal | None = None
    trailing_percent: Decimal | None = None
    limit_offset: Decimal | None = None
    good_till: str | None = None
    outside_rth: bool = False
    multiplier: Decimal = Decimal(1)
    role: str = "order"
    legs: tuple[OrderIntent, ...] = ()
    modifies: int | None = None

    @classmethod
    def from_request(cls, request: OrderRequest) -> OrderIntent:
        """The intent of a validated, resolved ``OrderRequest``."""
        contract = request.contract
        return cls(
            account=request.account,
            symbol=contract.symbol,
            con_id=contract.con_id,
            sec_type=contract.sec_type,
            currency=contract.currency,
            exchange=contract.exchange,
            side=request.side,
            quantity=request.quantity,
            order_type=request.order_type,
            limit_price=request.limit_price,
            tif=request.tif,
            min_tick=contract.min_tick,
            stop_price=request.stop_price,
            trailing_amount=request.trailing_amount,
            trailing_percent=request.trailing_percent,
            limit_offset=request.limit_offset,
            good_till=None if request.good_till is None else request.good_till.isoformat(),
            outside_rth=request.outside_rth,
            multiplier=contract.multiplier,
        )

    def fingerprint_fields(self) -> dict[str, object]:
        """The fields a confirmation token is bound to, in canonical form."""
        base: dict[str, object] = {
            "account": self.account,
            "con_id": self.con_id,
            "symbol": self.symbol,
            "side": self.side,
            "quantity": canonical_decimal(self.quantity),
            "order_type": self.order_type,
            "limit_price": canonical_decimal(self.limit_price),
            "tif": self.tif,
        }
        # Fields of the newer order shapes join only when set, so a plain MKT/LMT order keeps
        # the fingerprint it always had.
        optional: dict[str, object] = {
            "stop_price": canonical_decimal(self.stop_price),
            "trailing_amount": canonical_decimal(self.trailing_amount),
            "trailing_percent": canonical_decimal(self.trailing_percent),
            "limit_offset": canonical_decimal(self.limit_offset),
            "good_till": self.good_till,
            "outside_rth": self.outside_rth or None,
            "role": None if self.role == "order" else self.role,
            "legs": [leg.fingerprint_fields() for leg in self.legs] or None,
            "modifies": self.modifies,
        }
        return base | {k: v for k, v in optional.items() if v is not None}

    def fingerprint(self) -> str:
        """SHA-256 hex of the canonical JSON of the order's identifying fields.

        Decimals are normalized, so ``185.0`` and ``185`` give the same fingerprint, while any
        change of account, contract, side, quantity, type, limit price or TIF changes it.
        """
        return _fingerprint(self)

    @property
    def is_live_account(self) -> bool:
        """Whether the account is a live one (paper accounts start with ``D``: DU…, DF…)."""
        return not self.account.upper().startswith("D")


@functools.lru_cache(maxsize=256)
def _fingerprint(intent: OrderIntent) -> str:
    # Cached by the intent's value (frozen, hashable): one order call asks for it ~5 times
    # (gates, rows, token) and the canonical JSON + hash cost ~25 us each time.
    payload = orjson.dumps(intent.fingerprint_fields(), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True, slots=True)
class ReferenceQuote:
    """The current quote the caller fetched for the order's contract (``None`` fields: no data).

    Attributes:
        bid: Best bid.
        ask: Best ask.
        last: Last trade price.
        delayed: Whether the quote is delayed (usable as a reference, noted in reasons).
        timestamp: When the quote was taken, if known.
    """

    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    delayed: bool
    timestamp: datetime | None

    @classmethod
    def from_quote(cls, quote: Quote) -> ReferenceQuote:
        """The reference of a broker ``Quote``; anything but live data counts as delayed."""
        return cls(
            bid=quote.bid,
            ask=quote.ask,
            last=quote.last,
            delayed=quote.market_data_type != "live",
            timestamp=quote.timestamp,
        )


@dataclass(frozen=True, slots=True)
class OverrideFile:
    """What the facts collector found in the live-trading override file.

    Attributes:
        path: The file's path.
        exists: Whether the file exists.
        owner_ok: Whether the current user owns it.
        mode_ok: Whether it is neither group- nor world-writable.
        account: The ``account=`` line's value.
        expires: The ``expires=`` line's value (timezone-aware).
        max_notional: The optional ``max_notional=`` cap.
        symbols: The optional ``symbols=`` allowlist (upper case).
        error: Why the file could not be read or parsed, else ``None``.
    """

    path: Path
    exists: bool
    owner_ok: bool
    mode_ok: bool
    account: str | None
    expires: datetime | None
    max_notional: Decimal | None
    symbols: tuple[str, ...] | None
    error: str | None


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """The result of peeking the token store for this order (no side effects).

    Attributes:
        present: Whether the caller supplied a token at all.
        valid: Whether it is known, unexpired, unused and bound to this exact order.
        reason: Why it is not valid, else ``None``.
    """

    present: bool
    valid: bool
    reason: str | None


@dataclass(frozen=True, slots=True)
class Standing:
    """A working order a modification changes, as it stands before the change.

    Attributes:
        intent: The order as it stands (the modification's intent with the order's current
            quantity and prices; a TRAIL_LIMIT without its offset, which IB does not report:
            the least it can be).
        recorded: What the day's sent value holds for the order (its own intent and earlier
            modifications), or ``None`` when the day's sum does not hold it as such (placed on
            an earlier day, by another server, a bracket child). Its value as it stands is
            taken at most at this, so a risen quote never makes a change look smaller.
    """

    intent: OrderIntent
    recorded: Decimal | None


@dataclass(frozen=True, slots=True)
class GateContext:
    """Everything the gates may look at; built by ``facts.collect_facts`` (which does the I/O).

    Attributes:
        settings: The effective settings.
        intent: The order.
        mode: ``preview`` (report every verdict) or ``place`` (stop at the first refusal).
        managed_accounts: Accounts the connected gateway manages.
        quote: The current quote for the contract, if one could be fetched.
        now: The time of the decision (timezone-aware).
        kill_switch_active: Whether the kill switch file exists.
        kill_switch_path: Where that file was looked for (resolved once per decision; default:
            ``settings.kill_switch_path``).
        standing: A modification: the order as it stands (``daily_notional`` counts what the
            change adds to it; ``None``: not a modification, the value counts whole).
        override: The override file as read (``None`` when not applicable: paper trading).
        token: The confirmation token check.
        flow: The flow facts (counters, halt, positions, session, approval) for the
            flow-limit gates; the empty default lets those gates skip (unit tests).
    """

    settings: Settings
    intent: OrderIntent
    mode: ChainMode
    managed_accounts: tuple[str, ...]
    quote: ReferenceQuote | None
    now: datetime
    kill_switch_active: bool
    override: OverrideFile | None
    token: TokenCheck
    flow: FlowFacts = field(default_factory=lambda: FlowFacts())
    kill_switch_path: Path | None = None
    standing: Standing | None = None

    @property
    def live_applies(self) -> bool:
        """Whether live-trading rules apply: live mode, or a live account."""
        return self.settings.TRADING_MODE == "live" or self.intent.is_live_account


@dataclass(frozen=True, slots=True)
class FlowFacts:
    """What the flow-limit gates decide on, read from durable state (audit, halt file, broker).

    ``None`` means "not collected" (the gate that needs it is off, or the facts could not be
    read: the gates that are on refuse then, failing closed).

    Attributes:
        collected: Whether the collector ran (False: unit-test contexts; flow gates skip).
        halt: The persisted halt state (emergency stop / rejection breaker).
        orders_last_minute: Orders sent in the last 60 s (every process on the audit DB).
        orders_today: Orders sent since the start of the New York trading day.
        notional_today: Value sent today for this account and currency.
        duplicate_of: Idempotency key of the same order sent within the duplicate window.
        duplicate_age_seconds: How long ago that order was sent.
        rejections_in_window: Broker rejections in the breaker's window (since the last reset).
        position: The account's position in this contract (signed), if collected.
        working_sells: What the account's working SELL orders in this contract may still sell
            (a SELL's facts only; ``None``: not read).
        daily_pnl: Realized plus unrealized PnL of the day, if collected.
        net_liquidation: The account's net liquidation value, if collected.
        session_open: Whether the instrument's session is open now (``None``: unknown).
        session_note: The session checked, in words.
        approval_required: Whether this order needs a human approval (REQUIRE_APPROVAL).
        approval_granted: Whether a human approved it (the approval executor's re-run).
        errors: Facts that could not be read, by name (the gates needing them refuse).
        counted_through: The newest audit row the counters were read through (``None``:
            not read). The order's intent row is refused if another intent was recorded
            after it (the counters were stale by then): see ``order_pipeline.execute``.
    """

    collected: bool = False
    halt: HaltState = NOT_HALTED
    orders_last_minute: int | None = None
    orders_today: int | None = None
    notional_today: Decimal | None = None
    duplicate_of: str | None = None
    duplicate_age_seconds: float | None = None
    rejections_in_window: int | None = None
    position: Decimal | None = None
    working_sells: Decimal | None = None
    daily_pnl: Decimal | None = None
    net_liquidation: Decimal | None = None
    session_open: bool | None = None
    session_note: str | None = None
    approval_required: bool = False
    approval_granted: bool = False
    errors: tuple[tuple[str, str], ...] = ()
    counted_through: int | None = None

    def error(self, name: str) -> str | None:
        """Why the fact ``name`` could not be read, else ``None``."""
        return next((why for key, why in self.errors if key == name), None)


NO_FLOW = FlowFacts()
