"""The facts collector: all I/O the gates need (files, clock, token peek) done once, up front."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from ibkr_mcp.safety.context import (
    NO_FLOW,
    ChainMode,
    FlowFacts,
    GateContext,
    OrderIntent,
    OverrideFile,
    ReferenceQuote,
    Standing,
    TokenCheck,
)
from ibkr_mcp.safety.flow_facts import gather_flow

if TYPE_CHECKING:
    from ibkr_mcp.config import Settings
    from ibkr_mcp.safety.tokens import TokenStore

__all__ = ["collect_facts", "gather_flow", "kill_switch_active", "read_override_file"]

#: An override file is a few lines; anything bigger is not one.
MAX_OVERRIDE_BYTES = 64 * 1024
_KEYS = frozenset({"account", "expires", "max_notional", "symbols"})


class _Malformed(ValueError):
    pass


def _parse_expires(value: str) -> datetime:
    try:
        expires = datetime.fromisoformat(value)
    except ValueError:
        raise _Malformed(
            f"expires={value!r} is not an ISO-8601 time (e.g. 2026-11-25T18:00:00+00:00)"
        ) from None
    if expires.tzinfo is None or expires.utcoffset() is None:
        raise _Malformed(f"expires={value!r} has no UTC offset (write e.g. +00:00)")
    return expires


def _parse_max_notional(value: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise _Malformed(f"max_notional={value!r} is not a number") from None
    if not amount.is_finite() or amount <= 0:
        raise _Malformed(f"max_notional={value!r} must be a positive number")
    return amount


def _parse_symbols(value: str) -> tuple[str, ...]:
    symbols = tuple(s.strip().upper() for s in value.split(",") if s.strip())
    if not symbols:
        raise _Malformed("symbols= is empty (remove the line to allow every symbol)")
    return symbols


def parse_override_text(text: str) -> dict[str, str]:
    """Parse ``key=value`` lines (``#`` starts a comment) into a dict, strictly.

    Raises:
        ValueError: On a line without ``=``, an unknown or repeated key, or an empty value.
    """
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep:
            raise _Malformed(f"line {number} is not key=value: {line!r}")
        # Unknown keys are errors: a typo such as `max_notinal` must not silently loosen a cap.
        if key not in _KEYS:
            raise _Malformed(f"line {number}: unknown key {key!r} (known: {sorted(_KEYS)})")
        if key in values:
            raise _Malformed(f"line {number}: {key} appears twice")
        if not value:
            raise _Malformed(f"line {number}: {key} has no value")
        values[key] = value
    return values


def _parse(path: Path, text: str, owner_ok: bool, mode_ok: bool) -> OverrideFile:
    base = OverrideFile(path, True, owner_ok, mode_ok, None, None, None, None, None)
    try:
        values = parse_override_text(text)
        missing = [k for k in ("account", "expires") if k not in values]
        if missing:
            raise _Malformed(f"missing required line(s): {', '.join(k + '=' for k in missing)}")
        account = values["account"]
        if not account.isalnum():
            raise _Malformed(f"account={account!r} is not an account id (no wildcards)")
        expires = _parse_expires(values["expires"])
        max_notional = (
            _parse_max_notional(values["max_notional"]) if "max_notional" in values else None
        )
        symbols = _parse_symbols(values["symbols"]) if "symbols" in values else None
    except _Malformed as exc:
        return _replace_error(base, str(exc))
    return OverrideFile(
        path, True, owner_ok, mode_ok, account, expires, max_notional, symbols, None
    )


def _replace_error(ov: OverrideFile, error: str) -> OverrideFile:
    return OverrideFile(ov.path, ov.exists, ov.owner_ok, ov.mode_ok, None, None, None, None, error)


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def read_override_file(path: Path, *, uid: int | None = None) -> OverrideFile:
    """Read and validate the live override file (fresh on every call: no caching).

    Args:
        path: The override file (already resolved).
        uid: The user that must own the file (default: the current user; tests pass another).

    Returns:
        What was found; problems are reported in the fields, never raised.
    """
    expected_uid = os.getuid() if uid is None else uid
    missing = OverrideFile(path, False, False, False, None, None, None, None, None)
    try:
        # Open first, then fstat the open file: what we check is exactly what we read.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (FileNotFoundError, NotADirectoryError):
        return missing
    except OSError as exc:
        return _replace_error(
            OverrideFile(path, True, False, False, None, None, None, None, None),
            f"cannot open: {exc.strerror or exc}",
        )
    try:
        st = os.fstat(fd)
        owner_ok = st.st_uid == expected_uid
        mode_ok = not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        broken = OverrideFile(path, True, owner_ok, mode_ok, None, None, None, None, None)
        if not stat.S_ISREG(st.st_mode):
            return _replace_error(broken, "not a regular file")
        data = _read_at_most(fd, MAX_OVERRIDE_BYTES + 1)
    except OSError as exc:
        return _replace_error(
            OverrideFile(path, True, False, False, None, None, None, None, None),
            f"cannot read: {exc.strerror or exc}",
        )
    finally:
        os.close(fd)
    if len(data) > MAX_OVERRIDE_BYTES:
        return _replace_error(broken, f"larger than {MAX_OVERRIDE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _replace_error(broken, "not UTF-8 text")
    return _parse(path, text, owner_ok, mode_ok)


def kill_switch_active(path: Path) -> bool:
    """Whether the kill switch file exists; an unreadable location counts as engaged."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        # Fail closed: if we cannot tell whether the switch is engaged, assume it is.
        return True
    return True


def collect_facts(
    settings: Settings,
    intent: OrderIntent,
    *,
    mode: ChainMode,
    managed_accounts: tuple[str, ...],
    quote: ReferenceQuote | None,
    tokens: TokenStore,
    token: str | None,
    now: datetime | None = None,
    uid: int | None = None,
    flow: FlowFacts = NO_FLOW,
    token_check: TokenCheck | None = None,
    standing: Standing | None = None,
) -> GateContext:
    """Gather everything the gates decide on into a frozen ``GateContext``.

    Args:
        settings: The effective settings.
        intent: The validated, resolved order.
        mode: ``preview`` or ``place``.
        managed_accounts: Accounts the connected gateway manages.
        quote: The current quote the caller fetched (``None`` if unavailable).
        tokens: The confirmation token store (only peeked here; never consumed).
        token: The token the caller passed, if any.
        now: The decision time (default: now, UTC).
        uid: The user the override file must belong to (default: the current user).
        flow: The flow facts (``gather_flow``) for the flow-limit gates.
        token_check: A token verdict decided elsewhere (an approved order's token was spent
            when it was queued); default: peek ``tokens``.
        standing: A modification's order as it stands (see ``GateContext.standing``).

    Returns:
        The context for ``chain.evaluate``.
    """
    now = now or datetime.now(UTC)
    live = settings.TRADING_MODE == "live" or intent.is_live_account
    override = read_override_file(settings.live_override_path, uid=uid) if live else None
    switch = settings.kill_switch_path  # resolved once: checked here, named by the gate
    return GateContext(
        settings=settings,
        intent=intent,
        mode=mode,
        managed_accounts=tuple(managed_accounts),
        quote=quote,
        now=now,
        kill_switch_active=kill_switch_active(switch),
        override=override,
        token=token_check or tokens.check(token, intent.fingerprint()),
        flow=flow,
        kill_switch_path=switch,
        standing=standing if intent.modifies is not None else None,
    )
