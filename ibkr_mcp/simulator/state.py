"""The simulator's state file: accounts, positions, working orders, the day's executions, ids.

Written atomically (temporary file, then ``os.replace``) after every change and read at
start, so a restarted simulator comes back like a restarted IB Gateway: same accounts, cash,
positions, working (GTC and still-valid DAY) orders, executions of the day and id counters.
A file that is not valid JSON, not this simulator's format, of another version or for other
accounts stops start-up with ``StateFileError`` naming the file (never a silent reset).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from ibkr_mcp.simulator._market_calendar import ET
from ibkr_mcp.simulator.accounts import SimPosition
from ibkr_mcp.simulator.order_model import SimFill, SimOrder

if TYPE_CHECKING:
    from ibkr_mcp.simulator.drill_host import DrillHost

STATE_FORMAT = "ibkr-mcp-simulator-state"
STATE_VERSION = 1
#: Only dataclasses from the simulator package may be rebuilt from a state file.
TRUSTED_MODULE = "ibkr_mcp.simulator."
_ORDER_SKIP = frozenset({"fields", "instrument", "fills"})


class StateFileError(RuntimeError):
    """The state file cannot be used (its message names the file and why)."""


# -- value codec ---------------------------------------------------------------------------
def _enc(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, tuple | list):
        return {"$tuple" if isinstance(value, tuple) else "$list": [_enc(v) for v in value]}
    if isinstance(value, dict):
        return {"$dict": [[_enc(k), _enc(v)] for k, v in value.items()]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        return {
            "$dc": f"{cls.__module__}.{cls.__qualname__}",
            "fields": {f.name: _enc(getattr(value, f.name)) for f in dataclasses.fields(value)},
        }
    raise TypeError(f"cannot store a {type(value).__name__} in the simulator state")


def _dec(value: Any) -> Any:
    if not isinstance(value, dict):
        if isinstance(value, list):
            raise ValueError("untagged list")
        return value
    if "$dec" in value:
        return Decimal(value["$dec"])
    if "$dt" in value:
        return datetime.fromisoformat(value["$dt"])
    if "$date" in value:
        return date.fromisoformat(value["$date"])
    if "$tuple" in value:
        return tuple(_dec(v) for v in value["$tuple"])
    if "$list" in value:
        return [_dec(v) for v in value["$list"]]
    if "$dict" in value:
        return {_dec(k): _dec(v) for k, v in value["$dict"]}
    if "$dc" in value:
        path = str(value["$dc"])
        module, _, name = path.rpartition(".")
        if not module.startswith(TRUSTED_MODULE):
            raise ValueError(f"untrusted type {path}")
        cls = getattr(importlib.import_module(module), name)
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ValueError(f"{path} is not a dataclass")
        known = {f.name for f in dataclasses.fields(cls)}
        # Fields added to the class since the file was written keep their defaults.
        kwargs = {k: _dec(v) for k, v in value["fields"].items() if k in known}
        return cls(**kwargs)
    raise ValueError(f"unknown tag in {sorted(value)}")


# -- snapshot / restore --------------------------------------------------------------------
def _kept_orders(sim: DrillHost) -> list[SimOrder]:
    """Working orders and today's (New York date) executed orders; what-ifs never."""
    today = sim.clock.now().astimezone(ET).date()
    kept = []
    for order in sim.engine.orders:
        if order.what_if:
            continue
        if order.is_live or any(f.time.astimezone(ET).date() == today for f in order.fills):
            kept.append(order)
    return kept


def snapshot(sim: DrillHost) -> dict[str, Any]:
    """The state of ``sim`` as JSON-ready data."""
    engine = sim.engine
    accounts = {}
    for account_id, acct in engine.accounts.items():
        accounts[account_id] = {
            "starting_cash": _enc(acct.starting_cash),
            "currency": acct.currency,
            "cash": _enc(acct.cash),
            "realized_pnl": _enc(acct.realized_pnl),
            "commissions": _enc(acct.commissions),
            "day": _enc(acct.day),
            "positions": [
                {
                    "con_id": con_id,
                    **{
                        f.name: _enc(getattr(pos, f.name))
                        for f in dataclasses.fields(pos)
                        if f.name != "instrument"
                    },
                }
                for con_id, pos in acct.positions.items()
            ],
        }
    orders = []
    for order in _kept_orders(sim):
        orders.append(
            {
                "fields": _enc(order.fields),
                "con_id": order.instrument.con_id if order.instrument else None,
                "live": order.is_live,
                "state": {
                    f.name: _enc(getattr(order, f.name))
                    for f in dataclasses.fields(order)
                    if f.name not in _ORDER_SKIP
                },
                "fills": [
                    {
                        f.name: _enc(getattr(fill, f.name))
                        for f in dataclasses.fields(fill)
                        if f.name != "order"
                    }
                    for fill in order.fills
                ],
            }
        )
    return {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "accounts": accounts,
        "orders": orders,
        "counters": {
            "perm_seq": engine._perm_seq,
            "exec_seq": engine._exec_seq,
            "next_ids": [[cid, nid] for cid, nid in sorted(sim.next_ids.items())],
        },
    }


def restore(sim: DrillHost, data: dict[str, Any]) -> None:
    """Load ``data`` (from ``snapshot``) into a simulator that has not started serving.

    Raises:
        ValueError/KeyError/TypeError: the data is malformed (the caller names the file).
    """
    engine = sim.engine
    wanted = set(engine.accounts)
    stored = set(data["accounts"])
    if stored != wanted:
        raise ValueError(
            f"it holds accounts {sorted(stored)}, this simulator runs {sorted(wanted)}"
        )
    catalogue = sim.catalogue
    for account_id, raw in data["accounts"].items():
        acct = engine.accounts[account_id]
        acct.starting_cash = _dec(raw["starting_cash"])
        acct.currency = raw["currency"]
        acct.cash = _dec(raw["cash"])
        acct.realized_pnl = _dec(raw["realized_pnl"])
        acct.commissions = _dec(raw["commissions"])
        acct.day = _dec(raw["day"])
        acct.positions.clear()
        for row in raw["positions"]:
            inst = catalogue.by_con_id(int(row["con_id"]))
            if inst is None:
                raise ValueError(f"unknown conId {row['con_id']} in a position")
            values = {k: _dec(v) for k, v in row.items() if k != "con_id"}
            acct.positions[inst.con_id] = SimPosition(inst, **values)
    engine.orders.clear()
    engine._live.clear()
    engine._by_key.clear()
    for raw in data["orders"]:
        con_id = raw["con_id"]
        inst = catalogue.by_con_id(int(con_id)) if con_id is not None else None
        fields = _dec(raw["fields"])
        state = {k: _dec(v) for k, v in raw["state"].items()}
        order = SimOrder(fields=fields, instrument=inst, **state)
        order.fills = [SimFill(order=order, **{k: _dec(v) for k, v in f.items()})
                       for f in raw["fills"]]  # fmt: skip
        engine.orders.append(order)
        key = (order.client_id, order.order_id)
        engine._by_key[key] = order
        if raw["live"]:
            engine._live[key] = order
    counters = data["counters"]
    engine._perm_seq = int(counters["perm_seq"])
    engine._exec_seq = int(counters["exec_seq"])
    sim.next_ids = {int(c): int(n) for c, n in counters["next_ids"]}


class StateStore:
    """One state file: ``load`` at start, ``save`` after each change (atomically)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.dirty = False

    def load(self, sim: DrillHost) -> bool:
        """Restore ``sim`` from the file if it exists; False when there is no file yet.

        Raises:
            StateFileError: the file is unreadable, corrupt, foreign or of another version.
        """
        if not self.path.exists():
            return False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise StateFileError(f"simulator state file {self.path} is corrupt: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            raise StateFileError(
                f"{self.path} is not an ibkr-mcp simulator state file; "
                "move it away or point SIM_STATE_FILE elsewhere"
            )
        if data.get("version") != STATE_VERSION:
            raise StateFileError(
                f"simulator state file {self.path} has version {data.get('version')!r}; "
                f"this simulator reads version {STATE_VERSION}"
            )
        try:
            restore(sim, data)
        except (KeyError, TypeError, ValueError, AttributeError, ImportError) as exc:
            raise StateFileError(
                f"simulator state file {self.path} cannot be restored: {exc}"
            ) from exc
        return True

    def save(self, sim: DrillHost) -> None:
        """Write the state now: a temporary file beside it, then an atomic rename."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(snapshot(sim), separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, self.path)
        self.dirty = False

    def save_if_dirty(self, sim: DrillHost) -> None:
        """Save when something changed since the last save.

        A failed write is logged and the gateway keeps serving; the next change tries again.
        """
        if not self.dirty:
            return
        try:
            self.save(sim)
        except (OSError, TypeError, ValueError) as exc:
            logger.error("simulator state file {} not written: {}", self.path, exc)
