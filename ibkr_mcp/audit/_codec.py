"""Value encoding for audit rows: canonical JSON, row hashes, secret masking, decimals, times."""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any, Final

import orjson

#: ``prev_hash`` of the very first row of the chain.
GENESIS_HASH: Final[str] = "0" * 64

#: What a masked secret is replaced with.
MASK: Final[str] = "***"

# Keys that name secrets. "token" alone is handled separately (confirmation tokens get a short
# hash so a preview and its place_order call can still be matched up in the trail).
_SECRET_KEY = re.compile(r"passw|secret|api[_-]?key|authori[sz]ation|credential|cookie", re.I)
_TOKEN_KEY = re.compile(r"token", re.I)
_BEARER_TOKEN_KEY = re.compile(r"api|auth|bearer|access|refresh|session", re.I)
# Keys that are already identifiers of a secret ("token_id"), not the secret itself.
_ID_KEY = re.compile(r"(_id|Id|_hash)$")


def canonical_json(value: Any) -> bytes:
    """Canonical JSON bytes: ``orjson.dumps(value, option=OPT_SORT_KEYS)``."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def row_hash(row: Mapping[str, Any], key: bytes | None = None) -> str:
    """SHA-256 (hex) of the canonical JSON of every column of ``row`` except ``row_hash``.

    With ``key``: ``k1:`` + HMAC-SHA256 under the audit key (see ``audit/keys.py``).
    """
    body = {k: v for k, v in row.items() if k != "row_hash"}
    if key is not None:
        from ibkr_mcp.audit.keys import keyed_digest

        return keyed_digest(key, canonical_json(body))
    return hashlib.sha256(canonical_json(body)).hexdigest()


def token_id(token: str) -> str:
    """A short, stable, non-reversible id for a confirmation token (``tok_`` + 16 hex chars).

    Store this instead of the token: it still links a preview to the order that used it.
    """
    return "tok_" + hashlib.sha256(token.encode()).hexdigest()[:16]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return format(obj, "f")
    model_dump = getattr(obj, "model_dump", None)
    if callable(model_dump):  # pydantic models (our domain models) without importing pydantic
        return model_dump(mode="json")
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    if isinstance(obj, bytes | bytearray):
        return obj.hex()
    if isinstance(obj, Enum):
        return obj.value
    # Anything else is stored by its text form rather than failing the audit write.
    return str(obj)


class JsonText(str):
    """Column text already made by ``to_json`` (masked, sorted): stored as it is.

    For a value written on many rows and never changed (the safety snapshot): encoding it
    once spares every order a walk of its keys (issue 15). Make one only with ``of`` (which
    masks): the text is stored without another look.
    """

    @classmethod
    def of(cls, value: Any) -> JsonText | None:
        """``to_json(value)`` kept as ready text (``None`` stays ``None``)."""
        text = to_json(value)
        return None if text is None else cls(text)


def to_json(value: Any) -> str | None:
    """JSON text for an ``arguments``/``safety``/``detail`` column (secrets masked), or None."""
    if value is None:
        return None
    if isinstance(value, JsonText):
        return str.__str__(value)  # a plain str for the database and the row hash
    masked = mask_secrets(value)
    return orjson.dumps(
        masked, default=_json_default, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    ).decode()


@functools.lru_cache(maxsize=4096)
def _key_kind(key: str) -> str:
    """How a key's value is masked: ``id``, ``secret``, ``bearer``, ``token`` or ``plain``.

    Cached: the same few keys come back on every row (three regex searches each otherwise).
    """
    if _ID_KEY.search(key):
        return "id"
    if _SECRET_KEY.search(key):
        return "secret"
    if _TOKEN_KEY.search(key):
        return "bearer" if _BEARER_TOKEN_KEY.search(key) else "token"
    return "plain"


#: Values stored as they are under a plain key (no walk, no range check): most of every row.
_PLAIN_SCALARS: Final = frozenset({str, bool, Decimal, type(None)})


def _mask_value(key: str, value: Any) -> Any:
    if value is None:
        return None
    kind = _key_kind(key)
    if kind == "secret" or kind == "bearer":
        return MASK
    if kind == "token":
        return token_id(value) if isinstance(value, str) else MASK
    return mask_secrets(value)


def _mask_mapping(value: Mapping[Any, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for k, v in value.items():
        key = k if type(k) is str else str(k)
        if type(v) in _PLAIN_SCALARS and _key_kind(key) == "plain":
            out[k] = v  # the common case inline: a plain key with a text/number/flag value
        else:
            out[k] = _mask_value(key, v)
    return out


def mask_secrets(value: Any) -> Any:
    """Return ``value`` with every secret-named key's value masked, recursively.

    Keys like ``password``/``secret``/``api_key``/``api_token`` become ``"***"``; other ``token``
    keys (confirmation tokens) become :func:`token_id` of the token. Keys ending in ``_id`` are
    kept as they are (they already hold an id, not a secret).
    """
    if value is None or isinstance(value, str | bool):
        return value  # the common cases first (no model_dump or ABC lookups for them)
    if isinstance(value, dict):
        return _mask_mapping(value)
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump) and not isinstance(value, type):
        value = model_dump(mode="json")
    if isinstance(value, Mapping):
        return _mask_mapping(value)
    if isinstance(value, list | tuple):
        return [mask_secrets(v) for v in value]
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        # Caller input can hold any integer; JSON encoders stop at 64 bits: stored as text.
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        # ``1e400`` parses as inf; JSON has no such number (orjson writes null): stored as text.
        return str(value)
    return value


def dec_text(value: Decimal | int | None, field: str) -> str | None:
    """Exact decimal text for a money/quantity column (``Decimal("0.1")`` -> ``"0.1"``).

    Raises:
        TypeError: For floats (inexact) and other types.
        ValueError: For NaN or infinity.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"{field} must be a Decimal (exact), got {type(value).__name__}")
    if isinstance(value, int):
        return str(value)
    if not value.is_finite():
        raise ValueError(f"{field} must be a finite Decimal, got {value}")
    return format(value, "f")


def utc_iso(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds and offset: ``2026-11-25T14:03:12.123456+00:00``.

    Raises:
        ValueError: If ``moment`` is naive.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (the default audit clock)."""
    return datetime.now(UTC)


def opt_int(value: int | None, field: str) -> int | None:
    """Validate an optional integer column (bools and other types rejected).

    Raises:
        TypeError: If ``value`` is not an int.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{field} must be an int, got {type(value).__name__}")
    return value


def opt_float(value: float | int | None) -> float | None:
    """A REAL column value as it will read back from SQLite (finite float or None)."""
    if value is None:
        return None
    out = float(value)
    if out != out or out in (float("inf"), float("-inf")):
        return None
    return out
